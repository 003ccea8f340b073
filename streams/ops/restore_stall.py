"""When a restore counts as stuck: the decision of ``streams.ops.restore_watchdog``, apart
from Faust so that it can be tested alone."""

from __future__ import annotations


class StallDetector:
    """Fed the records a restore still needs, once in a while; says when to rejoin.

    A restore is stuck when that number is above 0 and has not fallen below its lowest
    value for ``stall_seconds``. Then the answer is yes, and again after each further
    ``stall_seconds`` without a new low, at most ``max_rejoins`` times. The lowest value,
    not the last: after a rejoin the restore starts again and reads once more what it
    had read, which is no progress. A new low, or the end of the restore (0), starts the
    count again.
    """

    def __init__(self, stall_seconds: float, max_rejoins: int) -> None:
        self.stall_seconds = stall_seconds
        self.max_rejoins = max_rejoins
        self.rejoins = 0
        self._lowest: int | None = None
        self._since = 0.0

    def should_rejoin(self, remaining: int, now: float) -> bool:
        if remaining == 0:
            self.rejoins, self._lowest = 0, None
            return False
        if self._lowest is None or remaining < self._lowest:
            if self._lowest is not None:
                self.rejoins = 0
            self._lowest, self._since = remaining, now
            return False
        if now - self._since < self.stall_seconds or self.rejoins >= self.max_rejoins:
            return False
        self.rejoins += 1
        self._since = now
        return True
