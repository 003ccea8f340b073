"""Dead-letter records: every unusable input, with where it came from and why."""

from __future__ import annotations

import base64
from typing import Any

from scoring.timeutil import format_ts
from streams.transport import Record


def dead_letter_record(
    record: Record, topic: str, reason: str, detail: str, now_ms: int
) -> dict[str, Any]:
    """The ``dead-letter`` value: original topic, partition, offset, payload, reason.

    The payload is kept as text when it is UTF-8, else base64 (``payload_encoding``).
    """
    raw = record.value
    payload: str | None
    encoding = "utf-8"
    if raw is None:
        payload = None
    else:
        try:
            payload = raw.decode("utf-8")
        except UnicodeDecodeError:
            payload, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return {
        "topic": topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "payload": payload,
        "payload_encoding": encoding,
        "reason": reason,
        "detail": detail,
        "dead_lettered_at": format_ts(now_ms),
    }
