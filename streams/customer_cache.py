"""The engine's customer state store: a write-back cache over the RocksDB table.

Decoding a customer's state costs time in proportion to its de-duplication memory, and
the busiest customers are in almost every fetch: so decoded states stay in memory
between fetches (least recently used ones leave beyond a bound), and a changed state is
written once per flush (:func:`streams.table_writer.write_bulk`), not once per event:
Kafka Streams' record cache, flushed at commit. A flush is a :meth:`CustomerCache.snapshot`
taken between two batches and a :meth:`CustomerCache.write` that may run beside the next.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any

from faust.types import AppT

from scoring.customer import CustomerState
from streams.table_writer import partition_db, write_bulk


class CustomerCache:
    def __init__(self, app: AppT, table: Any, capacity: int) -> None:
        self._app = app
        self._table = table
        self._capacity = capacity
        self._states: OrderedDict[str, CustomerState | None] = OrderedDict()
        #: changed since the last snapshot -> its partition
        self._dirty: dict[str, int] = {}
        #: partition of the record being processed (a customer's state lives there)
        self.partition = 0

    def load(self, customer_id: str) -> CustomerState | None:
        try:
            self._states.move_to_end(customer_id)
            return self._states[customer_id]
        except KeyError:
            raw = partition_db(self._table, self.partition).get(customer_id.encode())
            state = CustomerState.from_bytes(raw) if raw else None
            self._states[customer_id] = state
            return state

    def save(self, state: CustomerState) -> None:
        self._states[state.customer_id] = state
        self._dirty[state.customer_id] = self.partition

    def snapshot(self) -> list[tuple[int, bytes, bytes]]:
        """Encode every state changed since the last snapshot, as ``(partition, key,
        value)`` writes for :meth:`write`; the states count as clean from now on (a change
        made while the writes are in flight goes into the next snapshot)."""
        states = self._states
        writes = []
        for customer_id, partition in self._dirty.items():
            state = states[customer_id]
            assert state is not None
            writes.append((partition, customer_id.encode(), state.to_bytes()))
        self._dirty.clear()
        return writes

    async def write(self, writes: list[tuple[int, bytes, bytes]]) -> None:
        """Write a snapshot to the table, then let the least recently used clean states go."""
        if writes:
            await write_bulk(self._app, self._table, writes)
        excess = len(self._states) - self._capacity
        if excess > 0:
            leaving = list(itertools.islice((c for c in self._states if c not in self._dirty), excess))
            for customer_id in leaving:
                del self._states[customer_id]

    def clear(self) -> None:
        """Forget every cached state (partitions moved: others may change them now)."""
        assert not self._dirty, "clearing unflushed customer state"
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)
