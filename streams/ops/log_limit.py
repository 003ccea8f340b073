"""Rate limit for repeated log messages.

During a broker outage aiokafka logs "Unable connect to node with id %s: %s" at ERROR for
every connection attempt of every client of a worker: thousands of identical lines (MB
in seconds) that bury everything else. :class:`RepeatFilter` lets the first
``REPEATS_PER_WINDOW`` messages of a kind (same logger, level and format string) through
in each ``WINDOW_SECONDS``; the first one let through after a window in which some were
suppressed says how many.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from time import monotonic

REPEATS_PER_WINDOW = 5
WINDOW_SECONDS = 10.0
#: kinds of message tracked before those whose window has ended are forgotten
MAX_KINDS = 1000


@dataclass
class _Window:
    start: float
    passed: int = 0
    suppressed: int = 0


class RepeatFilter(logging.Filter):
    """Applies to WARNING and above; lower levels always pass.

    One instance may sit on several handlers: a record gets the same answer from each.
    """

    def __init__(self, repeats: int = REPEATS_PER_WINDOW, window_s: float = WINDOW_SECONDS) -> None:
        super().__init__()
        self.repeats = repeats
        self.window_s = window_s
        self._windows: dict[tuple[str, int, str], _Window] = {}
        self._lock = threading.Lock()  # aiokafka logs from the consumer thread too
        self._last: tuple[logging.LogRecord, bool] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        with self._lock:
            if self._last is not None and self._last[0] is record:
                return self._last[1]
            passes = self._count(record, monotonic())
            self._last = (record, passes)
            return passes

    def _count(self, record: logging.LogRecord, now: float) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        window = self._windows.get(key)
        if window is None and len(self._windows) >= MAX_KINDS:
            self._forget_expired(now)  # messages formatted in advance make a kind each
        if window is None or now - window.start >= self.window_s:
            self._windows[key] = _Window(start=now, passed=1)
            if window is not None and window.suppressed:
                elapsed = now - window.start
                record.msg = f"{record.msg} (suppressed {window.suppressed} similar in the last {elapsed:.0f}s)"
            return True
        if window.passed < self.repeats:
            window.passed += 1
            return True
        window.suppressed += 1
        return False

    def _forget_expired(self, now: float) -> None:
        """Drops the windows that have ended (their suppressed count unreported)."""
        self._windows = {k: w for k, w in self._windows.items() if now - w.start < self.window_s}


def install(logger: logging.Logger) -> RepeatFilter:
    repeat_filter = RepeatFilter()
    for handler in logger.handlers:
        handler.addFilter(repeat_filter)
    return repeat_filter

