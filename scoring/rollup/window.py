"""Items whose time falls in a trailing window of a clock that only moves forward, with
their values summed: a team's active customers (time: last behaviour event; value:
clamped net points) and its due actions (time: due time; value: 1 if done on time).

Recounted over every customer and action each time a team is scored, a team update cost
O(customers + actions): ~440 µs at 40 000 customers per team. Kept up to date as items
change and the clock moves, it costs O(log n) per change and O(1) to read.

The values summed are whole numbers (clamped net points, 0 or 1), so the sum is exact
whatever the order of the updates, and equal to a recount.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class TrailingWindow:
    """Items with ``clock - window_ms < time <= clock``: how many, and their values' sum."""

    def __init__(self, window_ms: int, clock: int) -> None:
        self.window_ms = window_ms
        self.clock = clock
        self.total = 0.0
        #: every item not yet out of the window: key -> (time, value)
        self._items: dict[str, tuple[int, float]] = {}
        #: the items in the window now: key -> value
        self._inside: dict[str, float] = {}
        #: (time, key) of items later than the clock, soonest first, and of the items in
        #: the window, oldest first; entries of items changed since are skipped
        self._coming: list[tuple[int, str]] = []
        self._leaving: list[tuple[int, str]] = []

    @classmethod
    def of(cls, window_ms: int, clock: int, items: Iterable[tuple[str, int | None, float]]) -> TrailingWindow:
        """A window at ``clock`` holding ``(key, time, value)`` items."""
        window = cls(window_ms, clock)
        for key, time, value in items:
            window.set(key, time, value)
        return window

    def __len__(self) -> int:
        return len(self._inside)

    def set(self, key: str, time: int | None, value: float) -> None:
        """An item's time and value (time ``None``: never in the window)."""
        self.remove(key)
        if time is None or time <= self.clock - self.window_ms:
            return
        self._items[key] = (time, value)
        if time > self.clock:
            heapq.heappush(self._coming, (time, key))
        else:
            self._enter(key, time, value)
        if len(self._coming) + len(self._leaving) > 2 * len(self._items) + 64:
            self._rebuild_heaps()  # an item set again and again leaves a stale entry each time

    def remove(self, key: str) -> None:
        if self._items.pop(key, None) is not None and key in self._inside:
            self.total -= self._inside.pop(key)

    def advance(self, clock: int) -> None:
        """Move the clock forward to ``clock``: items come into the window and leave it."""
        if clock <= self.clock:
            return
        self.clock = clock
        items = self._items
        while self._coming and self._coming[0][0] <= clock:
            time, key = heapq.heappop(self._coming)
            held = items.get(key)
            if held is not None and held[0] == time and key not in self._inside:
                self._enter(key, time, held[1])
        horizon = clock - self.window_ms
        while self._leaving and self._leaving[0][0] <= horizon:
            time, key = heapq.heappop(self._leaving)
            held = items.get(key)
            if held is not None and held[0] == time:
                del items[key]
                self.total -= self._inside.pop(key)

    def _enter(self, key: str, time: int, value: float) -> None:
        self._inside[key] = value
        self.total += value
        heapq.heappush(self._leaving, (time, key))

    def _rebuild_heaps(self) -> None:
        self._coming = [(t, k) for k, (t, _) in self._items.items() if k not in self._inside]
        self._leaving = [(t, k) for k, (t, _) in self._items.items() if k in self._inside]
        heapq.heapify(self._coming)
        heapq.heapify(self._leaving)
