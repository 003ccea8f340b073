"""The per-record bulkhead: an exception while applying one record fails that record
alone (it is dead-lettered, reason ``internal_error``) and leaves no trace in state.

State is changed in place, and copying a busy customer's state for every event would
cost more than scoring it. Instead a :class:`Journal` keeps, per customer, the records
applied since the state's *checkpoint*, its last encoded form, which its store keeps
anyway (the live cache's last flush, or the table). A failing record is rolled back by
decoding the checkpoint and applying the journal again without it.
"""

from __future__ import annotations

from typing import NamedTuple

from scoring.schema import InvalidEvent

INTERNAL_ERROR = "internal_error"
#: characters of an exception's message kept in a dead letter's detail
MESSAGE_CHARS = 300

#: the stage a module belongs to, for a failure's detail (the innermost one named wins)
_STAGES = {
    "scoring.schema": "decode",
    "scoring.events": "decode",
    "scoring.timeutil": "decode",
    "scoring.dedup": "dedup",
    "scoring.customer": "customer_state",
    "scoring.deadlines": "deadlines",
    "scoring.rollup.ledger": "ledger",
    "scoring.rollup.alerts": "ledger",
    "scoring.rollup.team": "team_rollup",
    "scoring.rollup.team_rollup": "team_rollup",
    "scoring.rollup.window": "team_rollup",
    "scoring.rollup.heatmap": "team_rollup",
}
_PATTERNS = "scoring.patterns."


class Received(NamedTuple):
    """An input record, as :meth:`scoring.engine.SignalEngine.receive` got it."""

    topic: str
    key: bytes | None
    raw: bytes | None
    partition: int


class Ticked(NamedTuple):
    """A clock tick for one customer (:meth:`scoring.engine.SignalEngine.tick`)."""

    customer_id: str
    now: int
    partition: int


Entry = Received | Ticked


class Journal:
    """Per customer, the records applied since its state's checkpoint.

    The engine opens an entry around each record it applies; the store reports the
    customer the record loads (:meth:`loaded`), which files the entry under it. The
    store drops a customer's entries when it encodes the state (a new checkpoint) or
    lets the decoded state go.
    """

    __slots__ = ("_customer", "_entries", "_open", "_size")

    def __init__(self) -> None:
        self._entries: dict[str, list[Entry]] = {}
        self._size = 0
        self._open: Entry | None = None
        self._customer: str | None = None

    def begin(self, entry: Entry) -> None:
        self._open, self._customer = entry, None

    def loaded(self, customer_id: str) -> None:
        """A store loaded this customer's state for the open entry (stores call this)."""
        if self._open is not None and self._customer is None:
            self._customer = customer_id
            self._entries.setdefault(customer_id, []).append(self._open)
            self._size += 1

    def end(self, changed: bool) -> str | None:
        """Close the open entry; unless it ``changed`` state, forget it. Returns the
        customer it loaded, if any."""
        customer = self._customer
        if not changed and customer is not None:
            entries = self._entries.get(customer)
            if entries:  # a store that checkpoints on save may have dropped it already
                entries.pop()
                self._size -= 1
                if not entries:
                    del self._entries[customer]
        self._open = self._customer = None
        return customer

    def take(self, customer_id: str) -> list[Entry]:
        """Remove and return a customer's entries, oldest first."""
        entries = self._entries.pop(customer_id, [])
        self._size -= len(entries)
        return entries

    def held(self, customer_id: str) -> int:
        """Entries held for one customer."""
        return len(self._entries.get(customer_id, ()))

    def customers(self) -> list[str]:
        return list(self._entries)

    def discard(self, customer_id: str) -> None:
        """The customer's state was checkpointed or dropped: its entries are done with."""
        self.take(customer_id)

    def clear(self) -> None:
        self._entries.clear()
        self._size = 0

    def __len__(self) -> int:
        """Entries held, over every customer."""
        return self._size


def stage_of(exc: BaseException) -> str:
    """Where an exception arose: ``signal:<rule id>``, ``ledger``, ``dedup``, ... or ``engine``."""
    stage = "engine"
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_PATTERNS):  # a rule's own code: name the rule (else its kind)
            stage = "signal:" + getattr(frame.f_locals.get("self"), "rule_id", module[len(_PATTERNS):])
        else:
            stage = _STAGES.get(module, stage)
        tb = tb.tb_next
    return stage


def internal_error(exc: Exception) -> InvalidEvent:
    """The dead-letter verdict for a record whose processing raised ``exc`` (kept as
    its ``__cause__``, with the traceback, for the log)."""
    message = str(exc)
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + "..."
    error = InvalidEvent(INTERNAL_ERROR, f"{stage_of(exc)}: {type(exc).__name__}: {message}")
    error.__cause__ = exc
    return error
