"""One input topic's de-duplication memory for one customer.

SPEC keeps de-duplication by ``event_id`` for at least 7 days of event time, so a busy
customer remembers tens of thousands of ids, and the memory travels in the customer's
state value (one changelog record carries the state and the events it counted). Each
id is kept as a 64-bit hash with its event time, 16 bytes, in arrival order; the packed
form is kept up to date as ids come and go, so writing the state copies it as it is
(raw bytes in the state's msgpack value) instead of re-packing every entry at every flush.
"""

from __future__ import annotations

import hashlib
import struct

from scoring.config import DAY_MS

#: SPEC: de-duplication by ``event_id`` holds per input topic for 7 days of event time;
#: an event older than its topic's newest minus this is ``late``
DEDUP_HORIZON_MS = 7 * DAY_MS

_ENTRY = struct.Struct("<qq")  # event id hash, event time (epoch ms)
#: a forgotten prefix of the packed form is cut off once it is this large and half of it
_COMPACT_BYTES = 64 * 1024


def id_hash(event_id: str) -> int:
    """A 64-bit hash of an event id: collisions are negligible among a customer's week."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little", signed=True)


class SeenIds:
    """Event-id hash -> event time, in arrival order, with its packed form alongside."""

    __slots__ = ("_front", "_packed", "_start", "times")

    def __init__(self, packed: bytes = b"") -> None:
        self.times: dict[int, int] = dict(_ENTRY.iter_unpack(packed))
        self._packed = bytearray(packed)
        self._start = 0  # bytes of _packed already forgotten
        #: the event time of the oldest arrival remembered (``None``: none, or not read yet),
        #: so that :meth:`forget_before` mostly costs one comparison
        self._front: int | None = None

    def __contains__(self, event_hash: int) -> bool:
        return event_hash in self.times

    def __len__(self) -> int:
        return len(self.times)

    def __eq__(self, other: object) -> bool:
        """Same ids with the same times in the same arrival order."""
        if not isinstance(other, SeenIds):
            return NotImplemented
        return list(self.times.items()) == list(other.times.items())

    __hash__ = None  # type: ignore[assignment]  # mutable

    def add(self, event_hash: int, ts: int) -> None:
        """Remember an id that is not remembered yet."""
        self.times[event_hash] = ts
        if self._start == len(self._packed):
            self._front = ts
        self._packed += _ENTRY.pack(event_hash, ts)

    def forget_before(self, horizon: int) -> None:
        """Forget ids from the oldest arrival on while their event time is before
        ``horizon`` (arrival order is close to time order, so this trims the front)."""
        if self._front is not None and self._front >= horizon:
            return
        packed, start, times = self._packed, self._start, self.times
        end = len(packed)
        front = None
        while start < end:
            event_hash, ts = _ENTRY.unpack_from(packed, start)
            if ts >= horizon:
                front = ts
                break
            del times[event_hash]
            start += _ENTRY.size
        if start >= _COMPACT_BYTES and start * 2 >= end:
            del packed[:start]
            start = 0
        self._start, self._front = start, front

    def count_before(self, horizon: int) -> int:
        """How many ids :meth:`forget_before` would forget."""
        packed, start, end = self._packed, self._start, len(self._packed)
        count = 0
        while start < end and _ENTRY.unpack_from(packed, start)[1] < horizon:
            count += 1
            start += _ENTRY.size
        return count

    def packed(self) -> memoryview:
        """The packed entries (what the state's value holds; ``SeenIds(packed)`` reads
        them back): a view, valid until the next change."""
        return memoryview(self._packed)[self._start :]
