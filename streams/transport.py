"""Faust's aiokafka transport with the two knobs Faust does not expose.

* ``fetch_max_wait_ms``: Faust hard-codes 1 500 ms, which puts seconds of latency on
  a lightly loaded partition; Credence waits at most ``FETCH_MAX_WAIT_MS``.
* ``enable_idempotence``: on for real clusters, off for the embedded broker, which
  rejects InitProducerId.

Registered under the URL scheme ``credence://`` so the stock ``kafka://`` is untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import aiokafka
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


def register(idempotence: bool) -> None:
    Producer.idempotence = idempotence
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
