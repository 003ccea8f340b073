"""The signal engine: raw records in, outcomes, deltas and roll-up records out, over
any state store.

``credence replay`` runs it over a dict; the live worker runs it over a Faust table
(``streams/``). Both call :meth:`SignalEngine.handle` and :meth:`fire_customer`, which
is what makes their outputs equal. Both go through the bulkhead (:meth:`SignalEngine.receive`,
:meth:`SignalEngine.tick`): a record whose processing raises is dead-lettered and
leaves its customer's state as if it had never arrived (:mod:`scoring.bulkhead`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from scoring.bulkhead import Entry, Journal, Received, Ticked, internal_error
from scoring.catalog import (
    ALERTS,
    BEHAVIOUR_TOPICS,
    DIRECTORY_TOPIC,
    FORECAST_OUTCOME,
    SALES_ACTION,
    TEAM_UPDATES,
    Catalog,
)
from scoring.config import DAY_MS
from scoring.customer import CustomerState, Outcome
from scoring.deadlines import DeadlineIndex
from scoring.deltas import SignalDelta
from scoring.events import Event, check_key, event_of
from scoring.rollup.config import RollupConfig
from scoring.rollup.records import Output
from scoring.schema import InvalidEvent, RecordSchema
from scoring.signal_catalogue import SignalCatalogue
from scoring.timeutil import now_ms

#: Topics whose records feed per-customer signal state.
SIGNAL_INPUTS = (*BEHAVIOUR_TOPICS, DIRECTORY_TOPIC)
#: Topics that only the team roll-up needs; the engine validates and re-keys them by team.
TEAM_INPUTS = (SALES_ACTION, FORECAST_OUTCOME)
#: What the team roll-up reads of each team input (``scoring.rollup.team``), and SPEC's
#: ``action_id`` and ``owner``: nothing else is forwarded, so a team-update record's size
#: is bounded by these fields' limits in topics.yaml.
TEAM_FIELDS = {
    SALES_ACTION: ("ts", "opportunity_id", "action", "due_ts", "done_ts", "action_id", "owner"),
    FORECAST_OUTCOME: ("ts", "period", "forecast_amount", "actual_amount"),
}
#: SPEC "Bad input": an event time further ahead of the wall clock than this is
#: dead-lettered (``future_event``); ``CREDENCE_MAX_EVENT_SKEW_SECONDS``
DEFAULT_MAX_SKEW_MS = DAY_MS


class StateStore(Protocol):
    #: what was applied to each customer since its checkpoint: ``load`` reports to it,
    #: and a new checkpoint (or a state let go) discards the customer's entries
    journal: Journal

    def load(self, customer_id: str) -> CustomerState | None: ...

    def save(self, state: CustomerState) -> None: ...

    def checkpoint(self, customer_id: str) -> bytes | None:
        """The customer's state as last encoded (``None``: it had none then)."""
        ...

    def restore(self, customer_id: str, state: CustomerState | None) -> None:
        """Put back a state rebuilt from its checkpoint: no change to write."""
        ...


class DictStore:
    """In-memory store for replay and tests. A customer's state is checkpointed once
    :attr:`CUSTOMER_ENTRIES` of its records are journaled, and every changed state once
    the journal holds :attr:`CHECKPOINT_ENTRIES`.

    The first bound caps what rolling a failed record back re-applies; the second the
    journal's memory. Encoding every changed state at each 10 000 records, as the live
    cache does at each flush, was an eighth of replay's time.
    """

    CUSTOMER_ENTRIES = 1_000
    CHECKPOINT_ENTRIES = 100_000

    def __init__(self) -> None:
        self.states: dict[str, CustomerState] = {}
        self.journal = Journal()
        self._checkpoints: dict[str, bytes] = {}

    def load(self, customer_id: str) -> CustomerState | None:
        self.journal.loaded(customer_id)
        return self.states.get(customer_id)

    def save(self, state: CustomerState) -> None:
        customer_id = state.customer_id
        self.states[customer_id] = state
        journal = self.journal
        if len(journal) >= self.CHECKPOINT_ENTRIES:
            for journaled in journal.customers():
                if (changed := self.states.get(journaled)) is not None:
                    self._checkpoints[journaled] = changed.to_bytes()
            journal.clear()
        elif journal.held(customer_id) >= self.CUSTOMER_ENTRIES:
            self._checkpoints[customer_id] = state.to_bytes()
            journal.discard(customer_id)

    def checkpoint(self, customer_id: str) -> bytes | None:
        return self._checkpoints.get(customer_id)

    def restore(self, customer_id: str, state: CustomerState | None) -> None:
        if state is None:
            self.states.pop(customer_id, None)
        else:
            self.states[customer_id] = state


