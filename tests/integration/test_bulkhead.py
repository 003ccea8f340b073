"""The per-record bulkhead on a real broker: records whose processing raises (faults
injected by ``tests.support.faulty_worker``) are dead-lettered, the worker stays up,
everything else comes out as the (equally faulty) offline replay says, and a restart
meets no crash."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from scoring.catalog import TEAM_UPDATES
from tests.integration.scenario import HOUR, ev
from tests.support.workers import Deployment, Record

FAULTY = "tests.support.faulty_worker"


def _without_detected_at(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "detected_at"}


def test_poison_records_are_dead_lettered_and_the_worker_goes_on(deployment: Deployment, tmp_path: Path) -> None:
    t0 = int(time.time() * 1000) // 1000 * 1000
    directory: list[Record] = [
        ("customer-directory", "c-hi", {"customer_id": "c-hi", "team_id": "team-a", "region": "east", "rep_id": "r1"}),
        ("customer-directory", "c-pt", {"customer_id": "c-pt", "team_id": "poison-team", "region": "east", "rep_id": "r2"}),
    ]
    quote = {"document_type": "quote", "document_id": "q1", "dwell_seconds": 300}
    events: list[Record] = [
        ev("document-open", "hi-1", t0 - 3 * HOUR, "c-hi", **quote),
        ev("document-open", "hi-2", t0 - 2 * HOUR, "c-hi", **quote),
        ev("document-open", "poison-q", t0 - 90 * 60_000, "c-hi", **quote),  # the rule raises
        ev("document-open", "hi-3", t0 - 1 * HOUR, "c-hi", **quote),
        ev("rush-delivery", "u-pt", t0 - 50 * 60_000, "c-pt", contract_id="CT-1"),  # its team's updates raise
        ev("rush-delivery", "u-ok", t0 - 40 * 60_000, "c-ok", contract_id="CT-2"),
    ]
    worker = deployment.start_worker(module=FAULTY)
    deployment.produce(directory)
    worker.wait_for_metric("credence_input_events_total", 2, topic="customer-directory", outcome="accepted")
    deployment.produce(events)

    def seen(records: list[tuple[str, dict[str, Any]]]) -> bool:
        return (
            sum(t == "signal-deltas" for t, _ in records) >= 3
            and any(t == "dead-letter" and r["topic"] == "document-open" for t, r in records)
            and any(t == "dead-letter" and r["topic"] == TEAM_UPDATES for t, r in records)
            and any(t == "team-credibility" and r["team_id"] == "team-a" for t, r in records)
        )

    out = deployment.consume_until(["signal-deltas", "dead-letter", "team-credibility"], seen)
    clock_at_end = int(time.time() * 1000)
    deltas = [r for t, r in out if t == "signal-deltas"]
    dead = [r for t, r in out if t == "dead-letter"]

    assert worker.alive, worker.log_tail()
    [poison] = [d for d in dead if d["topic"] == "document-open"]
    assert poison["reason"] == "internal_error"
    assert poison["detail"] == "signal:high_intent: RuntimeError: injected rule fault"
    assert orjson.loads(poison["payload"])["event_id"] == "poison-q"
    team_letters = [d for d in dead if d["topic"] == TEAM_UPDATES]
    assert {d["key"] for d in team_letters} == {"poison-team"}
    assert all(d["reason"] == "internal_error" and d["detail"].startswith("team_rollup: RuntimeError") for d in team_letters)
    assert all(orjson.loads(d["payload"])["kind"] in {"customer", "delta"} for d in team_letters)
    [high_intent] = [d for d in deltas if d["signal"] == "high_intent"]
    assert [e["event_id"] for e in high_intent["evidence"]] == ["hi-1", "hi-2", "hi-3"]
    assert worker.metric_value("credence_dead_letters_total", topic="document-open", reason="internal_error") == 1
    assert worker.metric_value("credence_input_events_total", topic="document-open", outcome="failed") == 1
    assert worker.metric_value("credence_dead_letters_total", topic=TEAM_UPDATES, reason="internal_error") >= 1

    # the same log offline, with the same faults: the same deltas and dead letters
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"".join(orjson.dumps({"topic": t, "key": k, "value": v}) + b"\n" for t, k, v in directory + events))
    replayed = subprocess.run(
        [sys.executable, "-m", FAULTY, "replay", str(log), "--now", str(clock_at_end)],
        check=True, capture_output=True,
    )
    offline = [orjson.loads(line) for line in replayed.stdout.splitlines()]
    by_id = lambda rs: {r["delta_id"]: _without_detected_at(r) for r in rs}  # noqa: E731
    assert by_id(offline) == by_id(deltas)
    report = replayed.stderr.decode()
    assert "dead-letter: document-open: internal_error: signal:high_intent: RuntimeError" in report
    assert "dead-letter: team poison-team: internal_error: team_rollup: RuntimeError" in report

    # killed before its inputs may be committed; its successor restores the state from
    # the changelog and reads the uncommitted inputs again, poison included: no crash.
    # (A fresh data folder: restarting on the killed worker's RocksDB stops at start on the
    # embedded broker, whose ListOffsets answer is short of a multi-record batch's end.)
    worker.kill()
    successor = deployment.start_worker("w2", module=FAULTY)
    deployment.produce([
        ev("document-open", "poison-again", t0 - 30 * 60_000, "c-hi", **quote),  # rolled back to the restored state
        ev("rush-delivery", "u-after", t0, "c-ok", contract_id="CT-3"),
    ])
    deployment.consume_until(
        ["signal-deltas", "dead-letter"],
        lambda rs: any(t == "signal-deltas" and r["evidence"][0]["event_id"] == "u-after" for t, r in rs)
        and any(t == "dead-letter" and "poison-again" in (r["payload"] or "") for t, r in rs),
    )
    assert successor.alive, successor.log_tail()
    assert "Crashed" not in successor.log_path.read_text(errors="replace")
