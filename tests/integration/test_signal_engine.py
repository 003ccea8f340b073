"""The signal engine end to end on a real broker, and replay parity with it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from scoring.timeutil import parse_ts
from tests.integration.scenario import build
from tests.support.workers import Deployment, encode_value


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
        record["customer_id"],
        record["signal"],
        record["points"],
        parse_ts(record["ts"]),
        tuple(e["event_id"] for e in record["evidence"]),
    )


def _without_detected_at(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "detected_at"}


def test_every_rule_and_bad_input_end_to_end(deployment: Deployment, tmp_path: Path) -> None:
    scenario = build(int(time.time() * 1000))
    worker = deployment.start_worker()
    deployment.produce(scenario.directory)
    worker.wait_for_metric(
        "credence_input_events_total", 2, topic="customer-directory", outcome="accepted"
    )
    deployment.produce(scenario.bad + scenario.good)

    out = deployment.consume_until(
        ["signal-deltas", "dead-letter"],
        lambda rs: sum(t == "signal-deltas" for t, _ in rs) >= len(scenario.expected)
        and sum(t == "dead-letter" for t, _ in rs) >= len(scenario.reasons),
    )
    clock_at_end = int(time.time() * 1000)
    deltas = [r for t, r in out if t == "signal-deltas"]
    dead = [r for t, r in out if t == "dead-letter"]

    assert sorted(_key(d) for d in deltas) == sorted(
        (e.customer_id, e.signal, e.points, e.ts, e.evidence) for e in scenario.expected
    )
    owners = {d["customer_id"]: d["team_id"] for d in deltas}
    assert owners["c-hi"] == "team-a" and owners["c-dc"] == "team-b" and owners["c-urg"] is None
    assert sorted(d["reason"] for d in dead) == sorted(scenario.reasons)
    for letter in dead:
        assert letter["topic"] in {"role-login", "document-open", "rush-delivery", "stale-update", "forecast-outcome"}
        assert isinstance(letter["partition"], int) and isinstance(letter["offset"], int)
        assert letter["payload"] and letter["detail"]
    assert worker.alive, worker.log_tail()
    worker.wait_for_metric("credence_input_events_total", 1, topic="document-open", outcome="duplicate")
    for topic, reason in (("rush-delivery", "key_mismatch"), ("role-login", "future_event"),
                          ("forecast-outcome", "bad_value")):
        worker.wait_for_metric("credence_dead_letters_total", 1, topic=topic, reason=reason)

    # the same log through the offline core gives the same deltas, field for field
    log = tmp_path / "events.jsonl"
    log.write_bytes(
        b"".join(
            orjson.dumps({"topic": t, "key": k, "value": v if isinstance(v, str) or v is None
                          else orjson.loads(encode_value(v) or b"null")}) + b"\n"
            for t, k, v in scenario.log
        )
    )
    replayed = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "replay", str(log), "--now", str(clock_at_end)],
        check=True, capture_output=True,
    )
    offline = [orjson.loads(line) for line in replayed.stdout.splitlines()]
    by_id = lambda rs: {r["delta_id"]: _without_detected_at(r) for r in rs}  # noqa: E731
    assert by_id(offline) == by_id(deltas)
    assert len(deltas) == len(by_id(deltas))
