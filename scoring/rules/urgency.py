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
        if not self.is_new(event, cfg):
            return None
        self.fired.add(_contract(event))
        return Firing("urgency", cfg.urgency_points, event.ts, (event.evidence,))

    def is_new(self, event: Event, cfg: RuleConfig) -> bool:
        """Whether the event names a valid contract that has not fired yet."""
        contract = _contract(event)
        return bool(contract) and contract not in self.fired and cfg.contract_pattern.fullmatch(contract) is not None

    def to_json(self) -> list[str]:
        return sorted(self.fired)

    @classmethod
    def from_json(cls, data: list[str]) -> Urgency:
        return cls(set(data))


def _contract(event: Event) -> str:
    return (event.get("contract_id") or "").strip()
