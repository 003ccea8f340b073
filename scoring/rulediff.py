"""The dry run of a rules change: score one log under two rule sets and compare.

What is compared, and how (docs/rules.md, "Dry run"):

* a **delta** is the same delta in both runs when its ``signal-deltas`` record is the
  same but for ``rule_version`` (and ``detected_at``, which a dry run never sets): an
  unchanged rule in a file changed elsewhere shows no change, a points change shows as
  one delta removed and one added;
* a **customer**'s net points are the last ``customer-scores`` value of the run, i.e.
  its 30-day net points as of the end of the log (or ``now``); no record means 0;
* an **alert** is a procurement alert still standing at the end (its last record not a
  retraction), identified by customer and window end (``ts``): an alert raised at the
  same moment from other deltas is the same alert. A customer is in ``alerts_gained``
  when the draft raises an alert the current rules do not (``alerts_lost``: the other
  way round); a customer whose alert only moves is in both;
* a **team**'s standing is its last ``team-credibility`` score and band.

Every list is in a fixed order, so the same log and rules give the same report.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson

from scoring.catalog import ALERTS, CUSTOMER_SCORES, TEAM_CREDIBILITY, Catalog
from scoring.engine import DEFAULT_MAX_SKEW_MS
from scoring.replay import LogRecord, ReplayResult, replay
from scoring.rollup.alerts import effective_alerts
from scoring.rollup.config import RollupConfig
from scoring.signal_catalogue import SignalCatalogue

#: a team without a ``team-credibility`` record in a run
NO_STANDING: dict[str, Any] = {"score": None, "band": None}


@dataclass(frozen=True)
class Outcome:
    """What one scoring of a log says, reduced to what a dry run compares."""

    #: ``signal-deltas`` records (without ``detected_at``) by :func:`delta_identity`
    deltas: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    #: customer -> net points at the end
    net_points: dict[str, int] = field(default_factory=dict)
    #: customer -> window ends (``ts``) of its alerts standing at the end
    alerts: dict[str, frozenset[str]] = field(default_factory=dict)
    #: team -> ``{"score", "band"}`` of its last record
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)


def delta_identity(record: dict[str, Any]) -> bytes:
    """A delta record's content but ``rule_version`` and ``detected_at``, canonically."""
    content = {k: v for k, v in record.items() if k not in {"rule_version", "detected_at"}}
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def outcome_of(result: ReplayResult) -> Outcome:
    deltas = {}
    for delta in result.deltas:
        record = delta.to_record(None)
        deltas[delta_identity(record)] = record
    net_points: dict[str, int] = {}
    teams: dict[str, dict[str, Any]] = {}
    alert_records = []
    for output in result.outputs:  # in publication order: the last record of a key says
        if output.topic == CUSTOMER_SCORES:
            net_points[output.key] = output.value["net_points"]
        elif output.topic == TEAM_CREDIBILITY:
            teams[output.key] = {"score": output.value["score"], "band": output.value["band"]}
        elif output.topic == ALERTS:
            alert_records.append(output.value)
    alerts: dict[str, set[str]] = {}
    for alert in effective_alerts(alert_records).values():
        alerts.setdefault(alert["customer_id"], set()).add(alert["ts"])
    return Outcome(deltas, net_points, {c: frozenset(ts) for c, ts in alerts.items()}, teams)


