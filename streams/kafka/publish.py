"""Sending output records: straight to Faust's producer, one call per record.

``Topic.send`` adds Faust's attachment and callback machinery per record; the agents
here keep their own acknowledgement futures, so they call the producer directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from scoring.catalog import ALERTS
from scoring.rollup.records import Output
from streams.ops import metrics


class Producer(Protocol):
    """What is used of Faust's producer (``ProducerT.send``)."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None,
        partition: int | None, timestamp: float | None, headers: Any,
    ) -> Awaitable[Any]: ...


class Publisher:
    """Sends to the deployment's output topics through ``producer()`` (looked up at each
    send: Faust makes its producer when the worker starts)."""

    def __init__(self, producer: Callable[[], Producer], cluster_names: dict[str, str]) -> None:
        self._producer = producer
        self._names = cluster_names

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> Awaitable[Any]:
        """Queue one record for ``topic`` (a SPEC name); returns its acknowledgement future."""
        return await self._producer().send(self._names[topic], key, value, partition, None, None)

    async def send_outputs(self, records: list[Output]) -> list[Awaitable[Any]]:
        """Publish roll-up records; returns their acknowledgement futures."""
        futures = []
        for record in records:
            if record.topic == ALERTS and not record.value["retracted"]:
                metrics.ALERTS.inc()
            futures.append(await self.send(record.topic, record.key.encode(), orjson.dumps(record.value)))
        return futures
