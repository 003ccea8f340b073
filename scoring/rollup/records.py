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


#: team updates per batched record: under 1 KB each even with the longest ids, so a
#: record stays far below Kafka's default 1 MB limit however many a flush holds
TEAM_UPDATES_PER_RECORD = 200


def team_update_batches(held: dict[str, list[dict[str, Any]]]) -> list[Output]:
    """Records carrying each team's held updates in order, at most
    :data:`TEAM_UPDATES_PER_RECORD` per record (the team agent reads ``kind: batch``)."""
    return [
        Output(TEAM_UPDATES, team, {"kind": "batch", "updates": updates[i : i + TEAM_UPDATES_PER_RECORD]})
        for team, updates in held.items()
        for i in range(0, len(updates), TEAM_UPDATES_PER_RECORD)
    ]


def records_per_batch(max_updates: int) -> int:
    """Team-update records a team-agent batch may take so that it holds at most
    ``max_updates`` updates (at least one record). A rebalance waits for the batch in
    hand: batches of 2 000 records of 200 updates once held every partition up for 46 s."""
    return max(1, max_updates // TEAM_UPDATES_PER_RECORD)


def stable_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