@dataclass(frozen=True)
class Scoring:
    """How a log is scored: the same for both rule sets of a dry run."""

    catalog: Catalog
    #: the clock at the end of the log (``None``: the newest event time)
    now: int | None = None
    rollup: RollupConfig | None = None
    #: the wall clock event times are bounded by; fixed, so both runs see the same one
    wall_clock: int | None = None
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS

    def score(self, records: Sequence[LogRecord], rules: SignalCatalogue) -> Outcome:
        """One scoring of ``records`` under ``rules`` (what ``replay`` takes as rules)."""
        return outcome_of(replay(
            records, self.catalog, rules, now=self.now, rollup=self.rollup,
            wall_clock=self.wall_clock, max_skew_ms=self.max_skew_ms,
        ))

    def score_both(
        self, records: Sequence[LogRecord], current: SignalCatalogue, draft: SignalCatalogue, *, parallel: bool = True
    ) -> tuple[Outcome, Outcome]:
        """Both scorings of one decoded log; with ``parallel``, the current rules in a
        forked process (which shares ``records`` without copying them) while this one
        scores the draft (bench/rules_diff.py: 1.3-1.9x a replay's time instead of 2-2.5x)."""
        gc.freeze()  # the decoded log outlives both scorings: no collection need walk it again
        try:
            if not parallel or "fork" not in multiprocessing.get_all_start_methods():
                return self.score(records, current), self.score(records, draft)
            return self._score_forked(records, current, draft)
        finally:
            gc.unfreeze()

    def _score_forked(self, records: Sequence[LogRecord], current: SignalCatalogue, draft: SignalCatalogue) -> tuple[Outcome, Outcome]:
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_score_into, args=(self, records, current, receive, send), daemon=True)
        child.start()
        send.close()
        try:
            after = self.score(records, draft)
            status, before = receive.recv()
        except EOFError:
            status, before = "error", "its process ended without an answer"
        finally:
            receive.close()  # a child still sending (this side raised) gets a broken pipe
            child.join()
        if status != "ok":
            raise RuntimeError(f"scoring under the current rules failed: {before}")
        return before, after


def _score_into(
    scoring: Scoring, records: Sequence[LogRecord], rules: SignalCatalogue, receive: Connection, send: Connection
) -> None:
    receive.close()  # the parent's end: once the parent closes it too, a send fails
    try:
        reply: tuple[str, Any] = ("ok", scoring.score(records, rules))
    except Exception as exc:  # raised by the parent
        reply = ("error", f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(BrokenPipeError):  # the parent gave up on it
        send.send(reply)
    send.close()


@dataclass(frozen=True)
class RulesDiff:
    """What the draft rules would change: SPEC's dry run object."""

    signals: dict[str, dict[str, int]]
    deltas_added: list[dict[str, Any]]
    deltas_removed: list[dict[str, Any]]
    customers_changed: list[dict[str, Any]]
    alerts_gained: list[str]
    alerts_lost: list[str]
    teams: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "signals": self.signals,
            "deltas_added": self.deltas_added,
            "deltas_removed": self.deltas_removed,
            "customers_changed": self.customers_changed,
            "alerts_gained": self.alerts_gained,
            "alerts_lost": self.alerts_lost,
            "teams": self.teams,
        }


def diff(before: Outcome, after: Outcome) -> RulesDiff:
    counts = (Counter(d["signal"] for d in before.deltas.values()),
              Counter(d["signal"] for d in after.deltas.values()))
    signals = {s: {"before": counts[0][s], "after": counts[1][s]} for s in sorted(counts[0] | counts[1])}
    points = {c: (before.net_points.get(c, 0), after.net_points.get(c, 0))
              for c in before.net_points.keys() | after.net_points.keys()}
    changed = sorted((c for c, (b, a) in points.items() if b != a), key=lambda c: (-abs(points[c][1] - points[c][0]), c))
    teams = [
        {"team_id": t, "before": before.teams.get(t, NO_STANDING), "after": after.teams.get(t, NO_STANDING)}
        for t in sorted(before.teams.keys() | after.teams.keys())
    ]
    return RulesDiff(
        signals=signals,
        deltas_added=_deltas_only_in(after, before),
        deltas_removed=_deltas_only_in(before, after),
        customers_changed=[{"customer_id": c, "before": points[c][0], "after": points[c][1]} for c in changed],
        alerts_gained=_alerted_only_in(after, before),
        alerts_lost=_alerted_only_in(before, after),
        teams=[t for t in teams if t["before"] != t["after"]],
    )


def _deltas_only_in(one: Outcome, other: Outcome) -> list[dict[str, Any]]:
    records = [record for key, record in one.deltas.items() if key not in other.deltas]
    return sorted(records, key=lambda d: (d["ts"], d["customer_id"], d["signal"], d["delta_id"]))


def _alerted_only_in(one: Outcome, other: Outcome) -> list[str]:
    return sorted(c for c, ends in one.alerts.items() if ends - other.alerts.get(c, frozenset()))
