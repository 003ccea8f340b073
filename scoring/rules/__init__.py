"""The four signal rules. Each holds one customer's state for its pattern and returns a
:class:`Firing` when the pattern completes, resetting its own state."""

from __future__ import annotations

from typing import NamedTuple

from scoring.events import Evidence


class Firing(NamedTuple):
    """A rule's verdict before ownership and ids are attached."""

    signal: str
    points: int
    ts: int
    evidence: tuple[Evidence, ...]
    opportunity_id: str | None = None
