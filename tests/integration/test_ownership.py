"""Ownership on a live worker: a team's traceability list holds every delta of its
customers, whether their directory records came before their behaviour events or after.

Kafka orders nothing across topics: a consumer may fetch records produced in the same
request to two topics in either order. Within one fetch the processor merges by record
timestamp (``tests/unit/test_fetch_order.py``); a new customer's events wait one more
fetch for a directory record written with them (``CREDENCE_WAIT_FOR_DIRECTORY``). Without
that wait, the directory records produced in one go with the events were applied after
some of them in about one run in three of the full suite."""

from __future__ import annotations

import time
from typing import Any

from scoring.rollup.heatmap import last_boundary
from tests.integration.scenario import HOUR
from tests.integration.test_web import CFG, TOKEN, get, wait_for_group
from tests.support.workers import Deployment, Record, Worker

TEAM = "team-red"
CUSTOMERS = [f"own-{n}" for n in range(8)]
ROLES = ("procurement", "technical", "legal")


def directory(customer: str) -> Record:
    return "customer-directory", customer, {"customer_id": customer, "team_id": TEAM, "region": "east",
                                            "rep_id": "rep-1"}


def decision_chain(customer: str, boundary: int) -> list[Record]:
    """Three logins, complete 2 h before ``boundary``: a decision chain in its week."""
    return [
        ("role-login", customer, {"event_id": f"{customer}-l{i}", "ts": boundary - (4 - i) * HOUR,
                                  "customer_id": customer, "ip": "203.0.113.7", "user_id": f"u{i}", "role": role})
        for i, role in enumerate(ROLES)
    ]


def started(deployment: Deployment) -> tuple[Worker, int]:
    deployment.env_extra["CREDENCE_WEB_TOKEN"] = TOKEN
    worker = deployment.start_worker()
    wait_for_group([worker])
    return worker, last_boundary(int(time.time() * 1000), CFG)


def consume_deltas(deployment: Deployment) -> list[dict[str, Any]]:
    deltas = [r for _, r in deployment.consume_until(["signal-deltas"], lambda rs: len(rs) >= len(CUSTOMERS))]
    assert sorted(d["customer_id"] for d in deltas) == CUSTOMERS
    return deltas


def wait_for_listed(worker: Worker, delta_ids: set[str], deadline_s: float = 90.0) -> list[list[str]]:
    """Poll the team's CSV (the week before the last boundary) until it lists exactly
    ``delta_ids``; returns its rows."""
    end = time.monotonic() + deadline_s
    rows: list[list[str]] = []
    while {r[5] for r in rows} != delta_ids:
        assert time.monotonic() < end, f"the CSV lists {rows}\n{worker.log_tail()}"
        assert worker.alive, worker.log_tail()
        status, _, body = get(worker, f"/teams/{TEAM}/traceability.csv", token=TOKEN)
        rows = [line.split(",") for line in body.decode().splitlines()[1:]] if status == 200 else []
        time.sleep(0.3)
    return rows


def test_deltas_of_customers_whose_directory_record_came_first_are_stamped_and_listed(
    deployment: Deployment,
) -> None:
    worker, boundary = started(deployment)
    deployment.produce([directory(c) for c in CUSTOMERS])  # acknowledged before the events are sent
    deployment.produce([r for c in CUSTOMERS for r in decision_chain(c, boundary)])
    deltas = consume_deltas(deployment)
    assert {d["team_id"] for d in deltas} == {TEAM}, [(d["customer_id"], d["team_id"]) for d in deltas]
    rows = wait_for_listed(worker, {d["delta_id"] for d in deltas})
    assert sorted(r[1] for r in rows) == CUSTOMERS


def test_a_directory_record_produced_with_the_first_events_stamps_their_deltas(deployment: Deployment) -> None:
    worker, boundary = started(deployment)
    for round_ in range(3):  # new customers each round (the race is rare on an idle machine)
        customers = [f"{c}-r{round_}" for c in CUSTOMERS]
        deployment.produce([r for c in customers for r in (directory(c), *decision_chain(c, boundary))])
        expected = len(CUSTOMERS) * (round_ + 1)
        deltas = [r for _, r in deployment.consume_until(["signal-deltas"], lambda rs, n=expected: len(rs) >= n)]
        assert len(deltas) == expected, deltas
        assert {d["team_id"] for d in deltas} == {TEAM}, [(d["customer_id"], d["team_id"]) for d in deltas]
    assert worker.alive, worker.log_tail()


def test_deltas_that_fired_before_the_directory_record_follow_the_customer(deployment: Deployment) -> None:
    worker, boundary = started(deployment)
    deployment.produce([r for c in CUSTOMERS for r in decision_chain(c, boundary)])
    deltas = consume_deltas(deployment)  # each exactly once
    assert {d["team_id"] for d in deltas} == {None}  # stamped as they fired: no owner yet
    # new customers: their events waited a fetch for a directory record (none came)
    assert worker.metric_value("credence_directory_waits_total") > 0
    deployment.produce([directory(c) for c in CUSTOMERS])
    rows = wait_for_listed(worker, {d["delta_id"] for d in deltas})
    assert sorted(r[1] for r in rows) == CUSTOMERS
    # the customers' scores carry their new owner
    scores: dict[str, dict[str, Any]] = {}

    def all_owned(records: list[tuple[str, dict[str, Any]]]) -> bool:
        scores.update((r["customer_id"], r) for _, r in records)
        return len(scores) == len(CUSTOMERS) and all(s["team_id"] == TEAM for s in scores.values())

    deployment.consume_until(["customer-scores"], all_owned)
