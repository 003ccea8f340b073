"""What every pattern kind is: a rule of the catalogue, built from its entry, that
keeps one customer's state in an object of its own and returns a :class:`Firing`
when the pattern completes.

A kind is a subclass with ``__init__(spec)`` reading its keys from the entry and the
state machine in :meth:`Pattern.accumulate`; it is registered in
:data:`scoring.patterns.KINDS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, NamedTuple

from scoring.events import Event, Evidence
from scoring.patterns.spec import Spec


class Firing(NamedTuple):
    """A rule's verdict before ownership and ids are attached."""

    rule: Pattern
    ts: int
    evidence: tuple[Evidence, ...]
    opportunity_id: str | None = None


class Pattern:
    """One rule of the catalogue. ``version`` and ``shape`` are set by the loader:
    hashes of the rule's canonical definition, with and without ``points``."""

    #: whether the rule fires on a clock too (:meth:`fire_due`, :meth:`due_times`)
    timed: ClassVar[bool] = False
    #: whether accepting an event may take the rule's state past a limit (:meth:`over_capacity`)
    bounded: ClassVar[bool] = False

    def __init__(self, spec: Spec) -> None:
        self.rule_id = spec.rule_id
        self.kind: str = spec.canonical["pattern"]
        self.topic = spec.schema.topic
        self.points = spec.integer("points")
        self.version = self.shape = ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.rule_id} {self.version}>"

    def new_state(self) -> Any:
        raise NotImplementedError

    def accumulate(self, state: Any, event: Event) -> list[Firing]:
        """Feed one event of the rule's topic, in arrival order."""
        raise NotImplementedError

    def to_json(self, state: Any) -> Any:
        raise NotImplementedError

    def from_json(self, data: Any) -> Any:
        raise NotImplementedError

    def fire_due(self, state: Any, now: int) -> list[Firing]:
        """The clock reached ``now`` (timed kinds)."""
        return []

    def due_times(self, state: Any) -> Iterator[int]:
        """When the state will next fire on the clock alone (timed kinds)."""
        return iter(())

    def due_after(self, state: Any, event: Event) -> int | None:
        """After ``event`` was accumulated: when the part of the state it touched falls due."""
        return None

    def over_capacity(self, state: Any, event: Event) -> str | None:
        """Why accepting ``event`` would take the state past its bound, if it would."""
        return None
