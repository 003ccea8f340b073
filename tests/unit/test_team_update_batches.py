"""Held team updates travel in records of bounded size (``team_update_batches``)."""

from __future__ import annotations

import orjson

from scoring.rollup.records import (
    TEAM_UPDATES,
    TEAM_UPDATES_PER_RECORD,
    records_per_batch,
    team_update_batches,
)

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


def test_each_teams_updates_are_split_in_order():
    held = {"T1": [{"n": i} for i in range(450)], "T2": [{"n": i} for i in range(3)]}
    records = team_update_batches(held)
    assert [(r.topic, r.key, len(r.value["updates"])) for r in records] == [
        (TEAM_UPDATES, "T1", 200), (TEAM_UPDATES, "T1", 200), (TEAM_UPDATES, "T1", 50), (TEAM_UPDATES, "T2", 3),
    ]
    assert [u for r in records if r.key == "T1" for u in r.value["updates"]] == held["T1"]
    assert all(r.value["kind"] == "batch" for r in records)


def test_a_record_of_the_largest_updates_fits_kafkas_default_limit():
    # a traceability entry with every id at its longest (topics.yaml: 128 characters)
    longest = {
        "kind": "delta", "delta_id": "f" * 32, "customer_id": "c" * 128, "signal": "decision_chain",
        "points": 12, "ts": "2026-11-27T01:00:00.000Z", "ip": "i" * 64, "evidence_ids": ["e" * 128] * 3,
        "region": "r" * 128,
    }
    (record,) = team_update_batches({"T" * 128: [longest] * TEAM_UPDATES_PER_RECORD})
    assert len(orjson.dumps(record.value)) < KAFKA_DEFAULT_MAX_MESSAGE_BYTES / 4



def test_a_team_agent_batch_holds_at_most_the_configured_number_of_updates():
    assert records_per_batch(2_000) == 10
    assert records_per_batch(2_000) * TEAM_UPDATES_PER_RECORD <= 2_000
    assert records_per_batch(50) == 1  # never none


def test_a_teams_updates_are_split_by_size_too():
    updates = [{"n": i, "pad": "x" * 90} for i in range(10)]  # 110 bytes each, encoded
    records = team_update_batches({"T1": updates, "T2": updates[:1]}, max_bytes=400)
    assert [(r.key, [u["n"] for u in r.value["updates"]]) for r in records] == [
        ("T1", [0, 1, 2]), ("T1", [3, 4, 5]), ("T1", [6, 7, 8]), ("T1", [9]), ("T2", [0]),
    ]
    assert all(len(orjson.dumps(r.value)) <= 400 for r in records)
    # an update over the budget still travels, alone
    assert [len(r.value["updates"]) for r in team_update_batches({"T1": updates[:2]}, max_bytes=50)] == [1, 1]
