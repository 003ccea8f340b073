"""Offline replay of a recorded event log through the same engine the workers run.

The log holds one JSON object per line: ``{"topic": ..., "key": ..., "value": ...}``.
``value`` is the record's JSON value, or a string holding the raw payload (so that
malformed input can be recorded too), or ``null`` for a tombstone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import IO, Any

import orjson

from scoring.bulkhead import Ticked
from scoring.catalog import TEAM_UPDATES, Catalog
from scoring.deltas import SignalDelta
from scoring.engine import DEFAULT_MAX_SKEW_MS, SIGNAL_INPUTS, TEAM_INPUTS, DictStore, Handled, SignalEngine
from scoring.rollup.config import RollupConfig
from scoring.rollup.records import Output
from scoring.rollup.team_rollup import DictTeamStore, TeamFailure, TeamRollup
from scoring.schema import InvalidEvent
from scoring.signal_catalogue import SignalCatalogue
from scoring.timeutil import now_ms


@dataclass(frozen=True)
class LogRecord:
    topic: str
    key: bytes | None
    value: bytes | None


@dataclass
class ReplayResult:
    deltas: list[SignalDelta] = field(default_factory=list)
    #: every published roll-up record (customer scores, alerts, team credibility, heat maps)
    outputs: list[Output] = field(default_factory=list)
    #: dead letters: bad input, and records whose processing raised (``internal_error``)
    invalid: list[tuple[LogRecord, InvalidEvent]] = field(default_factory=list)
    #: clock ticks whose processing raised (live: dead-lettered risk-tick records)
    failed_ticks: list[tuple[Ticked, InvalidEvent]] = field(default_factory=list)
    #: team updates whose application raised (live: dead-lettered by the team agent)
    failed_team_updates: list[TeamFailure] = field(default_factory=list)
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
                else bytes(memoryview(orjson.dumps(value)))  # a copy of its size: orjson's
                # result keeps 4 KiB allocated, which a log held in memory pays per record
            ),
        )


class _Pipeline:
    """The engine and the team stage wired as the live workers wire them."""

    def __init__(
        self, catalog: Catalog, rules: SignalCatalogue, rollup: RollupConfig, wall_clock: int, max_skew_ms: int
    ) -> None:
        self.engine = SignalEngine(
            catalog, rules, DictStore(), rollup, clock=lambda: wall_clock, max_skew_ms=max_skew_ms
        )
        self.teams = TeamRollup(rollup, DictTeamStore())
        self.result = ReplayResult()

    def collect(self, handled: Handled) -> None:
        self.result.deltas += handled.deltas
        self.result.failed_ticks += handled.failed_ticks
        for output in handled.outputs:
            if output.topic == TEAM_UPDATES:
                self.result.outputs += self.teams.apply(output.key, output.value)
            else:
                self.result.outputs.append(output)
        for customer_id in list(self.engine.pending_alerts):  # no crash offline: no need to wait
            self.result.outputs += self.engine.release_alerts(customer_id)
        self.result.failed_team_updates += self.teams.take_failures()

    def tick_teams(self, now: int) -> None:
        self.result.outputs += self.teams.tick(now)
        self.result.failed_team_updates += self.teams.take_failures()

    def settle_teams(self, at: int) -> None:
        self.result.outputs += self.teams.settle(at)
        self.result.failed_team_updates += self.teams.take_failures()


def replay(
    records: Iterable[LogRecord],
    catalog: Catalog,
    rules: SignalCatalogue,
    now: int | None = None,
    rollup: RollupConfig | None = None,
    heatmap_at: int | None = None,
    *,
    wall_clock: int | None = None,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
) -> ReplayResult:
    """Run records in order; the clock is the newest event time seen (then ``now``).
    Without ``now``, months of the water levels close by ``wall_clock``.

    Event times more than ``max_skew_ms`` ahead of ``wall_clock`` (default: the real
    wall clock as the replay starts) are ``future_event``, as in a live worker.
    """
    reference = now_ms() if wall_clock is None else wall_clock
    # the water-level targets are the catalogue's (``--rules``), like its signals
    rollup = replace(rollup or RollupConfig(), water_targets=rules.water_levels)
    pipeline = _Pipeline(catalog, rules, rollup, reference, max_skew_ms)
    result = pipeline.result
    watermark: int | None = None
    for record in records:
        if record.topic not in SIGNAL_INPUTS and record.topic not in TEAM_INPUTS:
            continue
        handled = pipeline.engine.receive(record.topic, record.key, record.value)
        outcome = handled.outcome.value
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
        if handled.error is not None:
            result.invalid.append((record, handled.error))
            continue
        pipeline.collect(handled)
        if handled.event is not None and handled.event.topic in SIGNAL_INPUTS[:4]:
            watermark = max(watermark or handled.event.ts, handled.event.ts)
        if watermark is not None:
            # also catches a record that armed a deadline already behind the clock
            pipeline.collect(pipeline.engine.fire_due(watermark))
    if now is not None:
        pipeline.collect(pipeline.engine.fire_due(now))
        pipeline.tick_teams(now)
    else:
        pipeline.settle_teams(reference)
    if heatmap_at is not None:
        result.outputs += pipeline.teams.heatmap(heatmap_at)
    return result


def write_deltas(deltas: Iterable[SignalDelta], out: IO[bytes], detected_at: int) -> None:
    for delta in deltas:
        out.write(orjson.dumps(delta.to_record(detected_at)) + b"\n")


def write_outputs(outputs: Iterable[Output], out: IO[bytes]) -> None:
    for output in outputs:
        out.write(orjson.dumps({"topic": output.topic, "key": output.key, "value": output.value}) + b"\n")
