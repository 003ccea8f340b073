"""Everything retained in some topics, up to their end offsets as the read starts.

A plain consumer: no consumer group (so no join, no offset ever committed) and no
producer. Used by ``credence rules diff`` to score what the cluster holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from streams.kafka.client import client_options
from streams.settings import Settings

#: a read that gets no record and no answer for this long gives up (seconds)
STALL_S = 30.0

Runs: TypeAlias = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
#: called as records arrive: (records read, records at most to read)
Progress: TypeAlias = Callable[[int, int], None]


class RetainedLogError(RuntimeError):
    """The topics cannot be read to their end (missing topic, a read that stalls)."""


async def read_retained(
    settings: Settings, topics: Sequence[str], progress: Progress | None = None, stall_s: float = STALL_S
) -> Runs:
    """Each partition's records of ``topics`` (names of topics.yaml), in offset order,
    from the log start to the end offset taken as the read begins."""
    names = [settings.topic_prefix + t for t in topics]
    partitions = await _partitions(settings, names)
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", client_id="credence-rules-diff", fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        listed = await consumer.end_offsets(partitions)
        return await _read(consumer, starts, listed, progress, stall_s)
    finally:
        await consumer.stop()


async def _partitions(settings: Settings, names: list[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**client_options(settings), client_id="credence-rules-diff")
    await admin.start()
    try:
        # every topic: a request naming a missing topic lets the broker auto-create it
        described = await admin.describe_topics()
    finally:
        await admin.close()
    found = {t["topic"]: t for t in described if t["error_code"] == 0 and t["partitions"]}
    if missing := [n for n in names if n not in found]:
        raise RetainedLogError(f"no such topic on the cluster: {', '.join(missing)} (see `credence topics check`)")
    return [TopicPartition(n, p["partition"]) for n in names for p in sorted(
        found[n]["partitions"], key=lambda p: p["partition"])]


async def _read(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    listed: dict[TopicPartition, int],
    progress: Progress | None,
    stall_s: float,
) -> Runs:
    """Read every partition from its start to its end.

    The embedded broker (Tansu) answers ListOffsets with the end of the first record of
    a partition's last batch, not of the batch; the high watermark of the first fetch
    response is right, so a partition's end is the larger of the two (on Apache Kafka
    they agree, but for records written since the read began).
    """
    runs: Runs = {tp: [] for tp in starts}
    pending = {tp for tp in starts if listed[tp] > starts[tp]}  # nothing to read: even on Tansu
    ends = dict(listed)
    settled: set[TopicPartition] = set()
    for tp, start in starts.items():
        consumer.seek(tp, start)
    consumer.pause(*(set(starts) - pending))
    read, most = 0, sum(listed[tp] - starts[tp] for tp in pending)
    moved = time.monotonic()
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=200)
        for tp in pending - settled:
            if (highwater := consumer.highwater(tp)) is not None:
                most += max(listed[tp], highwater) - ends[tp]
                ends[tp] = max(listed[tp], highwater)
                settled.add(tp)
        for tp, records in batch.items():
            kept = [r for r in records if r.offset < ends[tp]]
            runs[tp] += kept
            read += len(kept)
        done = {tp for tp in pending & settled if await consumer.position(tp) >= ends[tp]}
        if batch or done:
            moved = time.monotonic()
            if progress is not None:
                progress(read, most)
        elif time.monotonic() - moved > stall_s:
            late = ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(pending))
            raise RetainedLogError(f"no records for {stall_s:.0f}s while reading {late}")
        consumer.pause(*done)
        pending -= done
    return runs
