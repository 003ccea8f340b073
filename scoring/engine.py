"""The signal engine: raw records in, outcomes and deltas out, over any state store.

``credence replay`` runs it over a dict; the live worker runs it over a Faust table
(``streams/``). Both call :meth:`SignalEngine.handle` and :meth:`fire_customer`, which
is what makes their deltas equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from scoring.catalog import BEHAVIOUR_TOPICS, DIRECTORY_TOPIC, Catalog
from scoring.config import RuleConfig
from scoring.customer import Applied, CustomerState, Outcome
from scoring.deadlines import DeadlineIndex
from scoring.deltas import SignalDelta
from scoring.events import Event, decode_event
from scoring.schema import InvalidEvent, RecordSchema

#: Topics whose records feed per-customer signal state.
SIGNAL_INPUTS = (*BEHAVIOUR_TOPICS, DIRECTORY_TOPIC)


class StateStore(Protocol):
    def load(self, customer_id: str) -> CustomerState | None: ...

    def save(self, state: CustomerState) -> None: ...


class DictStore:
    """In-memory store for replay and tests."""

    def __init__(self) -> None:
        self.states: dict[str, CustomerState] = {}

    def load(self, customer_id: str) -> CustomerState | None:
        return self.states.get(customer_id)

    def save(self, state: CustomerState) -> None:
        self.states[state.customer_id] = state


@dataclass
class Handled:
    """The result of one raw input record."""

    outcome: Outcome
    event: Event | None = None
    deltas: list[SignalDelta] = field(default_factory=list)
    error: InvalidEvent | None = None


class SignalEngine:
    def __init__(self, catalog: Catalog, cfg: RuleConfig, store: StateStore) -> None:
        self.cfg = cfg
        self.store = store
        self.deadlines = DeadlineIndex()
        self._schemas: dict[str, RecordSchema] = {t: catalog.schema(t) for t in SIGNAL_INPUTS}

    def handle(
        self, topic: str, key: bytes | None, raw: bytes | None, partition: int = 0
    ) -> Handled:
        """Validate and apply one record of a signal input topic."""
        if topic == DIRECTORY_TOPIC and raw is None and key:
            state = self._state(key.decode("utf-8", "replace"))
            state.clear_owner()
            self.store.save(state)
            return Handled(Outcome.ACCEPTED)
        try:
            event = decode_event(self._schemas[topic], raw)
        except InvalidEvent as exc:
            return Handled(Outcome.INVALID, error=exc)
        state = self._state(event.customer_id)
        applied: Applied = state.apply(event, self.cfg)
        if applied.outcome is Outcome.ACCEPTED:
            self.store.save(state)
            if event.topic == "stale-update":
                watch = state.opportunities[event.get("opportunity_id")]
                if (due := watch.due_at(self.cfg)) is not None:
                    self.deadlines.push(due, state.customer_id, partition)
        return Handled(applied.outcome, event, applied.deltas)

    def fire_customer(self, customer_id: str, now: int) -> list[SignalDelta]:
        """Fire the customer's risk rules that are due at ``now``."""
        state = self.store.load(customer_id)
        if state is None:
            return []
        deltas = state.fire_due(now, self.cfg)
        if deltas:
            self.store.save(state)
        return deltas

    def fire_due(self, now: int) -> list[SignalDelta]:
        """Offline clock: fire everything due at ``now`` (replay's event-time clock)."""
        deltas: list[SignalDelta] = []
        for customer_id, _ in self.deadlines.pop_due(now):
            deltas += self.fire_customer(customer_id, now)
        return deltas

    def index_state(self, state: CustomerState, partition: int) -> None:
        """Put a recovered customer's armed opportunities into the deadline index."""
        for due in state.risk_due_times(self.cfg):
            self.deadlines.push(due, state.customer_id, partition)

    def _state(self, customer_id: str) -> CustomerState:
        return self.store.load(customer_id) or CustomerState(customer_id)
