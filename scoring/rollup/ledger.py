"""A customer's trailing deltas: ``customer-scores``, procurement alerts (computed by
:mod:`.alerts`), and what the customer's team needs to know (net points, activity,
deltas for traceability)."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from scoring.catalog import CUSTOMER_SCORES, TEAM_UPDATES
from scoring.deltas import Owner, SignalDelta
from scoring.rollup.alerts import alert_end, entry_ts, team_of, update_alerts
from scoring.rollup.config import RollupConfig
from scoring.rollup.records import Output
from scoring.timeutil import format_ts, parse_ts

#: deltas a ledger keeps at most, the newest: past it (a hostile upstream) older deltas
#: leave the score early, and the customer's state stays below its changelog's limit
MAX_ENTRIES = 10_000


@dataclass
class CustomerLedger:
    """Deltas of the trailing score window and what was last reported.

    Entries are kept in event-time order, with running totals, so that counting a delta
    costs O(log n) plus the alert window, not a pass over a busy customer's month.
    """

    #: ``[delta_id, signal, points, ts]`` per delta, ordered by (ts, delta_id)
    entries: list[list[Any]] = field(default_factory=list)
    as_of: int | None = None
    last_delta: dict[str, Any] | None = None
    #: ``[end ts, alert_id]`` of the effective alerts, oldest first, while they can still
    #: hold a later one back; ``alert_id`` is ``None`` for an alert stored before ids were
    #: kept (``last_alert_ts``): that one is final
    alerts: list[list[Any]] = field(default_factory=list)
    #: newest behaviour event time
    activity_ts: int | None = None
    #: ``[team_id, net_points, activity_ts]`` as last told to the team
    reported: list[Any] | None = None
    #: ``procurement-alerts`` values (raised or retracted) not published yet: an alert
    #: leaves only once the state that holds it is durable (:meth:`hold`)
    outbox: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.entries.sort(key=_entry_order)  # states stored before were in arrival order
        self._net = 0
        self._by_signal: Counter[str] = Counter()  # points per signal in the window
        self._count: Counter[str] = Counter()  # entries per signal in the window
        for entry in self.entries:
            self._count_entry(entry, 1)

    def net_points(self) -> int:
        return self._net

    def _count_entry(self, entry: list[Any], sign: int) -> None:
        _, signal, points, _ = entry
        self._net += sign * points
        self._by_signal[signal] += sign * points
        self._count[signal] += sign
        if not self._count[signal]:
            del self._count[signal], self._by_signal[signal]

    def record_activity(
        self, customer_id: str, ts: int, owner: Owner, cfg: RollupConfig
    ) -> tuple[list[Output], int | None]:
        """A behaviour event was accepted: keep the team's view of activity fresh.
        Returns the team updates and, if it moved, :meth:`activity_recheck_at`."""
        before = self.activity_ts
        if before is not None and ts <= before:
            return [], None
        self.activity_ts = ts
        reported = self.reported
        if (
            reported is not None
            and (told := reported[2]) is not None
            and ts - told < cfg.activity_report_ms
            and reported[0] == team_of(owner)
        ):  # held back: a recheck is due from the first activity after the one told
            moved = ts > told and (before is None or before <= told)
            return [], int(told) + cfg.activity_window_ms if moved else None
        return self._report(customer_id, owner), None  # all told: nothing to recheck

    def add_delta(
        self, delta: SignalDelta, record: dict[str, Any], owner: Owner, cfg: RollupConfig
    ) -> list[Output]:
        """Count a delta (``record``: its ``to_record``); return the new score, alerts
        raised or retracted, team updates.

        ``owner`` is the customer's (directory first): its score and its team follow it,
        not the fields of the event that completed the delta, which only stamp the delta.
        """
        delta_id = record["delta_id"]  # the delta's, hashed once (SignalDelta.delta_id)
        entry = [delta_id, delta.signal, delta.points, delta.ts]
        insort(self.entries, entry, key=_entry_order)
        self._count_entry(entry, 1)
        if self.last_delta is None or (delta.ts, delta_id) > (
            parse_ts(self.last_delta["ts"]), self.last_delta["delta_id"]
        ):  # the newest in event time, whatever order topics arrived in
            self.last_delta = record
        self.as_of = max(self.as_of or delta.ts, delta.ts)
        self._trim(cfg)
        outputs = [self._score(delta.customer_id, owner, cfg)]
        self.alerts, changed = update_alerts(self.entries, self.alerts, delta, self._open_from(cfg), cfg)
        outputs += changed
        outputs.append(Output(TEAM_UPDATES, team_of(owner), _trace_entry(record)))
        return outputs + self._report(delta.customer_id, owner)

    def expire(self, customer_id: str, owner: Owner, now: int, cfg: RollupConfig) -> list[Output]:
        """The clock moved to ``now``: deltas that left the window change the score, and
        activity held back by the hourly throttle is reported before the team's view of
        it would run out."""
        changed = False
        if self.entries and (self.as_of is None or now > self.as_of):
            self.as_of = now
            before = len(self.entries)
            self._trim(cfg)
            changed = len(self.entries) != before
        outputs = [self._score(customer_id, owner, cfg)] if changed else []
        recheck = self.activity_recheck_at(cfg)
        if changed or (recheck is not None and now >= recheck):
            outputs += self._report(customer_id, owner)
        return outputs

    def next_expiry(self, cfg: RollupConfig) -> int | None:
        """When the oldest delta leaves the score window."""
        if not self.entries:
            return None
        return int(self.entries[0][3]) + cfg.score_window_ms

    def activity_recheck_at(self, cfg: RollupConfig) -> int | None:
        """When the team would stop counting the customer on the activity it was told,
        while newer activity is still unreported."""
        if self.reported is None or self.reported[2] is None or self.activity_ts is None:
            return None
        if self.activity_ts <= self.reported[2]:
            return None
        return int(self.reported[2]) + cfg.activity_window_ms

    def next_due(self, cfg: RollupConfig) -> int | None:
        """The next time this ledger needs the clock (for the deadline index)."""
        times = [t for t in (self.next_expiry(cfg), self.activity_recheck_at(cfg)) if t is not None]
        return min(times) if times else None

    def owner_changed(self, customer_id: str, owner: Owner, cfg: RollupConfig) -> list[Output]:
        """A directory record (or tombstone) was applied: the customer's score carries
        the new owner, and a new team takes the customer over (its traceability list
        then holds the customer's deltas, see :func:`scoring.rollup.heatmap.traceability_lists`)."""
        outputs = [self._score(customer_id, owner, cfg)] if self.as_of is not None else []
        if self.reported is not None and self.reported[0] != team_of(owner):
            outputs += self._report(customer_id, owner)
        return outputs

    def _trim(self, cfg: RollupConfig) -> None:
        assert self.as_of is not None
        cut = bisect_right(self.entries, self.as_of - cfg.score_window_ms, key=entry_ts)
        cut = max(cut, len(self.entries) - MAX_ENTRIES)  # bounds the customer's state
        if cut:
            for entry in self.entries[:cut]:
                self._count_entry(entry, -1)
            self.entries = self.entries[cut:]
        done = bisect_right(self.alerts, self._open_from(cfg) - cfg.alert_cooldown_ms, key=alert_end)
        if done:  # no longer able to hold back an alert at an open window end
            self.alerts = self.alerts[done:]

    def _open_from(self, cfg: RollupConfig) -> int:
        """The first window end whose alert may still change: an earlier window reaches
        back past the score window's trim (or past a pre-upgrade alert)."""
        assert self.as_of is not None
        open_from = self.as_of - cfg.score_window_ms + cfg.alert_window_ms + 1
        return max([open_from] + [int(end) + 1 for end, alert_id in self.alerts if alert_id is None])

    def _score(self, customer_id: str, owner: Owner, cfg: RollupConfig) -> Output:
        assert self.as_of is not None
        return Output(
            CUSTOMER_SCORES,
            customer_id,
            {
                "customer_id": customer_id,
                "team_id": owner.team_id,
                "region": owner.region,
                "rep_id": owner.rep_id,
                "net_points": self.net_points(),
                "window_days": cfg.score_window_ms // 86_400_000,
                "breakdown": dict(sorted(self._by_signal.items())),
                "deltas_in_window": len(self.entries),
                "last_delta": self.last_delta,
                "as_of": format_ts(self.as_of),
            },
        )

    def _report(self, customer_id: str, owner: Owner) -> list[Output]:
        team = team_of(owner)
        outputs = []
        if self.reported is not None and self.reported[0] != team:
            outputs.append(
                Output(TEAM_UPDATES, self.reported[0], {"kind": "customer_left", "customer_id": customer_id})
            )
        net = self.net_points()
        self.reported = [team, net, self.activity_ts]
        outputs.append(
            Output(
                TEAM_UPDATES,
                team,
                {
                    "kind": "customer",
                    "customer_id": customer_id,
                    "region": owner.region,
                    "net_points": net,
                    "activity_ts": self.activity_ts,
                    "as_of": self.as_of,
                },
            )
        )
        return outputs

    def hold(self, records: Iterable[dict[str, Any]]) -> None:
        """Keep alert records for publication. Alerts are published only from a state
        already written (the outbox pattern): had an alert left with a state a crash then
        lost, the re-run, in another interleaving, might never raise it again, and nothing
        would retract it. Readers fold records by ``alert_id``, the last one winning, so a
        record replaces one of the same id still held; nothing is cancelled outright, for
        a held record may have left already (released from a state whose release a crash
        then lost)."""
        for record in records:
            alert_id = record["alert_id"]
            self.outbox = [held for held in self.outbox if held["alert_id"] != alert_id]
            self.outbox.append(record)

    def release(self, held: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Take held records out, to publish them: all, or those of ``held`` (records
        seen in a state now written) not replaced since."""
        if held is None:
            released, self.outbox = self.outbox, []
            return released
        chosen = {id(record) for record in held}
        released = [record for record in self.outbox if id(record) in chosen]
        self.outbox = [record for record in self.outbox if id(record) not in chosen]
        return released

    def to_json(self) -> list[Any]:
        data = [list(self.entries), self.as_of, self.last_delta, list(self.alerts), self.activity_ts, self.reported]
        return [*data, self.outbox] if self.outbox else data

    @classmethod
    def from_json(cls, data: list[Any]) -> CustomerLedger:
        entries, as_of, last_delta, alerts, activity_ts, reported, *outbox = data
        if not isinstance(alerts, list):  # ``last_alert_ts`` of states stored before
            alerts = [] if alerts is None else [[alerts, None]]
        return cls(entries, as_of, last_delta, alerts, activity_ts, reported, outbox[0] if outbox else [])


_entry_order = itemgetter(3, 0)


def _trace_entry(record: dict[str, Any]) -> dict[str, Any]:
    evidence = record["evidence"]
    return {
        "kind": "delta",
        "delta_id": record["delta_id"],
        "customer_id": record["customer_id"],
        "signal": record["signal"],
        "points": record["points"],
        "ts": record["ts"],
        "ip": next((e["ip"] for e in reversed(evidence) if e.get("ip")), None),
        "evidence_ids": [e["event_id"] for e in evidence],
        "region": record["region"],
    }
