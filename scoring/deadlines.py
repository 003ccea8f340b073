"""A min-heap of risk due times, so a clock tick costs O(k log n) for k due entries
instead of a scan over every open opportunity."""

from __future__ import annotations

import heapq


class DeadlineIndex:
    """Due times per customer. Entries are hints: the state decides when popped.

    A customer may appear several times (one entry per armed opportunity, and
    stale entries after its state changed); popping returns each customer once.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, str, int]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: int, customer_id: str, partition: int = 0) -> None:
        heapq.heappush(self._heap, (due, customer_id, partition))

    def pop_due(self, now: int) -> list[tuple[str, int]]:
        """Remove and return ``(customer_id, partition)`` of every entry due at ``now``."""
        due: dict[tuple[str, int], None] = {}
        while self._heap and self._heap[0][0] <= now:
            _, customer_id, partition = heapq.heappop(self._heap)
            due[(customer_id, partition)] = None
        return list(due)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget customers of partitions this worker no longer owns."""
        self._heap = [e for e in self._heap if e[2] not in partitions]
        heapq.heapify(self._heap)
