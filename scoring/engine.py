"""The signal engine: raw records in, outcomes, deltas and roll-up records out, over
any state store.

``credence replay`` runs it over a dict; the live worker runs it over a Faust table
(``streams/``). Both call :meth:`SignalEngine.handle` and :meth:`fire_customer`, which
is what makes their outputs equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from scoring.catalog import BEHAVIOUR_TOPICS, DIRECTORY_TOPIC, Catalog
from scoring.config import DAY_MS, RuleConfig
from scoring.customer import CustomerState, Outcome
from scoring.deadlines import DeadlineIndex
from scoring.deltas import SignalDelta
from scoring.events import Event, check_key, event_of
from scoring.rollup.config import RollupConfig
from scoring.rollup.records import TEAM_UPDATES, Output
from scoring.schema import InvalidEvent, RecordSchema
from scoring.timeutil import now_ms

#: Topics whose records feed per-customer signal state.
SIGNAL_INPUTS = (*BEHAVIOUR_TOPICS, DIRECTORY_TOPIC)
#: Topics that only the team roll-up needs; the engine validates and re-keys them by team.
TEAM_INPUTS = ("sales-action", "forecast-outcome")
#: What the team roll-up reads of each team input (``scoring.rollup.team``), and SPEC's
#: ``action_id`` and ``owner``: nothing else is forwarded, so a team-update record's size
#: is bounded by these fields' limits in topics.yaml.
TEAM_FIELDS = {
    "sales-action": ("ts", "opportunity_id", "action", "due_ts", "done_ts", "action_id", "owner"),
    "forecast-outcome": ("ts", "period", "forecast_amount", "actual_amount"),
}
#: SPEC "Bad input": an event time further ahead of the wall clock than this is
#: dead-lettered (``future_event``); ``CREDENCE_MAX_EVENT_SKEW_SECONDS``
DEFAULT_MAX_SKEW_MS = DAY_MS


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


@dataclass(slots=True)
class Handled:
    """The result of one raw input record (or one clock tick)."""

    outcome: Outcome
    event: Event | None = None
    deltas: list[SignalDelta] = field(default_factory=list)
    #: customer scores, alerts and team updates, in the order they arose
    outputs: list[Output] = field(default_factory=list)
    error: InvalidEvent | None = None


class SignalEngine:
    def __init__(
        self,
        catalog: Catalog,
        cfg: RuleConfig,
        store: StateStore,
        rollup: RollupConfig | None = None,
        *,
        clock: Callable[[], int] = now_ms,
        max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    ) -> None:
        """``clock`` is the wall clock event times are bounded by (``max_skew_ms`` ahead
        of it at most); replay passes a fixed one."""
        self.cfg = cfg
        self.rollup = rollup or RollupConfig()
        self.store = store
        self.deadlines = DeadlineIndex()
        self.clock = clock
        self.max_skew_ms = max_skew_ms
        inputs = (*SIGNAL_INPUTS, *TEAM_INPUTS)
        self._schemas: dict[str, RecordSchema] = {t: catalog.schema(t) for t in inputs}
        #: the value field the message key must equal (topics.yaml's ``key``)
        self._key_fields = {t: catalog[t].key for t in inputs}
        self._customer_id_field = self._schemas[DIRECTORY_TOPIC].spec("customer_id")

    def handle(
        self, topic: str, key: bytes | None, raw: bytes | None, partition: int = 0
    ) -> Handled:
        """Validate and apply one record of an input topic."""
        if topic == DIRECTORY_TOPIC and raw is None:
            return self._forget_owner(key)
        try:
            doc = self._decode(topic, key, raw)
            event = None if topic in TEAM_INPUTS else event_of(topic, doc)
        except InvalidEvent as exc:
            return Handled(Outcome.INVALID, error=exc)
        if event is None:
            return self._forward_to_team(topic, doc)
        state = self._state(event.customer_id)
        applied = state.apply(event, self.cfg)
        if applied.outcome is not Outcome.ACCEPTED:
            return Handled(applied.outcome, event, error=applied.error)
        outputs: list[Output] = []
        owner = state.effective_owner
        if topic == DIRECTORY_TOPIC:
            outputs += state.ledger.owner_changed(state.customer_id, owner, self.rollup)
        else:
            recheck = state.ledger.activity_recheck_at(self.rollup)
            outputs += state.ledger.record_activity(state.customer_id, event.ts, owner, self.rollup)
            later = state.ledger.activity_recheck_at(self.rollup)
            if later is not None and later != recheck:
                self.deadlines.push(later, state.customer_id, partition)
        outputs += self._count_deltas(state, applied.deltas, partition)
        if topic == "stale-update":
            watch = state.opportunities[event.get("opportunity_id")]
            if (due := watch.due_at(self.cfg)) is not None:
                self.deadlines.push(due, state.customer_id, partition)
        self.store.save(state)
        return Handled(Outcome.ACCEPTED, event, applied.deltas, outputs)

    def fire_customer(self, customer_id: str, now: int, partition: int = 0) -> Handled:
        """The clock reached ``now`` for this customer: due risks, deltas ageing out."""
        state = self.store.load(customer_id)
        if state is None:
            return Handled(Outcome.ACCEPTED)
        deltas = state.fire_due(now, self.cfg)
        outputs = self._count_deltas(state, deltas, partition)
        outputs += state.ledger.expire(customer_id, state.effective_owner, now, self.rollup)
        if (expiry := state.ledger.next_due(self.rollup)) is not None:
            self.deadlines.push(expiry, customer_id, partition)
        if deltas or outputs:
            self.store.save(state)
        return Handled(Outcome.ACCEPTED, deltas=deltas, outputs=outputs)

    def fire_due(self, now: int) -> Handled:
        """Offline clock: fire everything due at ``now`` (replay's event-time clock)."""
        result = Handled(Outcome.ACCEPTED)
        for customer_id, partition in self.deadlines.pop_due(now):
            fired = self.fire_customer(customer_id, now, partition)
            result.deltas += fired.deltas
            result.outputs += fired.outputs
        return result

    def index_state(self, state: CustomerState, partition: int) -> None:
        """Put a recovered customer's pending due times into the deadline index."""
        for due in state.risk_due_times(self.cfg):
            self.deadlines.push(due, state.customer_id, partition)
        if (expiry := state.ledger.next_due(self.rollup)) is not None:
            self.deadlines.push(expiry, state.customer_id, partition)

    def _count_deltas(
        self, state: CustomerState, deltas: list[SignalDelta], partition: int
    ) -> list[Output]:
        outputs: list[Output] = []
        for delta in deltas:
            outputs += state.ledger.add_delta(delta, delta.to_record(None), state.effective_owner, self.rollup)
        if deltas and (expiry := state.ledger.next_due(self.rollup)) is not None:
            self.deadlines.push(expiry, state.customer_id, partition)
        return outputs

    def _decode(self, topic: str, key: bytes | None, raw: bytes | None) -> dict[str, Any]:
        """The validated value: its fields, event times no more than the allowed skew
        ahead of the wall clock, and the message key equal to its key field."""
        doc = self._schemas[topic].decode(raw, self.clock() + self.max_skew_ms)
        check_key(key, doc, self._key_fields[topic])
        return doc

    def _forget_owner(self, key: bytes | None) -> Handled:
        """A directory tombstone: its key is the customer id."""
        try:
            if key is None:
                raise InvalidEvent("key_mismatch", "a tombstone without a message key")
            try:
                text = key.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidEvent("key_mismatch", "message key is not UTF-8") from exc
            customer_id = self._customer_id_field.coerce(text)
        except InvalidEvent as exc:
            return Handled(Outcome.INVALID, error=exc)
        state = self.store.load(customer_id)
        if state is None:
            return Handled(Outcome.ACCEPTED)  # nothing to forget
        state.clear_owner()
        left = state.ledger.owner_changed(state.customer_id, state.effective_owner, self.rollup)
        self.store.save(state)
        return Handled(Outcome.ACCEPTED, outputs=left)

    def _forward_to_team(self, topic: str, doc: dict[str, Any]) -> Handled:
        """Re-key a validated team input by team, with only :data:`TEAM_FIELDS`."""
        update = {name: doc[name] for name in TEAM_FIELDS[topic] if name in doc}
        update["kind"] = "action" if topic == "sales-action" else "outcome"
        return Handled(Outcome.ACCEPTED, outputs=[Output(TEAM_UPDATES, doc["team_id"], update)])

    def _state(self, customer_id: str) -> CustomerState:
        return self.store.load(customer_id) or CustomerState(customer_id)
