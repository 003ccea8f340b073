"""Sending output records: straight to Faust's producer, one call per record.

``Topic.send`` adds Faust's attachment and callback machinery per record; the agents
here keep their own acknowledgement futures, so they call the producer directly.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import orjson

from scoring.catalog import ALERTS
from scoring.rollup.records import Output
from streams.app import app
from streams.kafka.topics import outputs
from streams.ops import metrics


async def send(topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> Awaitable[Any]:
    """Queue one record for ``topic`` (a SPEC name); returns its acknowledgement future."""
    return await app.producer.send(outputs[topic].get_topic_name(), key, value, partition, None, None)


async def send_outputs(records: list[Output]) -> list[Awaitable[Any]]:
    """Publish roll-up records; returns their acknowledgement futures."""
    futures = []
    for record in records:
        if record.topic == ALERTS and not record.value["retracted"]:
            metrics.ALERTS.inc()
        futures.append(await send(record.topic, record.key.encode(), orjson.dumps(record.value)))
    return futures
