"""``risk``: an opportunity gone stale while the customer wants to reconsider.

The rule is a per-opportunity state machine whose only clock input is ``now``: the
live worker passes the wall clock from a timer, replay passes event time, and both
give the same trigger time because it is computed from the evidence alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scoring.config import RuleConfig
from scoring.events import Event, Evidence
from scoring.rules import Firing


@dataclass
class OpportunityWatch:
    """What the risk rule knows of one opportunity."""

    progress: Evidence | None = None
    communication: Evidence | None = None
    outcome: str | None = None
    #: event id of the progress update whose staleness episode already fired
    fired_on: str | None = None

    def apply(self, event: Event) -> None:
        """Record a ``stale-update``; older updates than the ones held change nothing."""
        if event.get("kind") == "progress":
            if self.progress is None or event.ts >= self.progress.ts:
                self.progress = event.evidence
        elif self.communication is None or event.ts >= self.communication.ts:
            self.communication = event.evidence
            self.outcome = event.get("outcome")

    def trigger_ts(self, cfg: RuleConfig) -> int | None:
        """When the condition became (or will become) true; ``None`` while disarmed."""
        if (
            self.progress is None
            or self.communication is None
            or self.outcome != cfg.risk_outcome
            or self.fired_on == self.progress.event_id
        ):
            return None
        return max(self.progress.ts + cfg.risk_stale_after_ms, self.communication.ts)

    def due_at(self, cfg: RuleConfig) -> int | None:
        """The earliest ``now`` at which the rule fires ("more than" 48 h: one ms past)."""
        if self.trigger_ts(cfg) is None:
            return None
        assert self.progress is not None and self.communication is not None
        return max(self.progress.ts + cfg.risk_stale_after_ms + 1, self.communication.ts)

    def fire_if_due(self, opportunity_id: str, now: int, cfg: RuleConfig) -> Firing | None:
        due = self.due_at(cfg)
        if due is None or now < due:
            return None
        trigger = self.trigger_ts(cfg)
        assert trigger is not None and self.progress and self.communication
        self.fired_on = self.progress.event_id
        return Firing(
            "risk",
            cfg.risk_points,
            trigger,
            (self.progress, self.communication),
            opportunity_id=opportunity_id,
        )

    def to_json(self) -> list[Any]:
        return [
            self.progress.to_list() if self.progress else None,
            self.communication.to_list() if self.communication else None,
            self.outcome,
            self.fired_on,
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> OpportunityWatch:
        progress, communication, outcome, fired_on = data
        return cls(
            Evidence.from_list(progress) if progress else None,
            Evidence.from_list(communication) if communication else None,
            outcome,
            fired_on,
        )
