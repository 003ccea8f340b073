"""The engine's customer state store: a write-back cache over the RocksDB table.

Decoding a customer's state costs time in proportion to its de-duplication memory, and
the busiest customers are in almost every fetch: so decoded states stay in memory
between fetches (least recently used ones leave beyond a bound), and a changed state is
written once per flush, not once per event: Kafka Streams' record cache, flushed at
commit.

A flush writes what Faust's ``Table.__setitem__`` would, in bulk: one changelog record
per changed customer (on the customer's partition), one RocksDB write batch per
partition, and, once the changelog has acknowledged them, the partition's persisted
changelog offset, from which Faust's recovery resumes. Faust still owns the table: its
changelog topic, partition assignment, recovery and standby replicas.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

from faust.types import TP, AppT
from rocksdict import WriteBatch

from scoring.customer import CustomerState


class CustomerCache:
    def __init__(self, app: AppT, table: Any, capacity: int) -> None:
        self._app = app
        self._table = table
        self._capacity = capacity
        self._states: OrderedDict[str, CustomerState | None] = OrderedDict()
        #: changed since the last flush -> its partition
        self._dirty: dict[str, int] = {}
        #: partition of the record being processed (a customer's state lives there)
        self.partition = 0

    def load(self, customer_id: str) -> CustomerState | None:
        try:
            self._states.move_to_end(customer_id)
            return self._states[customer_id]
        except KeyError:
            raw = self._db(self.partition).get(customer_id.encode())
            state = CustomerState.from_bytes(raw) if raw else None
            self._states[customer_id] = state
            return state

    def save(self, state: CustomerState) -> None:
        self._states[state.customer_id] = state
        self._dirty[state.customer_id] = self.partition

    async def flush(self) -> int:
        """Write every changed state; returns how many were written."""
        if not self._dirty:
            return 0
        changelog = self._table.changelog_topic.get_topic_name()
        send = self._app.producer.send
        batches: dict[int, Any] = {}
        acks: dict[int, list[Awaitable[Any]]] = {}
        for customer_id, partition in self._dirty.items():
            state = self._states[customer_id]
            assert state is not None
            key, value = customer_id.encode(), state.to_bytes()
            batches.setdefault(partition, WriteBatch(raw_mode=True)).put(key, value)
            acks.setdefault(partition, []).append(await send(changelog, key, value, partition, None, None))
        for partition, batch in batches.items():
            self._db(partition).write(batch)
        for partition, futures in acks.items():
            offsets = [metadata.offset for metadata in await asyncio.gather(*futures)]
            self._table.data.set_persisted_offset(TP(changelog, partition), max(offsets))
        written = len(self._dirty)
        self._dirty.clear()
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)
        return written

    def clear(self) -> None:
        """Forget every cached state (partitions moved: others may change them now)."""
        assert not self._dirty, "clearing unflushed customer state"
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)

    def _db(self, partition: int) -> Any:
        # Faust's RocksDB store has no public per-partition view
        return self._table.data._db_for_partition(partition)
