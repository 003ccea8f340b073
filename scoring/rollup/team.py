"""A team's forecast credibility: action completion, signal strength, fulfilment."""

from __future__ import annotations

import heapq
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scoring.rollup.action_items import DUE, item_key, item_row, on_time, upgraded
from scoring.rollup.config import RollupConfig
from scoring.rollup.undo import UndoLog
from scoring.rollup.water_level import KEPT_MONTHS, WaterBook, month_end, month_of, shift
from scoring.rollup.window import TrailingWindow
from scoring.schema import InvalidEvent
from scoring.timeutil import format_ts, parse_ts

COMPONENTS = ("action_completion", "signal_strength", "fulfilment")


def band(score: float, cfg: RollupConfig) -> str:
    if score < cfg.red_below:
        return "red"
    if score < cfg.yellow_below:
        return "yellow"
    return "green"


def weights(cfg: RollupConfig) -> dict[str, float]:
    return {
        "action_completion": cfg.weight_action_completion,
        "signal_strength": cfg.weight_signal_strength,
        "fulfilment": cfg.weight_fulfilment,
    }


def credibility(components: dict[str, float | None], cfg: RollupConfig) -> float | None:
    """Weighted mean of the components that have data, weights rescaled; ``None`` if none."""
    weight = weights(cfg)
    total = weighted = 0.0
    for name, value in components.items():
        if value is not None:
            total += weight[name]
            weighted += weight[name] * value
    if total <= 0:
        return None
    return weighted / total


#: how often a team drops facts no window needs any more (amortised housekeeping)
FORGET_EVERY_MS = 3_600_000
#: action items a team holds at most (13 months of them): a new item beyond this is
#: dead-lettered (``team_over_capacity``), so a hostile upstream cannot grow a team
#: without bound
MAX_ACTION_ITEMS = 50_000


