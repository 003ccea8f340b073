"""Bulk writes to a Faust table: what ``Table.__setitem__`` does, once per batch.

Faust writes a table key by sending one changelog record through its producer buffer
and, when that record is acknowledged, storing the partition's changelog offset in
RocksDB: tens of microseconds and two RocksDB puts per key. :func:`write_bulk` sends the
changelog records of a whole batch, applies one RocksDB write batch per partition, and,
once the records are acknowledged, stores each partition's highest offset, from which
Faust's recovery resumes. Faust still owns the table: its changelog topic, assignment,
recovery and standbys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

from faust.types import TP, AppT
from rocksdict import WriteBatch

from streams.faust_ext.access import kafka_producer, partition_db


async def write_bulk(app: AppT, table: Any, writes: Iterable[tuple[int, bytes, bytes | None]]) -> None:
    """Write ``(partition, key, value)`` triples, ``None`` deleting.

    The changelog records of a partition go to aiokafka as ready-made record batches
    (``create_batch``/``send_batch``): one acknowledgement per batch instead of a future
    and a trip through the accumulator per record.
    """
    changelog = table.changelog_topic.get_topic_name()
    producer = kafka_producer(app)
    rows: dict[int, list[tuple[bytes, bytes | None]]] = {}
    for partition, key, value in writes:
        rows.setdefault(partition, []).append((key, value))
    sent: dict[int, list[tuple[Awaitable[Any], int]]] = {}  # per partition: (ack, records in batch)
    for partition, pairs in rows.items():
        db_batch = WriteBatch(raw_mode=True)
        batch = producer.create_batch()
        for key, value in pairs:
            if value is None:
                db_batch.delete(key)
            else:
                db_batch.put(key, value)
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                sent.setdefault(partition, []).append(await _send(producer, batch, changelog, partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # a first record always fits
        sent.setdefault(partition, []).append(await _send(producer, batch, changelog, partition))
        partition_db(table, partition).write(db_batch)
    for partition, acks in sent.items():
        last = max(metadata.offset + count - 1 for metadata, count in zip(
            await asyncio.gather(*(ack for ack, _ in acks)), (count for _, count in acks), strict=True
        ))
        table.data.set_persisted_offset(TP(changelog, partition), last)


async def _send(producer: Any, batch: Any, topic: str, partition: int) -> tuple[Awaitable[Any], int]:
    """Queue a record batch; returns its acknowledgement (the batch's base offset) and size."""
    count = batch.record_count()
    return await producer.send_batch(batch, topic, partition=partition), count


class BulkTable:
    """A Faust table of bytes read one partition's RocksDB at a time and written in
    bulk (:func:`write_bulk`): the store of :class:`~streams.processing.customer_cache.CustomerCache`."""

    def __init__(self, app: AppT, table: Any) -> None:
        self.app = app
        self.table = table

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = partition_db(self.table, partition).get(key)
        return value

    async def write(self, writes: Iterable[tuple[int, bytes, bytes | None]]) -> None:
        await write_bulk(self.app, self.table, writes)
