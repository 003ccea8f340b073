"""``high_intent``: consecutive long quote opens within a window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scoring.config import RuleConfig
from scoring.events import Event, Evidence
from scoring.rules import Firing


@dataclass
class HighIntent:
    """The current streak of qualifying quote opens, oldest first."""

    streak: list[Evidence] = field(default_factory=list)

    def accumulate(self, event: Event, cfg: RuleConfig) -> Firing | None:
        if event.get("document_type") != cfg.high_intent_document_type:
            return None  # other documents neither count nor break the streak
        if event.get("dwell_seconds") <= cfg.high_intent_min_dwell_seconds:
            self.streak.clear()
            return None
        self.streak.append(event.evidence)
        while _span(self.streak) > cfg.high_intent_window_ms:
            self.streak.pop(0)
        if len(self.streak) < cfg.high_intent_streak:
            return None
        evidence = tuple(self.streak)
        self.streak.clear()
        return Firing(
            "high_intent",
            cfg.high_intent_points,
            event.ts,
            evidence,
            opportunity_id=event.get("opportunity_id"),
        )

    def to_json(self) -> list[Any]:
        return [e.to_list() for e in self.streak]

    @classmethod
    def from_json(cls, data: list[Any]) -> HighIntent:
        return cls([Evidence.from_list(row) for row in data])


def _span(streak: list[Evidence]) -> int:
    times = [e.ts for e in streak]
    return max(times) - min(times)