@dataclass
class TeamState:
    """Everything one team's score is computed from. Order-independent: each fact is
    kept per identity with its event time, and the newest wins.

    A big team (thousands of customers) must not be rewritten whole on every update:
    ``dirty`` and ``removed`` name the pieces (``("c", customer)``, ``("a", action)``,
    ``("t", delta_id)``, ``("w"|"d", "action|month")`` for water levels and diagnoses,
    ``("h", "")`` for the rest) a store must write or delete.
    """

    team_id: str
    #: customer_id -> [net_points, activity_ts, as_of, region, previous activity_ts]
    customers: dict[str, list[Any]] = field(default_factory=dict)
    #: item identity (:func:`~scoring.rollup.action_items.item_key`) -> its newest report's
    #: row (:mod:`scoring.rollup.action_items`), kept while its month is kept
    actions: dict[str, list[Any]] = field(default_factory=dict)
    #: period -> [ts, forecast_amount, actual_amount]
    periods: dict[str, list[Any]] = field(default_factory=dict)
    #: delta_id -> trace entry (with ``ts_ms``) of the deltas sent to this team; a
    #: traceability list shows each under the team its customer belongs to now
    #: (:func:`scoring.rollup.heatmap.traceability_lists`)
    trace: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: comparable content of the last published record
    published: list[Any] | None = None
    #: the newest time this team has heard of: scores are computed as of it
    clock: int = 0
    forgot_at: int = 0
    #: monthly water levels and diagnoses as published
    water: WaterBook = field(default_factory=WaterBook)
    dirty: set[tuple[str, str]] = field(default_factory=set, compare=False, repr=False)
    removed: set[tuple[str, str]] = field(default_factory=set, compare=False, repr=False)
    #: running aggregates for scoring at the clock, built when first needed: customers by
    #: last activity (value: clamped net points), actions by due time (value: 1 if on time)
    _active: TrailingWindow | None = field(default=None, compare=False, repr=False)
    _due: TrailingWindow | None = field(default=None, compare=False, repr=False)
    #: customers per region (regions with some), kept up to date once first needed
    _regions: Counter[str] | None = field(default=None, compare=False, repr=False)
    #: (``ts_ms``, delta_id) of the trace, oldest first, built when first forgetting
    _trace_times: list[tuple[int, str]] | None = field(default=None, compare=False, repr=False)
    #: while open, the old values of what changes (:meth:`rollback`)
    undo: UndoLog | None = field(default=None, compare=False, repr=False)

    # -- accumulate --------------------------------------------------------------

    def apply(self, update: dict[str, Any], cfg: RollupConfig) -> None:
        kind = update["kind"]
        if kind == "customer":
            held = self.customers.get(update["customer_id"])
            as_of = update.get("as_of") or 0
            if held is None or as_of >= (held[2] or 0):
                activity = update.get("activity_ts")
                previous = held[4] if held is not None else None
                if held is not None and held[1] is not None and held[1] != activity:
                    previous = held[1]
                self._set_customer(
                    update["customer_id"], [update["net_points"], activity, as_of, update.get("region"), previous],
                    cfg,
                )
                self.touch("c", update["customer_id"])
        elif kind == "customer_left":
            if update["customer_id"] in self.customers:
                self._set_customer(update["customer_id"], None, cfg)
                self.drop("c", update["customer_id"])
        elif kind == "delta":
            if update["delta_id"] not in self.trace:
                self.before_change(self.trace, update["delta_id"])
                entry = {k: v for k, v in update.items() if k != "kind"}
                ts_ms = parse_ts(update["ts"])
                self.trace[update["delta_id"]] = {**entry, "ts_ms": ts_ms}
                self.touch("t", update["delta_id"])
                if self._trace_times is not None:
                    heapq.heappush(self._trace_times, (ts_ms, update["delta_id"]))
        elif kind == "action":
            key = item_key(update)
            held = self.actions.get(key)
            if held is None and len(self.actions) >= MAX_ACTION_ITEMS:
                raise InvalidEvent("team_over_capacity", f"{len(self.actions)} action items held")
            if held is None or update["ts"] >= held[0]:
                self.before_change(self.actions, key)
                row = self.actions[key] = item_row(update)
                self.water.item_changed(key, held, row, cfg.time_zone)
                self.touch("a", key)
                if self._due is not None:
                    self._due.set(key, row[DUE], on_time(row))
        elif kind == "outcome":
            held = self.periods.get(update["period"])
            if held is None or update["ts"] >= held[0]:
                self.before_change(self.periods, update["period"])
                self.periods[update["period"]] = [
                    update["ts"], update["forecast_amount"], update["actual_amount"],
                ]
                if len(self.periods) > cfg.fulfilment_periods:
                    # only the newest count: keep the header (one record) small whatever arrives
                    self._delete(self.periods, min(self.periods, key=_period_order))
                self.touch("h", "")
        else:
            raise ValueError(f"unknown team update kind {kind!r}")

    def forget_before(self, now: int, cfg: RollupConfig) -> None:
        """Drop what no score or traceability list can need any more (at most hourly)."""
        if now - self.forgot_at < FORGET_EVERY_MS:
            return
        self._set("forgot_at", now)
        self.touch("h", "")
        self._forget_trace_before(now - cfg.trace_keep_ms)
        action_from = now - cfg.action_window_ms
        kept_from = month_end(shift(month_of(now, cfg.time_zone), -KEPT_MONTHS), cfg.time_zone)
        for key in [k for k, a in self.actions.items() if a[DUE] <= action_from and a[DUE] < kept_from]:
            # out of the window (self._due has dropped it too) and of the months kept
            held = self.actions[key]
            self._delete(self.actions, key)
            self.water.item_changed(key, held, None, cfg.time_zone)
            self.drop("a", key)
        self.water.forget_before(now, self, cfg.time_zone)
        for period in sorted(self.periods, key=_period_order)[: -cfg.fulfilment_periods]:
            self._delete(self.periods, period)

    def _forget_trace_before(self, keep_from: int) -> None:
        """Drop the trace entries older than ``keep_from`` (hourly: a heap of their
        times, not a scan of a trace that holds weeks of a big team's deltas)."""
        if self._trace_times is None:
            self._trace_times = [(t["ts_ms"], d) for d, t in self.trace.items()]
            heapq.heapify(self._trace_times)
        times = self._trace_times
        while times and times[0][0] < keep_from:
            _, delta_id = heapq.heappop(times)
            if delta_id in self.trace:
                self._delete(self.trace, delta_id)
                self.drop("t", delta_id)

    def rollback(self, mark: int = 0) -> None:
        """Undo the changes logged since the open log's length was ``mark``; the running
        aggregates are rebuilt when next needed."""
        assert self.undo is not None
        self.undo.rollback(mark)
        self._active = self._due = self._regions = self._trace_times = None
        self.water.forget_aggregates()

    def before_change(self, target: dict[str, Any], key: str) -> None:
        """``target[key]`` is about to change: logged while an undo log is open."""
        if self.undo is not None:
            self.undo.keyed(target, key)

    def _delete(self, target: dict[str, Any], key: str) -> None:
        self.before_change(target, key)
        del target[key]

    def _set(self, name: str, value: Any) -> None:
        if self.undo is not None:
            self.undo.attribute(self, name)
        setattr(self, name, value)

    def advance_clock(self, now: int) -> None:
        """Move the team's clock forward to ``now`` (it never goes back)."""
        if now > self.clock:
            self._set("clock", now)
            self.touch("h", "")

    def _set_customer(self, customer_id: str, row: list[Any] | None, cfg: RollupConfig) -> None:
        """Store a customer's row (``None``: drop it), keeping the running aggregates."""
        self.before_change(self.customers, customer_id)
        old = self.customers.pop(customer_id, None)
        if row is not None:
            self.customers[customer_id] = row
        if (regions := self._regions) is not None:
            if old is not None and old[3]:
                if regions[left := str(old[3])] == 1:
                    del regions[left]
                else:
                    regions[left] -= 1
            if row is not None and row[3]:
                regions[str(row[3])] += 1
        if self._active is not None:
            if row is None:
                self._active.remove(customer_id)
            else:
                self._active.set(customer_id, row[1], _clamped_net(row, cfg))

    def touch(self, kind: str, key: str) -> None:
        self._mark(self.dirty, self.removed, (kind, key))

    def drop(self, kind: str, key: str) -> None:
        self._mark(self.removed, self.dirty, (kind, key))

    def _mark(self, into: set[tuple[str, str]], out_of: set[tuple[str, str]], piece: tuple[str, str]) -> None:
        if self.undo is not None:
            if piece not in into:
                self.undo.member(into, piece)
            if piece in out_of:
                self.undo.member(out_of, piece)
        into.add(piece)
        out_of.discard(piece)

    # -- result ----------------------------------------------------------------

    def components(self, now: int, cfg: RollupConfig) -> dict[str, float | None]:
        return {
            "action_completion": self._action_completion(now, cfg),
            "signal_strength": self._signal_strength(now, cfg),
            "fulfilment": self._fulfilment(cfg),
        }

    def _action_completion(self, now: int, cfg: RollupConfig) -> float | None:
        if now == self.clock:  # every score but a heat map's snapshot of a past moment
            if self._due is None:
                self._due = TrailingWindow.of(
                    cfg.action_window_ms, now, ((key, a[DUE], on_time(a)) for key, a in self.actions.items())
                )
            self._due.advance(now)
            return self._due.total / len(self._due) * 100 if len(self._due) else None
        start = now - cfg.action_window_ms
        due = [a for a in self.actions.values() if start < a[DUE] <= now]
        if not due:
            return None
        return sum(on_time(a) for a in due) / len(due) * 100

    def _signal_strength(self, now: int, cfg: RollupConfig) -> float | None:
        full = cfg.strength_full_points
        if now == self.clock:  # every score but a heat map's snapshot of a past moment
            if self._active is None:
                self._active = TrailingWindow.of(
                    cfg.activity_window_ms, now, ((c, row[1], _clamped_net(row, cfg)) for c, row in self.customers.items())
                )
            self._active.advance(now)
            return self._active.total / len(self._active) / full * 100 if len(self._active) else None
        start = now - cfg.activity_window_ms
        active = [
            c for c in self.customers.values()
            if (seen := _activity_at(c, now)) is not None and seen > start
        ]
        if not active:
            return None
        return sum(_clamped_net(c, cfg) for c in active) / len(active) / full * 100

    def _fulfilment(self, cfg: RollupConfig) -> float | None:
        latest = sorted(self.periods, key=_period_order)[-cfg.fulfilment_periods:]
        if not latest:
            return None
        deviations = [
            abs(float(self.periods[p][2]) - float(self.periods[p][1])) / float(self.periods[p][1])
            for p in latest
        ]
        return max(0.0, 100 - sum(deviations) / len(deviations) * 100)

    def region(self) -> str | None:
        """The region most of the team's customers are in (ties: alphabetical)."""
        if self._regions is None:
            self._regions = Counter(str(c[3]) for c in self.customers.values() if c[3])
        counts = self._regions
        if not counts:
            return None
        return min(counts, key=lambda r: (-counts[r], r))

    def record(self, now: int, cfg: RollupConfig) -> dict[str, Any] | None:
        """The ``team-credibility`` value at ``now``, or ``None`` with no component."""
        comparable = self._comparable(now, cfg)
        return None if comparable is None else self._record(now, cfg, comparable)

    def _comparable(self, now: int, cfg: RollupConfig) -> list[Any] | None:
        """What a published record says: ``[score, band, components, region]`` (rounded),
        or ``None`` with no component."""
        components = self.components(now, cfg)
        score = credibility(components, cfg)
        if score is None:
            return None
        score = round(score, 2)
        rounded = {k: None if v is None else round(v, 2) for k, v in components.items()}
        return [score, band(score, cfg), rounded, self.region()]

    def _record(self, now: int, cfg: RollupConfig, comparable: list[Any]) -> dict[str, Any]:
        score, level, components, region = comparable
        return {
            "team_id": self.team_id,
            "region": region,
            "score": score,
            "band": level,
            "components": dict(components),
            "components_used": [k for k in COMPONENTS if components[k] is not None],
            "weights": weights(cfg),
            "ts": format_ts(now),
        }

    def _no_data(self, now: int) -> dict[str, Any]:
        return {
            "team_id": self.team_id, "region": self.region(), "score": None, "band": None,
            "components": dict.fromkeys(COMPONENTS), "components_used": [],
            "weights": None, "ts": format_ts(now),
        }

    def publish_if_changed(self, now: int, cfg: RollupConfig) -> dict[str, Any] | None:
        """The record to publish when the score, band or components changed, else ``None``."""
        comparable = self._comparable(now, cfg)
        if comparable is None:
            if self.published is None or self.published == ["no data"]:
                return None
            # the team lost its last component: say so, or the compacted topic keeps
            # its old score forever
            self._set("published", ["no data"])
            self.touch("h", "")
            return self._no_data(now)
        if comparable == self.published:
            return None
        self._set("published", comparable)
        self.touch("h", "")
        return self._record(now, cfg, comparable)

    # -- persistence -----------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """Everything but the per-customer, per-action and per-delta pieces."""
        return {"t": self.team_id, "p": self.periods, "pub": self.published,
                "clk": self.clock, "fa": self.forgot_at}

    def piece(self, kind: str, key: str) -> Any:
        if kind == "h":
            return self.header()
        return self._pieces()[kind][key]

    def _pieces(self) -> dict[str, dict[str, Any]]:
        return {"c": self.customers, "a": self.actions, "t": self.trace,
                "w": self.water.published, "d": self.water.diagnoses}

    @classmethod
    def from_pieces(cls, header: dict[str, Any], pieces: list[tuple[str, str, Any]]) -> TeamState:
        state = cls(header["t"], periods=header["p"], published=header["pub"],
                    clock=header["clk"], forgot_at=header["fa"])
        targets = state._pieces()
        for kind, key, value in pieces:
            targets[kind][key] = upgraded(key, value) if kind == "a" else value
        return state

    def to_json(self) -> dict[str, Any]:
        return {**self.header(), "c": self.customers, "a": self.actions, "tr": self.trace,
                "w": self.water.published, "d": self.water.diagnoses}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TeamState:
        named = {"c": d["c"], "a": d["a"], "t": d["tr"], "w": d.get("w", {}), "d": d.get("d", {})}
        return cls.from_pieces(d, [(kind, k, v) for kind, held in named.items() for k, v in held.items()])


def _period_order(period: str) -> list[Any]:
    """Natural order: ``2026-9`` before ``2026-12``, ``2026-Q2`` before ``2026-Q10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", period)]


def _clamped_net(customer: list[Any], cfg: RollupConfig) -> float:
    """A customer's net points (``[net_points, ...]``) within 0..full: summed over the
    active customers, then divided by their count and by full, its signal strength."""
    return float(min(max(customer[0], 0), cfg.strength_full_points))


def _activity_at(customer: list[Any], now: int) -> int | None:
    """The customer's newest known activity at or before ``now``: a snapshot for a past
    moment (the heat map's Friday 17:00) must not miss a customer active since."""
    for ts in (customer[1], customer[4]):
        if ts is not None and ts <= now:
            return int(ts)
    return None
