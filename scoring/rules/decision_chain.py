"""``decision_chain``: every configured role logged in within a window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scoring.config import RuleConfig
from scoring.events import Event, Evidence
from scoring.rules import Firing


@dataclass
class DecisionChain:
    """The latest login of each watched role."""

    latest: dict[str, Evidence] = field(default_factory=dict)

    def accumulate(self, event: Event, cfg: RuleConfig) -> Firing | None:
        role = event.get("role")
        if role not in cfg.decision_chain_roles:
            return None
        known = self.latest.get(role)
        if known is not None and known.ts > event.ts:
            return None  # an older login of a role is not its latest
        self.latest[role] = event.evidence
        newest = max(e.ts for e in self.latest.values())
        self.latest = {
            r: e for r, e in self.latest.items() if newest - e.ts <= cfg.decision_chain_window_ms
        }
        if len(self.latest) < len(cfg.decision_chain_roles):
            return None
        evidence = tuple(self.latest[r] for r in cfg.decision_chain_roles)
        self.latest.clear()
        return Firing("decision_chain", cfg.decision_chain_points, event.ts, evidence)

    def to_json(self) -> dict[str, Any]:
        return {role: e.to_list() for role, e in self.latest.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DecisionChain:
        return cls({role: Evidence.from_list(row) for role, row in data.items()})
