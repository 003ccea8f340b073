"""Output records of the roll-up, addressed by SPEC topic name and key."""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

#: the internal topic that carries everything the team roll-up needs, keyed by team
TEAM_UPDATES = "credence-team-updates"
UNASSIGNED = "unassigned"


class Output(NamedTuple):
    """One record to publish: SPEC topic name, key, JSON-able value."""

    topic: str
    key: str
    value: dict[str, Any]


def stable_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
