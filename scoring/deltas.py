"""Signal deltas: what a fired rule emits, with a deterministic id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

from scoring.events import Evidence
from scoring.timeutil import format_ts


class Owner(NamedTuple):
    """The team, region and rep a customer belongs to (any part may be unknown)."""

    team_id: str | None = None
    region: str | None = None
    rep_id: str | None = None

    def over(self, base: Owner) -> Owner:
        """These fields where set, ``base``'s elsewhere."""
        team_id, region, rep_id = self
        if team_id and region and rep_id:  # no allocation in the common cases (once per event)
            return self
        if not (team_id or region or rep_id):
            return base
        return Owner(team_id or base.team_id, region or base.region, rep_id or base.rep_id)


@dataclass(frozen=True, slots=True)
class SignalDelta:
    """One fired signal. ``ts`` is the trigger time in epoch ms."""

    customer_id: str
    signal: str
    points: int
    ts: int
    evidence: tuple[Evidence, ...]
    owner: Owner
    rule_version: str
    opportunity_id: str | None = None

    @property
    def delta_id(self) -> str:
        """Same signal, customer, opportunity and evidence give the same id."""
        parts = [self.signal, self.customer_id, self.opportunity_id or ""]
        parts += [f"{e.topic}/{e.event_id}" for e in self.evidence]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    def to_record(self, detected_at_ms: int | None) -> dict[str, Any]:
        """The ``signal-deltas`` record of SPEC (without ``detected_at`` when ``None``)."""
        record = {
            "delta_id": self.delta_id,
            "customer_id": self.customer_id,
            "opportunity_id": self.opportunity_id,
            "signal": self.signal,
            "points": self.points,
            "ts": format_ts(self.ts),
            "team_id": self.owner.team_id,
            "region": self.owner.region,
            "rep_id": self.owner.rep_id,
            "evidence": [
                {"event_id": e.event_id, "topic": e.topic, "ts": format_ts(e.ts), "ip": e.ip}
                for e in self.evidence
            ],
            "rule_version": self.rule_version,
        }
        if detected_at_ms is not None:
            record["detected_at"] = format_ts(detected_at_ms)
        return record
