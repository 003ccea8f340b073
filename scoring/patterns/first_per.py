"""``first_per``: the first event per distinct value of ``field`` (trimmed; an empty
value is no signal), optionally only values matching ``regex`` in full. Each value
fires at most once per customer, and a customer keeps at most :data:`MAX_VALUES`
fired values: past it a new value is refused (``customer_over_capacity``). (``urgency``.)"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from scoring.events import Event
from scoring.patterns.base import Firing, Pattern
from scoring.patterns.spec import Spec

#: values that fired, per customer and rule (kept for the customer's lifetime)
MAX_VALUES = 1_000


@dataclass
class FirstPerState:
    """The values that already fired for this customer."""

    fired: set[str] = field(default_factory=set)


class FirstPer(Pattern):
    bounded = True

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.field = spec.field("field")
        self.regex: re.Pattern[str] | None = spec.regex("regex", required=False)
        self.match = spec.optional_condition("match")

    def new_state(self) -> FirstPerState:
        return FirstPerState()

    def accumulate(self, state: FirstPerState, event: Event) -> list[Firing]:
        value = self._new_value(state, event)
        if value is None:
            return []
        state.fired.add(value)
        return [Firing(self, event.ts, (event.evidence,), event.fields.get("opportunity_id"))]

    def over_capacity(self, state: FirstPerState, event: Event) -> str | None:
        if len(state.fired) >= MAX_VALUES and self._new_value(state, event) is not None:
            return f"{self.rule_id}: {len(state.fired)} values of {self.field} fired"
        return None

    def _new_value(self, state: FirstPerState, event: Event) -> str | None:
        """The event's value if it counts and has not fired yet."""
        raw = event.fields.get(self.field)
        if raw is None:
            return None
        value = (raw if isinstance(raw, str) else str(raw)).strip()
        if not value or value in state.fired:
            return None
        if self.regex is not None and self.regex.fullmatch(value) is None:
            return None
        if self.match is not None and not self.match(event.fields):
            return None
        return value

    def to_json(self, state: FirstPerState) -> list[str]:
        return sorted(state.fired)

    def from_json(self, data: list[str]) -> FirstPerState:
        return FirstPerState(set(data))
