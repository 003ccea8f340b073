"""The four signal rules. Each holds one customer's state for its pattern and returns a
:class:`Firing` when the pattern completes, resetting its own state."""

from __future__ import annotations

from dataclasses import dataclass

from scoring.events import Evidence


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule's verdict before ownership and ids are attached."""

    signal: str
    points: int
    ts: int
    evidence: tuple[Evidence, ...]
    opportunity_id: str | None = None
