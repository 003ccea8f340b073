"""Output records of the roll-up, addressed by SPEC topic name and key."""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import orjson

from scoring.catalog import TEAM_UPDATES

UNASSIGNED = "unassigned"


class Output(NamedTuple):
    """One record to publish: SPEC topic name, key, JSON-able value."""

    topic: str
    key: str
    value: dict[str, Any]


#: team updates per batched record at most: under 1 KB each with ordinary ids
TEAM_UPDATES_PER_RECORD = 200
#: a team-updates record's value at most (half the topic's 1 MiB ``max.message.bytes``,
#: which tests/unit/test_output_bounds.py checks): hostile ids escape to six bytes a
#: character, and 200 traceability updates can then take 870 KB
TEAM_UPDATE_RECORD_BYTES = 512 * 1024
_BATCH_BYTES = len(orjson.dumps({"kind": "batch", "updates": []}))


def team_update_batches(
    held: dict[str, list[dict[str, Any]]], max_bytes: int = TEAM_UPDATE_RECORD_BYTES
) -> list[Output]:
    """Records carrying each team's held updates in order, at most
    :data:`TEAM_UPDATES_PER_RECORD` and ``max_bytes`` (encoded) per record (the team
    agent reads ``kind: batch``). An update is bounded by its schema's field lengths, far
    below ``max_bytes``; one larger still travels, alone."""
    records = []
    for team, updates in held.items():
        batch: list[dict[str, Any]] = []
        size = _BATCH_BYTES
        for update in updates:
            added = len(orjson.dumps(update)) + 1  # with its comma
            if batch and (len(batch) == TEAM_UPDATES_PER_RECORD or size + added > max_bytes):
                records.append(Output(TEAM_UPDATES, team, {"kind": "batch", "updates": batch}))
                batch, size = [], _BATCH_BYTES
            batch.append(update)
            size += added
        if batch:
            records.append(Output(TEAM_UPDATES, team, {"kind": "batch", "updates": batch}))
    return records


def records_per_batch(max_updates: int) -> int:
    """Team-update records a team-agent batch may take so that it holds at most
    ``max_updates`` updates (at least one record). A rebalance waits for the batch in
    hand: batches of 2 000 records of 200 updates once held every partition up for 46 s."""
    return max(1, max_updates // TEAM_UPDATES_PER_RECORD)


def stable_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
