"""Offline replay of a recorded event log through the same engine the workers run.

The log holds one JSON object per line: ``{"topic": ..., "key": ..., "value": ...}``.
``value`` is the record's JSON value, or a string holding the raw payload (so that
malformed input can be recorded too), or ``null`` for a tombstone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Iterator

import orjson

from scoring.catalog import Catalog
from scoring.config import RuleConfig
from scoring.deltas import SignalDelta
from scoring.engine import SIGNAL_INPUTS, DictStore, SignalEngine
from scoring.schema import InvalidEvent


@dataclass(frozen=True)
class LogRecord:
    topic: str
    key: bytes | None
    value: bytes | None


@dataclass
class ReplayResult:
    deltas: list[SignalDelta] = field(default_factory=list)
    invalid: list[tuple[LogRecord, InvalidEvent]] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)


def read_log(lines: Iterable[str | bytes]) -> Iterator[LogRecord]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc: dict[str, Any] = orjson.loads(line)
            topic = doc["topic"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"log line {number}: not a {{topic, key, value}} object") from exc
        key, value = doc.get("key"), doc.get("value")
        yield LogRecord(
            topic=topic,
            key=None if key is None else str(key).encode(),
            value=(
                None if value is None
                else value.encode() if isinstance(value, str)
                else orjson.dumps(value)
            ),
        )


def replay(
    records: Iterable[LogRecord], catalog: Catalog, cfg: RuleConfig, now: int | None = None
) -> ReplayResult:
    """Run records in order; the clock is the newest event time seen (then ``now``)."""
    engine = SignalEngine(catalog, cfg, DictStore())
    result = ReplayResult()
    watermark: int | None = None
    for record in records:
        if record.topic not in SIGNAL_INPUTS:
            continue
        handled = engine.handle(record.topic, record.key, record.value)
        outcome = handled.outcome.value
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
        if handled.error is not None:
            result.invalid.append((record, handled.error))
            continue
        result.deltas += handled.deltas
        if handled.event is not None and handled.event.topic != "customer-directory":
            watermark = max(watermark or handled.event.ts, handled.event.ts)
        if watermark is not None:
            # also catches a record that armed a deadline already behind the clock
            result.deltas += engine.fire_due(watermark)
    if now is not None:
        result.deltas += engine.fire_due(now)
    return result


def write_deltas(deltas: Iterable[SignalDelta], out: IO[bytes], detected_at: int) -> None:
    for delta in deltas:
        out.write(orjson.dumps(delta.to_record(detected_at)) + b"\n")
