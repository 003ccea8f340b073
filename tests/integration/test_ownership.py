"""Ownership on a live worker: directory records produced just before a team's behaviour
events, all in one go (so one fetch may hand over the events' partitions first)."""

from __future__ import annotations

import time
from typing import Any

from scoring.rollup.heatmap import last_boundary
from tests.integration.scenario import HOUR
from tests.integration.test_web import CFG, TOKEN, get, wait_for_group
from tests.support.workers import Deployment, Record

TEAM = "team-red"
CUSTOMERS = [f"own-{n}" for n in range(8)]
ROLES = ("procurement", "technical", "legal")


def team_log(boundary: int) -> list[Record]:
    """Each customer's directory record, then its decision chain (complete 2 h before
    ``boundary``): a record's Kafka timestamp (its send time) follows this order."""
    log: list[Record] = []
    for customer in CUSTOMERS:
        log.append(("customer-directory", customer,
                    {"customer_id": customer, "team_id": TEAM, "region": "east", "rep_id": "rep-1"}))
        log += [
            ("role-login", customer, {"event_id": f"{customer}-l{i}", "ts": boundary - (4 - i) * HOUR,
                                      "customer_id": customer, "ip": "203.0.113.7", "user_id": f"u{i}",
                                      "role": role})
            for i, role in enumerate(ROLES)
        ]
    return log


def test_a_teams_traceability_lists_every_customer_whose_directory_record_came_first(
    deployment: Deployment,
) -> None:
    deployment.env_extra["CREDENCE_WEB_TOKEN"] = TOKEN
    worker = deployment.start_worker()
    wait_for_group([worker])
    boundary = last_boundary(int(time.time() * 1000), CFG)
    deployment.produce(team_log(boundary))

    deltas = [r for _, r in deployment.consume_until(["signal-deltas"], lambda rs: len(rs) >= len(CUSTOMERS))]
    assert sorted(d["customer_id"] for d in deltas) == CUSTOMERS
    assert {d["team_id"] for d in deltas} == {TEAM}, [(d["customer_id"], d["team_id"]) for d in deltas]

    end = time.monotonic() + 90
    listed: list[str] = []
    while sorted(listed) != CUSTOMERS:
        assert time.monotonic() < end, f"the CSV lists {listed}\n{worker.log_tail()}"
        assert worker.alive, worker.log_tail()
        status, _, body = get(worker, f"/teams/{TEAM}/traceability.csv", token=TOKEN)
        rows: list[Any] = [line.split(",") for line in body.decode().splitlines()[1:]] if status == 200 else []
        listed = [r[1] for r in rows]
        time.sleep(0.3)
    assert {d["delta_id"] for d in deltas} == {r[5] for r in rows}
