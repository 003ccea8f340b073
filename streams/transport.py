"""Faust's aiokafka transport with what Faust does not offer.

* ``fetch_max_wait_ms``: Faust hard-codes 1 500 ms, which puts seconds of latency on
  a lightly loaded partition; Credence waits at most ``FETCH_MAX_WAIT_MS``.
* ``enable_idempotence``: on for real clusters, off for the embedded broker, which
  rejects InitProducerId.
* Batch delivery: Faust hands every message to its streams one by one (an
  ``asyncio.wait`` with two tasks, an event, a queue hop and an ack each: about 85 µs
  of CPU per message on a 2-core machine, measured with an agent that only counts).
  Topics registered with :func:`deliver_in_batches` skip that: each fetch's messages
  of those topics go to the handler as one list. The handler acknowledges them
  (``Consumer.ack``) once their effects are durable; Faust commits as usual.

Registered under the URL scheme ``credence://`` so the stock ``kafka://`` is untouched.

``register()`` also works around a faust-streaming 0.15.3 race that loses records when
a worker takes over partitions whose changelog it must restore (see
:func:`_seek_before_resuming_streams`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from time import monotonic
from typing import Any, ClassVar, Protocol

import aiokafka
from faust.tables.recovery import Recovery
from faust.transport import drivers
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import AppT, Message, TopicT
from mode import ServiceT

FETCH_MAX_WAIT_MS = 100
SCHEME = "credence"


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by start() to build the fetcher
        return consumer


class BatchHandler(Protocol):
    async def deliver(self, messages: Sequence[Message]) -> None:
        """Process one fetch's messages (in offset order per partition) and ack them
        with ``Consumer.ack`` when their effects are durable: now or at a later flush."""

    async def flush(self) -> None:
        """Make every delivered message's effects durable and ack it."""


class Consumer(faust_aiokafka.Consumer):
    #: cluster topic name -> handler, see :func:`deliver_in_batches`
    batch_handlers: ClassVar[dict[str, BatchHandler]] = {}
    #: incremented by every ``stop_flow``: records fetched before a stop are stale
    _flow_stops = 0

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def stop_flow(self) -> None:
        self._flow_stops += 1
        super().stop_flow()

    async def wait_empty(self) -> None:
        """Flush the batch handlers first: their delivered messages are acked only then
        (Faust waits here for every tracked message before giving partitions away)."""
        for handler in set(self.batch_handlers.values()):
            await handler.flush()
        await super().wait_empty()

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's fetch loop (``Consumer._drain_messages`` of faust-streaming 0.15.3)
        with two changes: messages of batch topics go to their handler, one list per
        fetch; the others are awaited directly instead of inside ``wait_first``.

        The rest of a fetch is dropped, undelivered and not marked as read, once the
        flow has been stopped while the loop held it (a rebalance or a recovery seeks
        afterwards): Faust's loop went on delivering it after the flow resumed, so the
        read offsets overtook the seek and the records fetched again from the committed
        offset were dropped as already read (partitions stopped making progress).
        Records that come back from a fetch are current: aiokafka discards what it
        fetched before a seek.
        """
        should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set  # type: ignore[attr-defined]
        read_offsets = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        handlers = self.batch_handlers
        try:
            while not (should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                stops: int | None = None  # _flow_stops when this fetch's records came
                batches: dict[BatchHandler, list[Message]] = {}
                batch_read: dict[Any, int] = {}  # read offsets, taken when the batch is delivered
                await asyncio.sleep(0)  # getmany can return at once, over and over
                if self.should_stop:
                    break
                async for tp, message in self.getmany(timeout=1.0):
                    if stops is None:
                        stops = self._flow_stops
                    elif self._flow_stops != stops:
                        continue  # stale: see above
                    offset = message.offset
                    read = batch_read.get(tp, read_offsets[tp])
                    if read is not None and offset < read:
                        continue  # already delivered before a seek back
                    if read and offset - read > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, read + 1, offset)  # compacted or transactional
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    handler = handlers.get(message.topic)
                    if handler is None:
                        await self.callback(message)
                        read_offsets[tp] = offset
                    else:
                        batches.setdefault(handler, []).append(message)
                        batch_read[tp] = offset
                if batches and self._flow_stops == stops:
                    read_offsets.update(batch_read)
                    now = monotonic()  # what a stream records per event: Faust's livelock check reads it
                    self.app.monitor.stream_inbound_time.update(dict.fromkeys(batch_read, now))
                    for messages in batches.values():
                        for message in messages:
                            self.track_message(message)
                    for handler, messages in batches.items():
                        # a batch is processed whole even if the fetcher is cancelled
                        await asyncio.shield(handler.deliver(messages))
                self.diag.unset_flag(CONSUMER_FETCHING)
        except BaseException as exc:
            stopped = isinstance(exc, (asyncio.CancelledError, *self.consumer_stopped_errors))
            if stopped and self.transport.app.should_stop:
                return  # stopping anyway
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)


class Producer(faust_aiokafka.Producer):
    #: set from Settings.producer_idempotence when the app is built
    idempotence: ClassVar[bool] = False

    def _settings_extra(self) -> Mapping[str, Any]:
        extra = dict(super()._settings_extra())
        if self.idempotence:
            extra.update(acks="all", enable_idempotence=True)
        return extra


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer
    default_port = 9092


_on_recovery_completed = Recovery.on_recovery_completed


async def _seek_before_resuming_streams(self: Recovery, generation_id: int = 0) -> None:
    """``Recovery.on_recovery_completed`` with the flow stopped until the streams are seeked.

    After restoring a changelog, faust-streaming 0.15.3 resumes the stream partitions
    while the flow is still on (it was turned on to read the changelog) and only then
    seeks them to the committed offsets. Records fetched in between are processed and
    move the read offset; the seek moves it back, and the next record already fetched
    opens a "gap" that Faust counts as acknowledged: the records in it are committed
    without ever being processed. Stopping the flow first closes the window; the
    original method turns it back on after the seek (as ``_resume_streams`` does).
    """
    self.app.consumer.stop_flow()
    self.app.flow_control.suspend()
    await _on_recovery_completed(self, generation_id)


def deliver_in_batches(app: AppT, topic: TopicT, handler: BatchHandler) -> None:
    """Subscribe the app to ``topic`` and hand its messages to ``handler`` per fetch."""
    for name in topic.topics:
        Consumer.batch_handlers[name] = handler
    app.topics.add(topic)


def register(idempotence: bool) -> None:
    Producer.idempotence = idempotence
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
    Recovery.on_recovery_completed = _seek_before_resuming_streams  # type: ignore[method-assign]
