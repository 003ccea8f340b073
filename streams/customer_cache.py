"""The engine's customer state store: a write-back cache over the RocksDB table.

Decoding a customer's state costs time in proportion to its de-duplication memory, and
the busiest customers are in almost every fetch: so decoded states stay in memory
between fetches (least recently used ones leave beyond a bound), and a changed state is
written once per flush (:func:`streams.table_writer.write_bulk`), not once per event:
Kafka Streams' record cache, flushed at commit.
"""

from __future__ import annotations

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
        #: changed since the last flush -> its partition
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

    async def flush(self) -> int:
        """Write every changed state; returns how many were written."""
        if not self._dirty:
            return 0
        states = self._states
        writes = []
        for customer_id, partition in self._dirty.items():
            state = states[customer_id]
            assert state is not None
            writes.append((partition, customer_id.encode(), state.to_bytes()))
        await write_bulk(self._app, self._table, writes)
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
