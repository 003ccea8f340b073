"""``all_of``: every listed value of ``field`` seen within ``within`` (the latest
event of each value counts). (``decision_chain``.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scoring.events import Event, Evidence
from scoring.patterns.base import Firing, Pattern
from scoring.patterns.spec import Spec


@dataclass
class AllOfState:
    """The latest event of each watched value seen within the window."""

    latest: dict[Any, Evidence] = field(default_factory=dict)


class AllOf(Pattern):
    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.field = spec.field("field")
        self.values = spec.values("values")
        self.within_ms = spec.duration("within")
        self.match = spec.optional_condition("match")
        self._watched = frozenset(self.values)

    def new_state(self) -> AllOfState:
        return AllOfState()

    def accumulate(self, state: AllOfState, event: Event) -> list[Firing]:
        value = event.fields.get(self.field)
        if isinstance(value, str):
            value = value.lower()
        if value not in self._watched or (self.match is not None and not self.match(event.fields)):
            return []
        latest = state.latest
        known = latest.get(value)
        if known is not None and known.ts > event.ts:
            return []  # an older event of a value is not its latest
        latest[value] = event.evidence
        times = [e.ts for e in latest.values()]
        newest = max(times)
        if newest - min(times) > self.within_ms:  # some value's latest is too old
            state.latest = latest = {v: e for v, e in latest.items() if newest - e.ts <= self.within_ms}
        if len(latest) < len(self.values):
            return []
        evidence = tuple(latest[v] for v in self.values)
        latest.clear()
        return [Firing(self, event.ts, evidence, event.fields.get("opportunity_id"))]

    def to_json(self, state: AllOfState) -> list[Any]:
        return [[value, e.to_list()] for value, e in state.latest.items()]

    def from_json(self, data: list[Any]) -> AllOfState:
        return AllOfState({value: Evidence.from_list(row) for value, row in data})
