"""A worker restarted with a changed catalogue (CREDENCE_RULES_FILE), on both brokers:
an unchanged rule keeps its state, a rule whose definition changed starts afresh, a
points-only change keeps the state and scores with the new points, and a removed
rule's state is dropped."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from scoring.signal_catalogue import DEFAULT_PATH, load_signal_catalogue
from tests.support.workers import Deployment, Record

CUSTOMER = "c1"
HOUR = 3_600_000


def event(topic: str, event_id: str, ts: int, **fields: Any) -> Record:
    return topic, CUSTOMER, {"event_id": event_id, "ts": ts, "customer_id": CUSTOMER, **fields}


def quote(event_id: str, ts: int) -> Record:
    return event("document-open", event_id, ts, document_type="quote", document_id="Q-1", dwell_seconds=300)


def login(event_id: str, ts: int, role: str) -> Record:
    return event("role-login", event_id, ts, user_id=f"u-{role}", role=role)


def rush(event_id: str, ts: int) -> Record:
    return event("rush-delivery", event_id, ts, contract_id="K-1")


def update(event_id: str, ts: int, kind: str, **fields: Any) -> Record:
    return event("stale-update", event_id, ts, opportunity_id="O1", kind=kind, **fields)


def changed_catalogue(path: Path) -> Path:
    """decision_chain's window changed, urgency removed, risk's points changed."""
    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    signals = {entry["id"]: entry for entry in doc["signals"]}
    signals["decision_chain"]["within"] = "15d"
    signals["risk"]["points"] = -7
    doc["signals"] = [entry for entry in doc["signals"] if entry["id"] != "urgency"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def summary(records: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, int, list[str]]]:
    return [(r["signal"], r["points"], [e["event_id"] for e in r["evidence"]]) for _, r in records]


def test_a_restart_with_a_changed_catalogue(deployment: Deployment, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    draft = changed_catalogue(tmp_path / "changed.yaml")

    def deltas(count: int) -> list[tuple[str, dict[str, Any]]]:
        return deployment.consume_until(["signal-deltas"], lambda records: len(records) >= count, deadline_s=90)

    deployment.env_extra["CREDENCE_RULES_FILE"] = str(DEFAULT_PATH)
    worker = deployment.start_worker()
    deployment.produce([
        quote("q0", now - 5 * HOUR), quote("q1", now - 4 * HOUR),  # high_intent: 2 of 3
        login("l0", now - 5 * HOUR, "procurement"), login("l1", now - 4 * HOUR, "technical"),  # decision_chain: 2 of 3
        rush("u1", now - 5 * HOUR),  # urgency fires
        update("p1", now - 60 * HOUR, "progress"),  # risk: a progress update 60 h ago, no reconsider yet
    ])  # fmt: skip
    for topic, count in [("document-open", 2), ("role-login", 2), ("rush-delivery", 1), ("stale-update", 1)]:
        worker.wait_for_metric("credence_input_events_total", count, topic=topic, outcome="accepted")
    assert summary(deltas(1)) == [("urgency", 6, ["u1"])]

    worker.stop()
    deployment.env_extra["CREDENCE_RULES_FILE"] = str(draft)
    worker.start()
    deployment.produce([
        quote("q2", now - 3 * HOUR),  # unchanged: completes the streak begun before
        login("l2", now - 3 * HOUR, "legal"),  # changed: afresh, one role of three
        rush("u2", now - 3 * HOUR),  # removed: no signal
        update("c1", now - 2 * HOUR, "communication", outcome="reconsider"),  # points only: kept p1, fires at once
    ])  # fmt: skip
    for topic in ["document-open", "role-login", "rush-delivery", "stale-update"]:
        worker.wait_for_metric("credence_input_events_total", 1, deadline_s=90, topic=topic, outcome="accepted")
    after_change = deltas(3)[1:]
    assert sorted(summary(after_change)) == [("high_intent", 8, ["q0", "q1", "q2"]), ("risk", -7, ["p1", "c1"])]
    versions = {r["signal"]: r["rule_version"] for _, r in after_change}
    assert versions["risk"] == load_signal_catalogue(draft).rule("risk").version
    assert versions["risk"] != load_signal_catalogue().rule("risk").version

    worker.stop()
    deployment.env_extra["CREDENCE_RULES_FILE"] = str(DEFAULT_PATH)
    worker.start()
    deployment.produce([rush("u3", now - HOUR)])  # urgency is back, without the K-1 it fired before
    worker.wait_for_metric("credence_input_events_total", 1, deadline_s=90, topic="rush-delivery", outcome="accepted")
    records = deltas(4)
    assert summary(records[3:]) == [("urgency", 6, ["u3"])]
    assert len(deployment.read_to_end(["signal-deltas"])) == 4  # and nothing else
    assert worker.alive, worker.log_tail()
