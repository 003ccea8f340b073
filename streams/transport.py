"""Faust's aiokafka transport with the two knobs Faust does not expose.

* ``fetch_max_wait_ms``: Faust hard-codes 1 500 ms, which puts seconds of latency on
  a lightly loaded partition; Credence waits at most ``FETCH_MAX_WAIT_MS``.
* ``enable_idempotence``: on for real clusters, off for the embedded broker, which
  rejects InitProducerId.

Registered under the URL scheme ``credence://`` so the stock ``kafka://`` is untouched.

``register()`` also works around a faust-streaming 0.15.3 race that loses records when
a worker takes over partitions whose changelog it must restore (see
:func:`_seek_before_resuming_streams`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import aiokafka
from faust.tables.recovery import Recovery
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 100
SCHEME = "credence"


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by start() to build the fetcher
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


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


def register(idempotence: bool) -> None:
    Producer.idempotence = idempotence
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
    Recovery.on_recovery_completed = _seek_before_resuming_streams  # type: ignore[method-assign]
