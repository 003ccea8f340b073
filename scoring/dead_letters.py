"""Dead-letter records: every unusable input, with where it came from and why, in a
record that fits the ``dead-letter`` topic whatever the input.

An input can be as large as its broker accepts, and JSON inflates it (a control byte
becomes ``\\u0001``, six bytes; bytes that are not UTF-8 go as base64, four for three),
so a value copied whole could pass the topic's limit, fail to send and stop the worker.
Payload, key and detail are each kept whole when they fit, else cut to a prefix on a
character (or base64 quantum) boundary, with the original size and SHA-256 alongside.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, NamedTuple

import orjson

from scoring.timeutil import format_ts

#: a key is kept whole up to this many bytes: as the dead letter's Kafka key, and as its
#: ``key`` field (JSON-encoded size); customer ids are at most 128 characters
KEY_BYTES = 1024
#: the ``detail`` field's JSON-encoded size at most
DETAIL_BYTES = 2048
#: what ``<name>_bytes``, ``<name>_sha256`` and ``<name>_truncated`` add at most
_TRUNCATION_BYTES = len(orjson.dumps({"payload_bytes": 2**63, "payload_sha256": "0" * 64, "payload_truncated": True}))


class DeadLetter(NamedTuple):
    """A ``dead-letter`` record: its Kafka key (the original, cut to :data:`KEY_BYTES`) and value."""

    key: bytes | None
    value: dict[str, Any]


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    payload: bytes | None,
    reason: str,
    detail: str,
    now_ms: int,
    budget: int,
) -> DeadLetter:
    """The dead letter of one input record; ``orjson.dumps(value)`` is at most ``budget``
    bytes (the topic's :attr:`~scoring.catalog.TopicSpec.value_budget`). The payload is text when it is UTF-8, else base64
    (``payload_encoding``)."""
    key_text, key_extra = (None, {}) if key is None else _text_field("key", key, key.decode("utf-8", "replace"), KEY_BYTES)
    detail_text, detail_extra = _text_field("detail", detail.encode(), detail, DETAIL_BYTES)
    text, encoding = _as_text(payload)
    value: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key_text,
        **key_extra,
        "payload": None,
        "payload_encoding": encoding,
        "reason": reason,
        "detail": detail_text,
        **detail_extra,
        "dead_lettered_at": format_ts(now_ms),
    }
    if payload is not None and text is not None:
        # the room left once everything else is written (``null`` stands in for the payload)
        room = budget - len(orjson.dumps(value)) + len(b"null") - _TRUNCATION_BYTES
        kept = _prefix(text, room) if encoding == "utf-8" else text[: (max(room - 2, 0) // 4) * 4]
        value["payload"] = kept
        if len(kept) < len(text):
            value.update(_truncation("payload", payload))
    cut_key = key if key is None or len(key) <= KEY_BYTES else key[:KEY_BYTES]
    return DeadLetter(cut_key, value)


def _as_text(raw: bytes | None) -> tuple[str | None, str]:
    if raw is None:
        return None, "utf-8"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def _text_field(name: str, raw: bytes, text: str, limit: int) -> tuple[str, dict[str, Any]]:
    kept = _prefix(text, limit)
    return kept, ({} if len(kept) == len(text) else _truncation(name, raw))


def _truncation(name: str, raw: bytes) -> dict[str, Any]:
    return {f"{name}_bytes": len(raw), f"{name}_sha256": hashlib.sha256(raw).hexdigest(), f"{name}_truncated": True}


def _prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose JSON string (quotes included) is at most
    ``limit`` bytes: a character encodes to 1 to 6 bytes, so a binary search over
    prefixes of at most ``limit`` characters, from the ``limit // 6`` that surely fit."""
    if len(text) <= limit and len(orjson.dumps(text)) <= limit:
        return text
    lo, hi = max(limit - 2, 0) // 6, min(len(text), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(orjson.dumps(text[:mid])) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]
