"""``streak``: ``count`` matching events in a row, first to last within ``within``.

An event outside ``scope`` (default: the whole topic) neither counts nor breaks the
streak; an in-scope event that does not ``match`` breaks it. (``high_intent``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scoring.events import Event, Evidence
from scoring.patterns.base import Firing, Pattern
from scoring.patterns.spec import Spec


@dataclass
class StreakState:
    """The current streak of matching events, in arrival order."""

    events: list[Evidence] = field(default_factory=list)


class Streak(Pattern):
    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.match, _ = spec.condition("match")
        self.scope = spec.optional_condition("scope")
        self.count = spec.integer("count", minimum=1)
        self.within_ms = spec.duration("within")

    def new_state(self) -> StreakState:
        return StreakState()

    def accumulate(self, state: StreakState, event: Event) -> list[Firing]:
        fields = event.fields
        if self.scope is not None and not self.scope(fields):
            return []
        streak = state.events
        if not self.match(fields):
            streak.clear()
            return []
        streak.append(event.evidence)
        while _span(streak) > self.within_ms:
            streak.pop(0)
        if len(streak) < self.count:
            return []
        evidence = tuple(streak)
        streak.clear()
        return [Firing(self, event.ts, evidence, fields.get("opportunity_id"))]

    def to_json(self, state: StreakState) -> list[Any]:
        return [e.to_list() for e in state.events]

    def from_json(self, data: list[Any]) -> StreakState:
        return StreakState([Evidence.from_list(row) for row in data])


def _span(streak: list[Evidence]) -> int:
    times = [e.ts for e in streak]
    return max(times) - min(times)
