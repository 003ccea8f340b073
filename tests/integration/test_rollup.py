"""The roll-up end to end: team credibility, customer scores and alerts read back from
the output topics equal hand-computed values and ``credence replay --all``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from scoring.rollup.alerts import effective_alerts
from tests.integration.scenario import DAY, HOUR, ev
from tests.support.workers import Deployment, Record, encode_value, replay_all

TEAMS = {"c1": ("team-red", "east"), "c2": ("team-red", "east"),
         "c3": ("team-green", "west"), "c4": ("team-green", "west")}


def build_log(now: int) -> list[Record]:
    t0 = now - now % 1000
    log: list[Record] = [
        ("customer-directory", c, {"customer_id": c, "team_id": t, "region": r, "rep_id": "rep-" + c})
        for c, (t, r) in TEAMS.items()
    ]
    # c1: decision chain (+12) and urgency (+6) = 18 within 7 days: an alert
    log += [ev("role-login", f"c1-l{i}", t0 - (3 - i) * HOUR, "c1", user_id=f"u{i}", role=role)
            for i, role in enumerate(("procurement", "technical", "legal"))]
    log.append(ev("rush-delivery", "c1-r", t0 - 30 * 60_000, "c1", contract_id="CT-77"))
    # c2: active, no signal
    log.append(ev("document-open", "c2-d", t0 - HOUR, "c2", document_type="brochure", document_id="b", dwell_seconds=30))
    # c3, c4: high intent (+8) each
    for c in ("c3", "c4"):
        log += [ev("document-open", f"{c}-q{i}", t0 - (4 - i) * HOUR, c, document_type="quote",
                   document_id="q", dwell_seconds=300) for i in range(3)]
    # sales actions: team-red 1 of 4 on time, team-green 2 of 2
    for i, late in enumerate((False, True, True, True)):
        due = t0 - (i + 1) * DAY
        log.append(ev("sales-action", f"a-red-{i}", due - 2 * DAY, "c1", opportunity_id="o-red",
                      team_id="team-red", action=f"step{i}", due_ts=due, done_ts=due + (HOUR if late else -HOUR)))
    for i in range(2):
        due = t0 - (i + 2) * DAY
        log.append(ev("sales-action", f"a-green-{i}", due - 2 * DAY, "c3", opportunity_id="o-green",
                      team_id="team-green", action=f"step{i}", due_ts=due, done_ts=due - HOUR))
    # forecast outcomes: 6 periods each; team-red off by 40 %, team-green by 10 %; plus an older 7th
    for team, miss in (("team-red", 0.4), ("team-green", 0.1)):
        for month in range(4, 11):
            forecast = 100_000.0 if month > 4 else 50_000.0
            actual = forecast * (1 - miss) if month > 4 else 0.0
            log.append(("forecast-outcome", team, {
                "event_id": f"{team}-{month}", "ts": t0 - (11 - month) * 30 * DAY,
                "team_id": team, "period": f"2026-{month:02d}",
                "forecast_amount": forecast, "actual_amount": actual}))
    return log


# Hand-computed (SPEC: 40 % actions, 35 % signal strength, 25 % fulfilment):
#   team-red:   actions 1/4 = 25; strength mean(clamp(18/26*100), 0) = (69.2308 + 0) / 2
#               = 34.6154; fulfilment 100 - 40 = 60 (the 7th period, 100 % off, is ignored)
#               score = 0.4*25 + 0.35*34.6154 + 0.25*60 = 10 + 12.1154 + 15 = 37.12 -> red
#   team-green: actions 2/2 = 100; strength mean(8/26*100, 8/26*100) = 30.7692;
#               fulfilment 90; score = 40 + 10.7692 + 22.5 = 73.27 -> yellow
EXPECTED = {
    "team-red": (37.12, "red", {"action_completion": 25.0, "signal_strength": 34.62, "fulfilment": 60.0}),
    "team-green": (73.27, "yellow", {"action_completion": 100.0, "signal_strength": 30.77, "fulfilment": 90.0}),
}


def _latest(records: list[tuple[str, dict[str, Any]]], topic: str, key: str) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for t, r in records:
        if t == topic:
            latest[r[key]] = r
    return latest


def _team_done(records: list[tuple[str, dict[str, Any]]]) -> bool:
    teams = _latest(records, "team-credibility", "team_id")
    return all(
        name in teams and (teams[name]["score"], teams[name]["band"], teams[name]["components"]) == exp
        for name, exp in EXPECTED.items()
    ) and any(t == "procurement-alerts" for t, _ in records)


def _strip(record: dict[str, Any], *fields: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in fields}


def test_team_credibility_scores_and_alerts(deployment: Deployment, tmp_path: Path) -> None:
    log = build_log(int(time.time() * 1000))
    worker = deployment.start_worker()
    deployment.produce(log[:4])  # ownership first: Kafka does not order across topics
    worker.wait_for_metric("credence_input_events_total", 4, topic="customer-directory", outcome="accepted")
    deployment.produce(log[4:])
    out = deployment.consume_until(
        ["team-credibility", "customer-scores", "procurement-alerts"], _team_done
    )
    clock_at_end = int(time.time() * 1000)

    teams = _latest(out, "team-credibility", "team_id")
    assert teams["team-red"]["components_used"] == ["action_completion", "signal_strength", "fulfilment"]
    assert teams["team-red"]["region"] == "east" and teams["team-green"]["region"] == "west"
    # the alerts that stand: a late delta may retract one (same alert_id, "retracted": true)
    alerts = effective_alerts(r for t, r in out if t == "procurement-alerts")
    assert [(a["customer_id"], a["team_id"], a["net_points"]) for a in alerts.values()] == [("c1", "team-red", 18)]
    (alert,) = alerts.values()
    assert sorted(d["signal"] for d in alert["contributing_deltas"]) == ["decision_chain", "urgency"]
    scores = _latest(out, "customer-scores", "customer_id")
    assert {c: s["net_points"] for c, s in scores.items()} == {"c1": 18, "c3": 8, "c4": 8}
    assert scores["c1"]["breakdown"] == {"decision_chain": 12, "urgency": 6}
    assert scores["c1"]["last_delta"]["signal"] in {"decision_chain", "urgency"}

    outputs = replay_all(log, tmp_path, clock_at_end)
    offline_teams = _latest(outputs, "team-credibility", "team_id")
    assert {k: _strip(v, "ts") for k, v in offline_teams.items()} == {
        k: _strip(v, "ts") for k, v in teams.items()
    }
    offline_scores = _latest(outputs, "customer-scores", "customer_id")
    assert {k: _strip(v, "as_of") for k, v in offline_scores.items()} == {
        k: _strip(v, "as_of") for k, v in scores.items()
    }
    assert effective_alerts(a for t, a in outputs if t == "procurement-alerts") == alerts


def test_heatmap_on_demand_equals_the_offline_snapshot(deployment: Deployment, tmp_path: Path) -> None:
    log = build_log(int(time.time() * 1000))
    worker = deployment.start_worker()
    deployment.produce(log[:4])
    worker.wait_for_metric("credence_input_events_total", 4, topic="customer-directory", outcome="accepted")
    deployment.produce(log[4:])
    deployment.consume_until(["team-credibility", "procurement-alerts"], _team_done)
    at = int(time.time() * 1000)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": deployment.bootstrap,
           "CREDENCE_TOPIC_PREFIX": deployment.prefix}
    live = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "heatmap", "--now", str(at)],
        capture_output=True, env=env, timeout=60,
    )
    assert live.returncode == 0, live.stderr.decode()
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(
        orjson.dumps({"topic": t, "key": k, "value": orjson.loads(encode_value(v) or b"null")}) + b"\n"
        for t, k, v in log
    ))
    offline = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "heatmap", "--now", str(at), "--log", str(path)],
        check=True, capture_output=True, timeout=60,
    )
    live_regions = [orjson.loads(line) for line in live.stdout.splitlines()]
    offline_regions = [orjson.loads(line) for line in offline.stdout.splitlines()]
    assert [r["region"] for r in live_regions] == ["east", "west"]
    east = live_regions[0]
    assert [(t["team_id"], t["score"], t["band"]) for t in east["teams"]] == [("team-red", 37.12, "red")]
    # the red team's traceability list: every delta of the week, with ip and evidence
    trace = east["traceability"]["team-red"]
    assert sorted(r["signal"] for r in trace) == ["decision_chain", "urgency"]
    assert all(r["ip"] == "198.51.100.7" and r["customer_id"] == "c1" and r["evidence_ids"] for r in trace)
    assert live_regions[1]["traceability"] == {}  # team-green is yellow
    ignore = ("request_id", "trigger")
    assert [_strip(r, *ignore) for r in live_regions] == [_strip(r, *ignore) for r in offline_regions]
