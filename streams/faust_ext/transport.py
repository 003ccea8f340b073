"""Faust's aiokafka transport with what Faust does not offer.

* The consumer thread (:mod:`.consumer_thread`): a short fetch wait, seeks that survive
  a rebalance, metadata refreshed until the subscribed topics are known, end offsets
  the embedded broker gets right.
* ``enable_idempotence``: on for real clusters, off for the embedded broker, which
  rejects InitProducerId.
* Batch delivery: Faust hands every message to its streams one by one (an
  ``asyncio.wait`` with two tasks, an event, a queue hop and an ack each: about 85 µs
  of CPU per message on a 2-core machine, measured with an agent that only counts).
  Topics registered with :func:`deliver_in_batches` skip that: each fetch's records
  of those topics go to the handler as aiokafka returned them, per partition. The
  handler acknowledges them in bulk (:meth:`Consumer.ack_offsets`) once their effects
  are durable; Faust commits as usual.

Registered under the URL scheme ``credence://`` so the stock ``kafka://`` is untouched.

``register()`` also installs :mod:`streams.faust_ext.recovery`, the fix for a
faust-streaming 0.15.3 race that loses records when a worker takes over partitions whose
changelog it must restore.

Private names it depends on, and why:

faust-streaming 0.15.3 ``faust.transport.consumer.Consumer`` (the fetch loop is an edited
copy of ``_drain_messages`` and ``getmany``; the bulk ack is a copy of ``ack``):

* ``_drain_messages``: overridden, the loop Faust's fetcher task runs.
* ``_wait_next_records``: called for each fetch, as Faust's ``getmany`` does.
* ``_read_offset``: the last delivered offset per partition; records below it are
  dropped as read, a seek resets it (``_give_back`` sets it as ``seek_wait`` does).
* ``_buffered_partitions``: partitions Faust keeps fetching while paused.
* ``_committed_offset``, ``_acked``, ``_acked_index``, ``_n_acked``,
  ``_waiting_for_ack``, ``_commit_every``: the acknowledgement bookkeeping Faust
  commits from (``ack_offsets`` does in bulk what ``ack`` does per message).
* ``_add_gap``: offsets that are not records (compaction, transactions) committed as gaps.
* ``_to_message``: a fetched record as the message Faust's callback takes.
* ``_thread``: the consumer thread (:mod:`.consumer_thread`), where ``_give_back``
  rewinds positions (``call_thread``).
* ``_stopped`` (mode ``Service``): of the consumer and the fetcher, the loop's exit test.
* ``_new_consumer_thread``: overridden to build :class:`.consumer_thread.ConsumerThread`.

faust-streaming 0.15.3 ``faust.transport.drivers.aiokafka.Producer``:
``_settings_extra`` (overridden: idempotence).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Mapping, Sequence
from time import monotonic
from typing import Any, ClassVar, Protocol, TypeAlias, cast

from aiokafka.structs import ConsumerRecord
from faust.transport import drivers
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT, TopicT
from faust.types.tuples import ack_lock
from mode import ServiceT
from mode.utils.futures import notify

from streams.faust_ext import recovery
from streams.faust_ext.consumer_thread import ConsumerThread

SCHEME = "credence"


#: a fetched record as aiokafka returns it (``topic``, ``partition``, ``offset``, ``key``,
#: ``value``, ``timestamp`` in epoch ms)
Record: TypeAlias = ConsumerRecord[bytes, bytes]


class BatchHandler(Protocol):
    async def deliver(self, batch: Mapping[TP, Sequence[Record]]) -> Mapping[TP, Sequence[Record]] | None:
        """Process one fetch's records of batch topics (in offset order per partition) and
        acknowledge them with :meth:`Consumer.ack_offsets` once their effects are durable:
        now or at a later flush. Returns the tails of partitions it did not process (to be
        fetched again), if any."""

    async def flush(self) -> None:
        """Make every delivered record's effects durable and acknowledge it."""


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
        """Flush the batch handlers first: their delivered records are acknowledged only
        then (Faust waits here for every tracked message before giving partitions away)."""
        for handler in set(self.batch_handlers.values()):
            await handler.flush()
        await super().wait_empty()

    def ack_offsets(self, tp: TP, first: int, last: int) -> None:
        """``Consumer.ack`` for the records ``first..last`` of ``tp`` delivered in one
        batch: the same bookkeeping (Faust commits the acknowledged offsets), one call per
        partition and fetch instead of one per record. Offsets in between that were not
        records (compaction, transaction markers) are gaps Faust commits anyway."""
        if not self.app.topics.acks_enabled_for(tp.topic):
            return
        with ack_lock:
            committed = self._committed_offset[tp]
            offsets: Sequence[int] = range(max(first, committed or 0), last + 1)
            index = self._acked_index[tp]
            if not index.isdisjoint(offsets):  # re-delivered after a seek back
                offsets = [o for o in offsets if o not in index]
            if offsets:
                self._acked[tp].extend(offsets)
                index.update(offsets)
                self._n_acked += len(offsets)
            notify(self._waiting_for_ack)

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's fetch loop (``Consumer._drain_messages`` and ``getmany`` of
        faust-streaming 0.15.3) with two changes: the records of batch topics go to their
        handler as they came, one mapping of partition to records per fetch (no Faust
        message objects, sensors or per-record acknowledgement); the other topics' messages
        are awaited directly instead of inside ``wait_first``.

        The rest of a fetch is dropped, undelivered and not marked as read, once the
        flow has been stopped while the loop held it (a rebalance or a recovery seeks
        afterwards): Faust's loop went on delivering it after the flow resumed, so the
        read offsets overtook the seek and the records fetched again from the committed
        offset were dropped as already read (partitions stopped making progress).
        Records that come back from a fetch are current: aiokafka discards what it
        fetched before a seek.

        Dropped changelog records are given back (:meth:`_give_back`): nothing else
        seeks a changelog partition while its restore runs.
        """
        should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set  # type: ignore[attr-defined]
        try:
            while not (should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await asyncio.sleep(0)  # a fetch can return at once, over and over
                if self.should_stop:
                    break
                records, active = await self._wait_next_records(1.0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    await self._give_back(records.items())
                    try:
                        await self.perform_seek()  # as Faust's getmany: back to committed offsets
                    except Exception as exc:
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                    continue
                await self._deliver(records, active)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except BaseException as exc:
            stopped = isinstance(exc, (asyncio.CancelledError, *self.consumer_stopped_errors))
            if stopped and self.transport.app.should_stop:
                return  # stopping anyway
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(self, records: Mapping[TP, list[Record]], active: set[TP] | None) -> None:
        """One fetch: each partition's unread records to its batch handler or, one by
        one, to Faust's callback; stops at a rebalance or a stop of the flow."""
        stops = self._flow_stops
        generation = self.app.consumer_generation_id
        read_offsets = self._read_offset
        monitor = self.app.monitor
        batches: dict[BatchHandler, dict[TP, list[Record]]] = {}

        def stale() -> bool:  # see _drain_messages
            return self._flow_stops != stops or self.app.consumer_generation_id != generation

        fetch = list(records.items())
        for i, (tp, fetched) in enumerate(fetch):
            if stale():
                return await self._give_back(fetch[i:])
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                await self._give_back([(tp, fetched)])  # paused since the fetch began
                continue
            monitor.track_tp_end_offset(tp, self.highwater(tp))
            read = read_offsets[tp]
            if read is not None and fetched[0].offset < read:
                fetched = [r for r in fetched if r.offset >= read]  # delivered before a seek back
                if not fetched:
                    continue
            if self.app.topics.acks_enabled_for(tp.topic):
                await self._add_gaps(tp, read, fetched)
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            handler = self.batch_handlers.get(tp.topic)
            if handler is not None:
                batches.setdefault(handler, {})[tp] = fetched
                continue
            for j, record in enumerate(fetched):
                if stale() or not await self._hand_over(tp, record):
                    return await self._give_back([(tp, fetched[j:]), *fetch[i + 1:]])
                read_offsets[tp] = record.offset
        if not batches:
            return
        if self._flow_stops != stops:  # stopped while the loop held the fetch
            return await self._give_back([item for by_tp in batches.values() for item in by_tp.items()])
        now = monotonic()
        for by_tp in batches.values():
            for tp, fetched in by_tp.items():
                read_offsets[tp] = fetched[-1].offset
                monitor.stream_inbound_time[tp] = now  # Faust's livelock check reads it
        for handler, by_tp in batches.items():
            # a batch is processed whole even if the fetcher is cancelled
            held = await asyncio.shield(handler.deliver(by_tp))
            if held:
                await self._give_back(held.items())

    async def _hand_over(self, tp: TP, record: Record) -> bool:
        """Faust's callback for one record of a non-batch topic; ``False`` when a
        rebalance cancelled its put into a full agent queue (``flow_control.clear()``
        cancels waiting puts): the rest of the fetch is stale then. Faust's loop abandons
        a waiting callback once the flow stops; the cancellation escaping the loop would
        end the fetcher task, which nothing restarts."""
        try:
            await self.callback(self._to_message(tp, record))
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise  # this loop is being cancelled
            return False
        return True

    async def _give_back(self, undelivered: Iterable[tuple[TP, Sequence[Record]]]) -> None:
        """Seek every partition the loop drops fetched records of back to the first of
        them, unless something has seeked it since (``ConsumerThread.rewind``).

        aiokafka's position moves past what a fetch returns. Changelog partitions were
        the first case found: nothing seeks one while its restore runs, so a dropped
        record was never read again and the restore waited for it forever (the stall
        test_scale_out hit about once in a hundred take-overs: a fetch begun before the
        revocation returned the newly assigned changelogs' records while the flow was
        still stopped). Stream partitions are usually seeked to their committed offsets
        after the rebalance that made the loop drop their records, but not always: the
        chaos test found a partition whose whole backlog had been fetched and dropped,
        position at its end, nothing committed, no seek to follow. Giving back every
        partition makes a drop harmless whatever comes next; a later seek wins. A batch
        handler gives records back the same way (the signal processor holding a new
        customer's events for one more fetch, for a directory record written with them).
        """
        fetched = {tp: (records[0].offset, records[-1].offset) for tp, records in undelivered if records}
        if not fetched:
            return
        thread = cast(ConsumerThread, self._thread)
        for tp in await thread.call_thread(thread.rewind, fetched):
            first = fetched[tp][0]
            self._read_offset[tp] = first if first > 0 else None  # as Faust's seek_wait

    async def _add_gaps(self, tp: TP, read: int | None, fetched: Sequence[Record]) -> None:
        """Offsets skipped since the last read record (compacted or transactional topics)
        are gaps Faust commits as if acknowledged; as its loop does, per record."""
        first, last = fetched[0].offset, fetched[-1].offset
        if read and first - read > 1:
            await self._add_gap(tp, read + 1, first)
        if last - first + 1 == len(fetched):
            return  # contiguous: the common case
        for previous, record in itertools.pairwise(fetched):
            if record.offset - previous.offset > 1:
                await self._add_gap(tp, previous.offset + 1, record.offset)


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


def deliver_in_batches(app: AppT, topic: TopicT, handler: BatchHandler) -> None:
    """Subscribe the app to ``topic`` and hand its messages to ``handler`` per fetch."""
    for name in topic.topics:
        Consumer.batch_handlers[name] = handler
    app.topics.add(topic)


def register(idempotence: bool, fetch_max_wait_ms: int = ConsumerThread.fetch_max_wait_ms) -> None:
    """Register the ``credence://`` transport, and the recovery fix it needs
    (:func:`streams.faust_ext.recovery.install`)."""
    Producer.idempotence = idempotence
    ConsumerThread.fetch_max_wait_ms = fetch_max_wait_ms
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
    recovery.install()