@dataclass(slots=True)
class Handled:
    """The result of one raw input record (or one clock tick)."""

    outcome: Outcome
    event: Event | None = None
    deltas: list[SignalDelta] = field(default_factory=list)
    #: customer scores, alerts and team updates, in the order they arose
    outputs: list[Output] = field(default_factory=list)
    error: InvalidEvent | None = None
    #: the offline clock's ticks that failed (:meth:`SignalEngine.fire_due`)
    failed_ticks: list[tuple[Ticked, InvalidEvent]] = field(default_factory=list)


class SignalEngine:
    def __init__(
        self,
        catalog: Catalog,
        rules: SignalCatalogue,
        store: StateStore,
        rollup: RollupConfig | None = None,
        *,
        clock: Callable[[], int] = now_ms,
        max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    ) -> None:
        """``clock`` is the wall clock event times are bounded by (``max_skew_ms`` ahead
        of it at most); replay passes a fixed one."""
        self.rules = rules
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
        #: customers whose ledger may hold unpublished alerts -> their partition
        self.pending_alerts: dict[str, int] = {}

    def receive(
        self, topic: str, key: bytes | None, raw: bytes | None, partition: int = 0
    ) -> Handled:
        """:meth:`handle` behind the bulkhead: if it raises, the record comes back
        ``FAILED`` (``internal_error``), with no outputs, and its customer's state is
        as if the record had never arrived."""
        journal = self.store.journal
        journal.begin(Received(topic, key, raw, partition))
        try:
            handled = self.handle(topic, key, raw, partition)
        except Exception as exc:  # as in _guarded, without its layers (once per event)
            return self._failed(exc)
        journal.end(handled.outcome is Outcome.ACCEPTED)
        return handled

    def tick(self, customer_id: str, now: int, partition: int = 0) -> Handled:
        """:meth:`fire_customer` behind the bulkhead, as :meth:`receive`."""
        return self._guarded(Ticked(customer_id, now, partition))

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
        customer_id = event.customer_id
        state = self.store.load(customer_id) or CustomerState(customer_id)
        applied = state.apply(event, self.rules)
        if applied.outcome is not Outcome.ACCEPTED:
            return Handled(applied.outcome, event, error=applied.error)
        ledger = state.ledger
        if topic == DIRECTORY_TOPIC:
            outputs = ledger.owner_changed(customer_id, state.effective_owner, self.rollup)
        else:
            outputs, recheck = ledger.record_activity(customer_id, event.ts, state.effective_owner, self.rollup)
            if recheck is not None:
                self.deadlines.push(recheck, customer_id, partition)
        if applied.deltas:
            outputs += self._count_deltas(state, applied.deltas, partition)
        elif ledger.outbox:  # as _count_deltas does
            self.pending_alerts[customer_id] = partition
        for due in applied.due:
            self.deadlines.push(due, customer_id, partition)
        self.store.save(state)
        return Handled(Outcome.ACCEPTED, event, applied.deltas, outputs)

    def fire_customer(self, customer_id: str, now: int, partition: int = 0) -> Handled:
        """The clock reached ``now`` for this customer: due timed rules, deltas ageing out."""
        state = self.store.load(customer_id)
        if state is None:
            return Handled(Outcome.ACCEPTED)
        deltas = state.fire_due(now, self.rules)
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
            fired = self.tick(customer_id, now, partition)
            if fired.error is not None:
                result.failed_ticks.append((Ticked(customer_id, now, partition), fired.error))
            result.deltas += fired.deltas
            result.outputs += fired.outputs
        return result

    def release_alerts(self, customer_id: str, held: list[dict[str, Any]] | None = None) -> list[Output]:
        """Take the customer's held alert records out of its state, to publish: all of
        them, or those of ``held`` still there (live: the records a written state holds,
        :meth:`held_alerts`)."""
        state = self.store.load(customer_id)
        if state is None or not state.ledger.outbox:
            self.pending_alerts.pop(customer_id, None)
            return []
        records = state.ledger.release(held)
        if not state.ledger.outbox:
            del self.pending_alerts[customer_id]
        if records:
            self.store.save(state)
        return [Output(ALERTS, customer_id, record) for record in records]

    def held_alerts(self, customer_id: str) -> list[dict[str, Any]]:
        """The alert records the customer's state holds now."""
        state = self.store.load(customer_id)
        return list(state.ledger.outbox) if state is not None else []

    def index_state(self, state: CustomerState, partition: int) -> None:
        """Put a recovered customer's pending due times and unpublished alerts into the
        indexes."""
        if state.ledger.outbox:
            self.pending_alerts[state.customer_id] = partition
        for due in state.due_times(self.rules):
            self.deadlines.push(due, state.customer_id, partition)
        if (expiry := state.ledger.next_due(self.rollup)) is not None:
            self.deadlines.push(expiry, state.customer_id, partition)

    def _guarded(self, entry: Entry) -> Handled:
        journal = self.store.journal
        journal.begin(entry)
        try:
            handled = self._apply(entry)
        except Exception as exc:
            return self._failed(exc)
        journal.end(_changed(entry, handled))
        return handled

    def _failed(self, exc: Exception) -> Handled:
        """The open entry raised: roll its customer back. State writes and sends happen
        outside; a failed read fails the rollback too."""
        if (customer_id := self.store.journal.end(changed=False)) is not None:
            self._roll_back(customer_id)
        return Handled(Outcome.FAILED, error=internal_error(exc))

    def _apply(self, entry: Entry) -> Handled:
        if isinstance(entry, Ticked):
            return self.fire_customer(entry.customer_id, entry.now, entry.partition)
        return self.handle(entry.topic, entry.key, entry.raw, entry.partition)

    def _roll_back(self, customer_id: str) -> None:
        """Rebuild the customer from its checkpoint and the records applied since but
        the failing one (already out of the journal). Their outputs were sent when they
        first ran; applying them again gives the same state, deadlines and outputs, which
        are dropped. If one raises now, the worker stops: the state is not trustworthy."""
        journal = self.store.journal
        entries = journal.take(customer_id)
        raw = self.store.checkpoint(customer_id)
        self.store.restore(customer_id, None if raw is None else CustomerState.from_bytes(raw))
        for entry in entries:
            journal.begin(entry)
            journal.end(_changed(entry, self._apply(entry)))

    def _count_deltas(
        self, state: CustomerState, deltas: list[SignalDelta], partition: int
    ) -> list[Output]:
        outputs: list[Output] = []
        ledger = state.ledger
        for delta in deltas:
            for output in ledger.add_delta(delta, delta.to_record(None), state.effective_owner, self.rollup):
                if output.topic == ALERTS:
                    ledger.hold([output.value])
                else:
                    outputs.append(output)
        if ledger.outbox:
            self.pending_alerts[state.customer_id] = partition
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
        update["kind"] = "action" if topic == SALES_ACTION else "outcome"
        return Handled(Outcome.ACCEPTED, outputs=[Output(TEAM_UPDATES, doc["team_id"], update)])


def _changed(entry: Entry, handled: Handled) -> bool:
    """Whether applying ``entry`` changed state (and saved it): else its journal entry goes."""
    if isinstance(entry, Ticked):
        return bool(handled.deltas or handled.outputs)
    return handled.outcome is Outcome.ACCEPTED
