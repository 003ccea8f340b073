"""The engine's customer state store: a write-back cache over the RocksDB table.

Decoding a customer's state costs time in proportion to its de-duplication memory, and
the busiest customers are in almost every fetch: so decoded states stay in memory
between fetches (least recently used ones leave beyond a bound), and a changed state is
written once per flush (:class:`streams.kafka.table_writer.BulkTable`), not once per event:
Kafka Streams' record cache, flushed at commit. A flush is a :meth:`CustomerCache.snapshot`
taken between two batches and a :meth:`CustomerCache.write` that may run beside the next.

A state's checkpoint for the engine's bulkhead (:mod:`scoring.bulkhead`) is its last
encoded form: the snapshot's while it is being written, then the table's.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from scoring.bulkhead import Journal
from scoring.customer import CustomerState


class PartitionedTable(Protocol):
    """The table under the cache (:class:`streams.kafka.table_writer.BulkTable`)."""

    def get(self, partition: int, key: bytes) -> bytes | None: ...

    async def write(self, writes: Iterable[tuple[int, bytes, bytes | None]]) -> None: ...


class CustomerCache:
    def __init__(self, table: PartitionedTable, capacity: int) -> None:
        self._table = table
        #: decoded states kept beyond a write; changed ones stay until written
        self._capacity = capacity
        self._states: OrderedDict[str, CustomerState | None] = OrderedDict()
        #: changed since the last snapshot -> its partition
        self._dirty: dict[str, int] = {}
        #: encoded by the snapshot being written, not in the table yet
        self._unwritten: dict[str, bytes] = {}
        self.journal = Journal()
        #: partition of the record being processed (a customer's state lives there)
        self.partition = 0

    def load(self, customer_id: str) -> CustomerState | None:
        self.journal.loaded(customer_id)
        try:
            self._states.move_to_end(customer_id)
            return self._states[customer_id]
        except KeyError:
            return self._read(customer_id)

    def known(self, key: bytes) -> bool:
        """Whether the customer of this record key has a state (cached or written). What
        the table holds stays in the cache for the engine's :meth:`load`; a state that
        cannot be read counts as known: the engine meets it and dead-letters."""
        customer_id = key.decode(errors="replace")
        try:
            return self._states[customer_id] is not None
        except KeyError:
            try:
                return self._read(customer_id) is not None
            except Exception:
                return True

    def _read(self, customer_id: str) -> CustomerState | None:
        """The customer's state from the table, kept in the cache (``None``: none yet)."""
        raw = self._table.get(self.partition, customer_id.encode())
        state = self._states[customer_id] = CustomerState.from_bytes(raw) if raw else None
        return state

    def save(self, state: CustomerState) -> None:
        self._states[state.customer_id] = state
        self._dirty[state.customer_id] = self.partition

    def checkpoint(self, customer_id: str) -> bytes | None:
        raw = self._unwritten.get(customer_id)
        if raw is None:
            raw = self._table.get(self.partition, customer_id.encode())
        return raw

    def restore(self, customer_id: str, state: CustomerState | None) -> None:
        self._states[customer_id] = state
        self._dirty.pop(customer_id, None)

    def snapshot(self) -> list[tuple[int, bytes, bytes]]:
        """Encode every state changed since the last snapshot, as ``(partition, key,
        value)`` writes for :meth:`write`; the states count as clean from now on (a change
        made while the writes are in flight goes into the next snapshot)."""
        states, journal, unwritten = self._states, self.journal, self._unwritten
        writes = []
        for customer_id, partition in self._dirty.items():
            state = states[customer_id]
            assert state is not None
            raw = unwritten[customer_id] = state.to_bytes()
            journal.discard(customer_id)
            writes.append((partition, customer_id.encode(), raw))
        self._dirty.clear()
        return writes

    async def write(self, writes: list[tuple[int, bytes, bytes]]) -> None:
        """Write a snapshot to the table, then let the least recently used clean states go."""
        if writes:
            await self._table.write(writes)
        unwritten = self._unwritten
        for _, key, raw in writes:
            customer_id = key.decode()
            if unwritten.get(customer_id) is raw:  # else a later snapshot encoded it again
                del unwritten[customer_id]
        excess = self.excess()
        if excess > 0:
            leaving = list(itertools.islice((c for c in self._states if c not in self._dirty), excess))
            for customer_id in leaving:
                del self._states[customer_id]
                self.journal.discard(customer_id)

    def excess(self) -> int:
        """Cached states beyond the capacity (a write lets that many clean ones go)."""
        return len(self._states) - self._capacity

    def clear(self) -> None:
        """Forget every cached state (partitions moved: others may change them now)."""
        assert not self._dirty, "clearing unflushed customer state"
        self._states.clear()
        self._unwritten.clear()
        self.journal.clear()

    def __len__(self) -> int:
        return len(self._states)
