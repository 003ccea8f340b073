"""The bench's own Kafka I/O: producing the events, the raw consumer (the reference rate),
records a deployment wrote, deleting a run's topics from an existing cluster."""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.machine import log
from bench.workload import BEHAVIOUR_TOPICS
from streams.faust_ext.access import refresh_metadata


async def produce_all(bootstrap: str, prefix: str, events: list[tuple[str, bytes, bytes]]) -> float:
    """Produce ``events``; returns the seconds taken (until flushed and acknowledged)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=131072)
    await producer.start()
    try:
        began = time.perf_counter()
        futures = [await producer.send(prefix + topic, value, key=key) for topic, key, value in events]
        await producer.flush()
        for f in futures:
            f.result()  # raises if a send failed
        return time.perf_counter() - began
    finally:
        await producer.stop()


@dataclass
class RawResult:
    events: int
    seconds: float
    first_record_s: float
    bytes: int
    by_partition: dict[int, int]  # events per partition number, over the four topics

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def raw_consume(bootstrap: str, prefix: str, n: int, deadline_s: float) -> RawResult:
    """A plain aiokafka consumer without a group: read the ``n`` records of the four
    behaviour topics from the beginning and orjson-decode each value.

    Timed from the moment its partitions are assigned and positioned at their start
    offsets (connected, metadata and offsets known: the analogue of a worker that has
    joined its group) until the ``n``-th value is decoded."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(prefix + t, p)
            for t in BEHAVIOUR_TOPICS
            for p in sorted(consumer.partitions_for_topic(prefix + t) or await _partitions(consumer, prefix + t))
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for tp in tps:
            await consumer.position(tp)
        began = time.perf_counter()
        count = size = 0
        first = math.nan
        by_partition: dict[int, int] = defaultdict(int)
        while count < n:
            if time.perf_counter() - began > deadline_s:
                raise TimeoutError(f"raw consumer read {count} of {n} records in {deadline_s}s")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for m in messages:
                    orjson.loads(m.value)
                    size += len(m.value)
                count += len(messages)
                by_partition[tp.partition] += len(messages)
            if count and math.isnan(first):
                first = time.perf_counter() - began
        return RawResult(count, time.perf_counter() - began, first, size, dict(by_partition))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        await refresh_metadata(consumer)  # aiokafka knows only subscribed topics
        if parts := consumer.partitions_for_topic(topic):
            return set(parts)
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no metadata for {topic}")


async def records_written(bootstrap: str, prefix: str, exclude: tuple[str, ...]) -> dict[str, int]:
    """Records in every topic of a deployment (its prefix, or its Faust app id for the
    changelogs) but ``exclude``, by name without the prefix. End offsets are taken as the
    larger of ListOffsets and a fetch's high watermark (the embedded broker's ListOffsets
    can fall short of the last batch's end)."""
    app_id = f"credence-{prefix.rstrip('.')}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="credence-bench")
    await admin.start()
    try:
        names = [t for t in await admin.list_topics()
                 if t.startswith((prefix, app_id)) and t not in {prefix + e for e in exclude}]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in names for p in sorted(await _partitions(consumer, t))]
        listed = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = time.monotonic() + 10
        while any(consumer.highwater(tp) is None for tp in tps) and time.monotonic() < end:
            await consumer.getmany(timeout_ms=100, max_records=1)
        counts: dict[str, int] = {}
        for tp in tps:
            name = tp.topic[len(prefix):] if tp.topic.startswith(prefix) else tp.topic[len(app_id) + 1:]
            counts[name] = counts.get(name, 0) + max(listed[tp], consumer.highwater(tp) or 0) - starts[tp]
        return counts
    finally:
        await consumer.stop()




def cleanup_topics(bootstrap: str, prefixes: list[str]) -> None:
    """Delete the topics of our deployments (prefixed, Faust's under the app ids, Quix's changelogs)."""
    owned = [p for prefix in prefixes for p in (prefix, f"credence-{prefix.rstrip('.')}", f"changelog__{prefix}")]
    deleted = asyncio.run(delete_topics(bootstrap, owned))
    log(f"deleted {len(deleted)} topics of this run: {', '.join(deleted) or '-'}")


async def delete_topics(bootstrap: str, prefixes: list[str]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="credence-bench")
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()
