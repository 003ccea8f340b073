"""Action water levels end to end: two teams' technical requests over the two closed
months before this one (Asia/Shanghai), read back from ``action-water-levels`` and
``process-diagnosis`` and compared with hand-computed values and ``credence replay --all``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from scoring.rollup.water_level import month_of, shift
from tests.integration.scenario import ev
from tests.support.workers import Deployment, Record, replay_all

ZONE = "Asia/Shanghai"
TEAMS = {"c-east": ("team-east", "east"), "c-west": ("team-west", "west")}


def build_log(now: int) -> tuple[list[Record], str, str]:
    """The log, and the two closed months it fills (oldest first)."""
    first, second = shift(month_of(now, ZONE), -2), shift(month_of(now, ZONE), -1)
    log: list[Record] = [
        ("customer-directory", c, {"customer_id": c, "team_id": t, "region": r, "rep_id": "rep-" + c})
        for c, (t, r) in TEAMS.items()
    ]
    # one behaviour event each: the teams' customers (and so their regions) are known
    log += [ev("document-open", f"{c}-open", now - 3_600_000, c, document_type="brochure", document_id="b",
               dwell_seconds=30) for c in TEAMS]

    def item(n: int, month: str, customer: str, done_hours: int | None, owner: str | None) -> Record:
        """An item due on day ``n + 1`` at 10:00, done ``done_hours`` after (negative:
        before) its due time, or never; reported when done, else when due."""
        due = f"{month}-{n + 1:02d}T10:00:00+08:00"
        fields: dict[str, Any] = {"opportunity_id": f"opp-{customer}-{month}-{n}", "team_id": TEAMS[customer][0],
                                  "action": "tech_request", "due_ts": due, "action_id": f"tr-{customer}-{month}-{n}"}
        if done_hours is not None:
            fields["done_ts"] = f"{month}-{n + 1:02d}T{10 + done_hours:02d}:00:00+08:00"
        if owner is not None:
            fields["owner"] = owner
        return ev("sales-action", f"sa-{customer}-{month}-{n}", fields.get("done_ts", due), customer, **fields)

    # team-east: the first month 1 of 4 on time (technical 2 h and 3 h late, one never
    # done); the second 2 of 5 (technical 1 h late, sales 4 h late, one without owner never done)
    log += [item(n, first, "c-east", h, o) for n, (h, o) in
            enumerate([(-1, "technical"), (2, "technical"), (3, "technical"), (None, "technical")])]
    log += [item(n, second, "c-east", h, o) for n, (h, o) in
            enumerate([(-1, "technical"), (-2, "sales"), (1, "technical"), (4, "sales"), (None, None)])]
    # team-west: everything on time
    log += [item(n, m, "c-west", -1, "technical") for m in (first, second) for n in range(3)]
    return log, first, second


def expected_levels(first: str, second: str) -> dict[str, tuple[Any, ...]]:
    """(due, on_time, missed, level, below, final) per key."""
    return {
        f"team-east|tech_request|{first}": (4, 1, 3, 25.0, True, True),
        f"team-east|tech_request|{second}": (5, 2, 3, 40.0, True, True),
        f"team-west|tech_request|{first}": (3, 3, 0, 100.0, False, True),
        f"team-west|tech_request|{second}": (3, 3, 0, 100.0, False, True),
    }


# team-east's 6 misses: technical 4 (2, 3 and 1 h late, one never done: mean 2.0, max 3.0,
# 4/6 = 0.67), sales 1 (4 h, 0.17), unassigned 1 (never done, 0.17)
STALL_POINTS = [
    {"owner": "technical", "missed": 4, "share_of_missed": 0.67, "never_done": 1,
     "mean_hours_late": 2.0, "max_hours_late": 3.0},
    {"owner": "sales", "missed": 1, "share_of_missed": 0.17, "never_done": 0,
     "mean_hours_late": 4.0, "max_hours_late": 4.0},
    {"owner": "unassigned", "missed": 1, "share_of_missed": 0.17, "never_done": 1,
     "mean_hours_late": None, "max_hours_late": None},
]


def _levels(records: list[tuple[str, dict[str, Any]]]) -> dict[str, tuple[Any, ...]]:
    return {
        f"{r['team_id']}|{r['action']}|{r['month']}": tuple(r[k] for k in ("due", "on_time", "missed", "level", "below", "final"))
        for t, r in records if t == "action-water-levels"
    }


def _diagnoses(records: list[tuple[str, dict[str, Any]]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The newest diagnosis per team, action and later month, without its time stamp."""
    return {
        (r["team_id"], r["action"], r["months"][1]["month"]): {k: v for k, v in r.items() if k != "as_of"}
        for t, r in records if t == "process-diagnosis"
    }


def test_water_levels_and_the_diagnosis_equal_hand_computed_values_and_replay(
    deployment: Deployment, tmp_path: Path
) -> None:
    log, first, second = build_log(int(time.time() * 1000))
    worker = deployment.start_worker()
    deployment.produce(log[:2])  # ownership first: Kafka does not order across topics
    worker.wait_for_metric("credence_input_events_total", 2, topic="customer-directory", outcome="accepted")
    deployment.produce(log[2:])
    levels = expected_levels(first, second)

    def done(records: list[tuple[str, dict[str, Any]]]) -> bool:
        got = _levels(records)
        diagnosis = _diagnoses(records).get(("team-east", "tech_request", second))
        return all(got.get(k) == v for k, v in levels.items()) and diagnosis is not None \
            and diagnosis["stall_points"] == STALL_POINTS

    out = deployment.consume_until(["action-water-levels", "process-diagnosis"], done)
    clock_at_end = int(time.time() * 1000)

    diagnoses = _diagnoses(out)
    assert list(diagnoses) == [("team-east", "tech_request", second)]  # team-west is above target
    diagnosis = diagnoses[("team-east", "tech_request", second)]
    assert (diagnosis["region"], diagnosis["target"], diagnosis["missed"], diagnosis["never_done"]) == ("east", 95.0, 6, 2)
    assert diagnosis["months"] == [{"month": first, "level": 25.0, "due": 4, "on_time": 1},
                                   {"month": second, "level": 40.0, "due": 5, "on_time": 2}]
    # never done first (by due time), then the latest
    assert [(w["action_id"], w["hours_late"]) for w in diagnosis["worst"]] == [
        (f"tr-c-east-{first}-3", None), (f"tr-c-east-{second}-4", None), (f"tr-c-east-{second}-3", 4.0),
        (f"tr-c-east-{first}-2", 3.0), (f"tr-c-east-{first}-1", 2.0), (f"tr-c-east-{second}-2", 1.0),
    ]
    worker.wait_for_metric("credence_action_water_closed_below", 1, team_id="team-east", action="tech_request")
    assert worker.metric_value("credence_action_water_closed_below", team_id="team-west", action="tech_request") == 0
    assert worker.metric_value("credence_process_diagnoses_total", action="tech_request") >= 1

    offline = replay_all(log, tmp_path, clock_at_end)
    assert _latest_levels(offline) == _latest_levels(out)
    assert _diagnoses(offline) == diagnoses


def _latest_levels(records: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The newest ``action-water-levels`` value per key, without its time stamp."""
    return {
        f"{r['team_id']}|{r['action']}|{r['month']}": {k: v for k, v in r.items() if k != "as_of"}
        for t, r in records if t == "action-water-levels"
    }
