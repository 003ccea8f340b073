"""The engine's customer state store: a write-back cache over the RocksDB table.

Decoding a customer's state costs time in proportion to its de-duplication memory, and
the busiest customers are in almost every fetch: so decoded states stay in memory
between fetches (least recently used ones leave beyond a bound), and a changed state is
written to the table (RocksDB and one changelog record) once per flush, not once per
event or per fetch: Kafka Streams' record cache, flushed at commit.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event
from faust.types import AppT, EventT, Message

from scoring.customer import CustomerState


class CustomerCache:
    def __init__(self, app: AppT, table: Any, capacity: int) -> None:
        self._app = app
        self._table = table
        self._capacity = capacity
        self._states: OrderedDict[str, CustomerState | None] = OrderedDict()
        #: changed since the last flush -> the latest message that changed it
        self._dirty: dict[str, Message] = {}
        #: the message being processed: a table access needs its partition
        self.current: Message | None = None

    def load(self, customer_id: str) -> CustomerState | None:
        try:
            self._states.move_to_end(customer_id)
            return self._states[customer_id]
        except KeyError:
            with self._partition_of(self.current):
                raw = self._table.get(customer_id.encode())
            state = CustomerState.from_bytes(raw) if raw else None
            self._states[customer_id] = state
            return state

    def save(self, state: CustomerState) -> None:
        assert self.current is not None, "save outside of a message"
        self._states[state.customer_id] = state
        self._dirty[state.customer_id] = self.current

    def flush(self) -> int:
        """Write every changed state to the table; returns how many were written.

        Each is written as part of the last message that changed it, so its changelog
        record lands on that message's partition (the customer's).
        """
        for customer_id, message in self._dirty.items():
            state = self._states[customer_id]
            assert state is not None
            with self._partition_of(message):
                self._table[customer_id.encode()] = state.to_bytes()
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

    @contextmanager
    def _partition_of(self, message: Message | None) -> Iterator[None]:
        """Table access as part of ``message``: Faust takes the RocksDB instance and the
        changelog partition from the current event's partition."""
        if message is None:
            yield
            return
        event: EventT[Any] = self._app.create_event(message.key, None, None, message)
        token = _current_event.set(weakref.ref(event))
        try:
            yield
        finally:
            _current_event.reset(token)
