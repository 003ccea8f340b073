"""A hostile upstream against a live worker, on both brokers (issue #10).

One batch of the worst records we know (each of the issue's reproductions among them),
then valid events. The worker must stay up, every hostile record must be in
``dead-letter`` with a reason, every record Credence wrote must be bounded, the valid
events must give exactly the deltas ``credence replay`` gives for the same log, and a
restart on the same data must meet no crash.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from tests.support.workers import Deployment, Record

HOUR = 3_600_000
DAY = 24 * HOUR
#: what the input topics accept (topics.yaml), less the producer's own overhead
NEAR_LIMIT = 1_000_000


def _valid(now: int) -> list[Record]:
    """Events that fire every kind of rule, timed just behind the wall clock."""
    t = now - now % 1000 - 2 * DAY

    def ev(topic: str, event_id: str, ts: int, customer: str, **fields: Any) -> Record:
        return topic, customer, {"event_id": event_id, "ts": ts, "customer_id": customer,
                                 "ip": "198.51.100.9", **fields}

    return [
        ("customer-directory", "v-1", {"customer_id": "v-1", "team_id": "team-v", "region": "north", "rep_id": "r"}),
        ev("document-open", "v-d1", t, "v-1", document_type="quote", document_id="q", dwell_seconds=300),
        ev("document-open", "v-d2", t + HOUR, "v-1", document_type="quote", document_id="q", dwell_seconds=300),
        ev("document-open", "v-d3", t + 2 * HOUR, "v-1", document_type="quote", document_id="q", dwell_seconds=300),
        ev("role-login", "v-l1", t, "v-1", user_id="a", role="procurement"),
        ev("role-login", "v-l2", t + HOUR, "v-1", user_id="b", role="technical"),
        ev("role-login", "v-l3", t + 2 * HOUR, "v-1", user_id="c", role="legal"),
        ev("rush-delivery", "v-r1", t + 3 * HOUR, "v-1", contract_id="CT-V-1"),
        ev("rush-delivery", "v-r2", t + 3 * HOUR, "v-2", contract_id="CT-V-2"),
        # the IndexError reproduction: a back-filled delta behind another customer's clock
        ("rush-delivery", "x", {"event_id": "r1", "ts": "2026-10-01T00:00:00Z", "customer_id": "x", "contract_id": "CT-A"}),
        ("role-login", "y", {"event_id": "l1", "ts": "2026-11-26T00:00:00Z", "customer_id": "y", "user_id": "u", "role": "legal"}),
        ("rush-delivery", "x", {"event_id": "r2", "ts": "2026-10-02T00:00:00Z", "customer_id": "x", "contract_id": "CT-B"}),
        # sales actions whose unknown fields would once have blown the team-update record
        *(
            ("sales-action", f"v-{i % 3}", {
                "event_id": f"v-a{i}", "ts": t, "customer_id": f"v-{i % 3}", "opportunity_id": f"o{i}",
                "team_id": "team-v", "action": "send-proposal", "due_ts": t + DAY, "done_ts": t + HOUR,
                "junk": "j" * 60_000,
            })
            for i in range(30)
        ),
        ("forecast-outcome", "team-v", {"event_id": "v-f1", "ts": t, "team_id": "team-v", "period": "2026-10",
                                        "forecast_amount": 100, "actual_amount": 90}),
    ]


def _hostile(now: int) -> list[tuple[Record, set[str]]]:
    """(record, acceptable dead-letter reasons)."""
    t = now - DAY
    login = {"event_id": "h-l", "ts": t, "customer_id": "h-1", "user_id": "u", "role": "legal"}
    return [
        (("document-open", "h-1", b"\x01" * 200 * 1024), {"too_large"}),
        (("document-open", "h-1", b"\x01" * NEAR_LIMIT), {"too_large"}),
        (("role-login", "h-1", b"\xff\xfe" * (NEAR_LIMIT // 2)), {"too_large"}),
        (("role-login", "h-1", b"\xff{\"event_id\": 1}"), {"invalid_json"}),
        (("role-login", "h-1", '{"event_id": "h", ' + '[' * 5000), {"invalid_json"}),
        (("role-login", "h-1", "NaN"), {"invalid_json"}),
        (("role-login", "h-1", None), {"missing_value"}),
        (("forecast-outcome", "team-v", {"event_id": "h-f", "ts": t, "team_id": "team-v", "period": "²",
                                          "forecast_amount": 100, "actual_amount": 90}), {"bad_value"}),
        (("forecast-outcome", "team-v", {"event_id": "h-f2", "ts": t, "team_id": "team-v", "period": "2026-10",
                                          "forecast_amount": 1e308, "actual_amount": -1e308}), {"bad_value"}),
        (("role-login", "h-1", {**login, "event_id": "h-fut", "ts": "9999-12-30T00:00:00Z"}), {"future_event"}),
        (("role-login", "h-1", {**login, "event_id": "h-fut2", "ts": now + 30 * DAY}), {"future_event"}),
        (("role-login", "zzz1-victim3", {**login, "event_id": "h-key"}), {"key_mismatch"}),
        (("role-login", None, {**login, "event_id": "h-nokey"}), {"key_mismatch"}),
        (("rush-delivery", "k" * 500_000, {"event_id": "h-bigkey", "ts": t, "customer_id": "h-1",
                                           "contract_id": "CT-H"}), {"key_mismatch"}),
        (("role-login", "h-1", {**login, "event_id": "h-ts", "ts": "2026-11-26T10:00:00"}), {"bad_timestamp"}),
        (("role-login", "h-1", {**login, "event_id": "h-ts2", "ts": True}), {"bad_timestamp", "wrong_type"}),
        (("role-login", "h-1", '{"event_id": "h-ts3", "ts": 1' + "0" * 30 + ', "customer_id": "h-1", "user_id": "u", '
                               '"role": "legal"}'), {"bad_timestamp", "invalid_json"}),
        (("document-open", "h-1", {"event_id": "h-dw", "ts": t, "customer_id": "h-1", "document_type": "quote",
                                   "document_id": "d", "dwell_seconds": -1}), {"bad_value"}),
        (("role-login", "h-1", f'{{"event_id": "h-uni", "ts": {t}, "customer_id": "h-1", "user_id": "u", '
                               '"role": "\\u202e\\u0000\\udbff"}'), {"bad_value", "invalid_json"}),
        (("role-login", "h-1", {**login, "event_id": "e" * 60_000}), {"field_too_long"}),
        (("stale-update", "h-1", [1, 2, 3]), {"not_an_object"}),
    ]


def _log_line(record: Record) -> bytes | None:
    """The record as a ``credence replay`` log line; ``None`` for a payload the log's JSON
    cannot carry (bytes that are not UTF-8), which the live worker dead-letters anyway."""
    topic, key, value = record
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    elif value is not None and not isinstance(value, str):
        value = orjson.dumps(value).decode()
    return orjson.dumps({"topic": topic, "key": key, "value": value}) + b"\n"


def _stable(delta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in delta.items() if k != "detected_at"}


def test_hostile_batch_then_valid_events(deployment: Deployment, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    hostile = _hostile(now)
    valid = _valid(now)
    worker = deployment.start_worker()
    worker.wait_ready()
    deployment.produce([record for record, _ in hostile])
    deployment.produce(valid)

    log = tmp_path / "events.jsonl"
    log.write_bytes(b"".join(line for r in [*(r for r, _ in hostile), *valid] if (line := _log_line(r))))
    replayed = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "replay", str(log), "--now", str(int(time.time() * 1000))],
        check=True, capture_output=True,
    )
    expected = {d["delta_id"]: _stable(d) for d in map(orjson.loads, replayed.stdout.splitlines())}
    assert len(expected) >= 5, replayed.stdout

    out = deployment.consume_until(
        ["signal-deltas", "dead-letter"],
        lambda rs: sum(t == "signal-deltas" for t, _ in rs) >= len(expected)
        and sum(t == "dead-letter" for t, _ in rs) >= len(hostile),
        deadline_s=120,
    )
    assert worker.alive, worker.log_tail()
    deltas = {r["delta_id"]: _stable(r) for t, r in out if t == "signal-deltas"}
    assert deltas == expected
    letters = [r for t, r in out if t == "dead-letter"]
    assert len(letters) == len(hostile), [(d["topic"], d["reason"]) for d in letters]
    unmatched = list(letters)
    for (topic, _, _), allowed in sorted(hostile, key=lambda h: len(h[1])):
        match = next((d for d in unmatched if d["topic"] == topic and d["reason"] in allowed), None)
        assert match is not None, (topic, allowed, [(d["topic"], d["reason"]) for d in unmatched])
        unmatched.remove(match)
    for letter in letters:
        assert letter["reason"] and letter["detail"], letter
        assert len(orjson.dumps(letter)) < 1_048_576

    # team side: the sales actions with 60 KB of junk each were scored, not crashed on
    # (the actions fall due on the team's clock, which the wall-clock tick moves on)
    deployment.consume_until(
        ["team-credibility"],
        lambda rs: any(r["team_id"] == "team-v" and r["components"]["action_completion"] == 100.0 for _, r in rs),
    )
    assert worker.alive, worker.log_tail()

    # a restart on the same data meets none of it again as a crash
    worker.stop()
    assert worker.proc is not None and worker.proc.returncode == 0, worker.log_tail()
    restart_log_from = worker.log_path.stat().st_size
    restarted = deployment.start_worker(worker.name)
    restarted.wait_ready()
    later = now - now % 1000 - DAY
    deployment.produce([("rush-delivery", "v-3", {"event_id": "v-r3", "ts": later, "customer_id": "v-3",
                                                  "contract_id": "CT-V-3"})])
    after = deployment.consume_until(
        ["signal-deltas"], lambda rs: any(r["customer_id"] == "v-3" for _, r in rs)
    )
    assert restarted.alive, restarted.log_tail()
    assert sum(r["customer_id"] == "v-3" for _, r in after) == 1
    restart_log = restarted.log_path.read_bytes()[restart_log_from:].decode(errors="replace")
    assert "Traceback" not in restart_log, restart_log[-8000:]
