"""``credence heatmap --now TS``: ask the team agent for a snapshot and read it back."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from scoring.catalog import CREDIBILITY_HEATMAP, TEAM_UPDATES
from streams.kafka.client import client_options
from streams.settings import Settings


async def request_heatmap(settings: Settings, at: int, deadline_s: float = 30.0) -> list[dict[str, Any]]:
    """Publish a heat map request and collect the records that answer it.

    Every answering record says how many regions the snapshot has, and in how many
    parts its region is, so we know when we have them all. A deployment with no scored team answers nothing: we give up
    after ``deadline_s`` with an empty list.
    """
    request_id = uuid.uuid4().hex
    heatmap_topic = settings.topic_prefix + CREDIBILITY_HEATMAP
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    producer = AIOKafkaProducer(**client_options(settings))
    await consumer.start()
    await producer.start()
    try:
        numbers = await producer.partitions_for(heatmap_topic)  # waits for its metadata
        partitions = [TopicPartition(heatmap_topic, p) for p in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve positions now, before the request can be answered
            await consumer.position(tp)
        await producer.send_and_wait(
            settings.topic_prefix + TEAM_UPDATES,
            orjson.dumps({"kind": "heatmap", "at": at, "request_id": request_id}),
            key=b"\x00heatmap",
        )
        found: list[dict[str, Any]] = []
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for message in messages:
                    record = orjson.loads(message.value)
                    if record.get("request_id") == request_id:
                        found.append(record)
            if _complete(found):
                break
        return sorted(found, key=lambda r: (r["region"], r["part"]))
    finally:
        await producer.stop()
        await consumer.stop()


def _complete(found: list[dict[str, Any]]) -> bool:
    parts = {r["region"]: r["parts"] for r in found}
    return bool(found) and len(parts) >= found[0]["regions_total"] and len(found) >= sum(parts.values())
