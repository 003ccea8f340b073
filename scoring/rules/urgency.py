"""``urgency``: a rush-delivery note naming a contract, once per contract."""

from __future__ import annotations

from dataclasses import dataclass, field

from scoring.config import RuleConfig
from scoring.events import Event
from scoring.rules import Firing


@dataclass
class Urgency:
    """Contract ids that already fired for this customer."""

    fired: set[str] = field(default_factory=set)

    def accumulate(self, event: Event, cfg: RuleConfig) -> Firing | None:
        contract = (event.get("contract_id") or "").strip()
        if not contract or not cfg.contract_pattern.fullmatch(contract):
            return None
        if contract in self.fired:
            return None
        self.fired.add(contract)
        return Firing("urgency", cfg.urgency_points, event.ts, (event.evidence,))

    def to_json(self) -> list[str]:
        return sorted(self.fired)

    @classmethod
    def from_json(cls, data: list[str]) -> Urgency:
        return cls(set(data))
