"""Event-time parsing and formatting: everything inside Credence is epoch milliseconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

#: Epoch ms outside these bounds (1970 .. 9999) cannot be a real event time.
MIN_MS = 0
MAX_MS = 253_402_300_799_999


class TimestampError(ValueError):
    """A value is not an ISO-8601 timestamp with offset, nor integer epoch ms."""


def parse_ts(value: object) -> int:
    """Return epoch milliseconds for an ISO-8601 string with a UTC offset or an int.

    A timestamp without an offset is rejected: its meaning depends on the
    producer's time zone, which Credence cannot know.
    """
    if isinstance(value, bool):
        raise TimestampError("boolean is not a timestamp")
    if isinstance(value, int):
        if not MIN_MS <= value <= MAX_MS:
            raise TimestampError(f"epoch milliseconds out of range: {value}")
        return value
    if isinstance(value, str):
        if len(value) > 64:
            raise TimestampError("timestamp string too long")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise TimestampError(f"not ISO-8601: {value!r}") from exc
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise TimestampError(f"timestamp without UTC offset: {value!r}")
        ms = (parsed - _EPOCH) // _ONE_MS  # whole milliseconds, rounded down
        if not MIN_MS <= ms <= MAX_MS:
            raise TimestampError(f"timestamp out of range: {value!r}")
        return ms
    raise TimestampError(f"expected ISO-8601 string or epoch ms, got {type(value).__name__}")


def now_ms() -> int:
    """The wall clock in epoch milliseconds (live mode's clock; replay passes event time)."""
    return time.time_ns() // 1_000_000


def format_ts(ms: int) -> str:
    """ISO-8601 in UTC with millisecond precision, e.g. ``2026-11-26T09:30:00.000Z``."""
    seconds, millis = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"
