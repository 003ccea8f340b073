"""A customer's deltas follow it into the team its directory record names: the
traceability lists (``scoring.rollup.heatmap.traceability_lists``) and the customer's
score, whatever order the directory record and the behaviour events came in."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from scoring.catalog import TEAM_UPDATES
from scoring.deltas import Owner
from scoring.replay import LogRecord, replay
from scoring.rollup.config import RollupConfig
from scoring.rollup.heatmap import WEEK_MS, traceability_lists
from scoring.rollup.ledger import CustomerLedger
from scoring.rollup.records import UNASSIGNED, Output
from scoring.rollup.team_rollup import TeamRollup
from tests.unit.fixtures import catalog, rules
from tests.unit.rollup_fixtures import NOW, D, make_delta, new_rollup, of, trace_update, utc
from tests.unit.test_rollup_replay import directory, logins, quotes, rush, sales_action

CFG = RollupConfig()
#: Friday 2026-11-27 17:00 in Shanghai: the week of the lists is [FRI - 7 d, FRI)
FRI = utc("2026-11-27T09:00:00Z")
T1 = Owner("T1", "east", "R1")
T2 = Owner("T2", "west", "R2")


def lists(rollup: TeamRollup) -> dict[str, list[tuple[str, str, Any]]]:
    """Per team: (customer, delta id, region) of its list for the week before FRI."""
    return {
        team: [(row["customer_id"], row["delta_id"], row["region"]) for row in rows]
        for team, rows in traceability_lists(rollup.store.all(), FRI - WEEK_MS, FRI).items()
    }


def feed(rollup: TeamRollup, outputs: list[Output], new_team_first: str | None = None) -> None:
    """Apply the team updates among ``outputs``, in order; with ``new_team_first``, that
    team's updates before every other team's (two team records of one flush can reach
    the team agent in either order)."""
    updates = [(o.key, o.value) for o in outputs if o.topic == TEAM_UPDATES]
    if new_team_first is not None:
        updates.sort(key=lambda u: u[0] != new_team_first)  # stable: each team's own order kept
    rollup.apply_many(updates)


def fired(ledger: CustomerLedger, owner: Owner, ts: int, customer_id: str = "C1") -> tuple[str, list[Output]]:
    delta = make_delta("decision_chain", 12, ts, customer_id=customer_id, owner=owner)
    return delta.delta_id, ledger.add_delta(delta, delta.to_record(None), delta.owner, CFG)


@pytest.mark.parametrize("new_team_first", [None, "T1"], ids=["as sent", "the new team's record first"])
def test_deltas_before_the_directory_record_end_up_in_its_team(new_team_first):
    ledger, rollup = CustomerLedger(), new_rollup()
    first, outputs = fired(ledger, Owner(), FRI - 2 * D)  # no directory record yet: unassigned
    second, more = fired(ledger, Owner(), FRI - D)
    outputs += more + ledger.owner_changed("C1", T1, CFG)  # then the directory record
    feed(rollup, outputs, new_team_first)
    assert lists(rollup) == {"T1": [("C1", first, "east"), ("C1", second, "east")]}
    assert rollup.store.load(UNASSIGNED).customers == {}


@pytest.mark.parametrize("new_team_first", [None, "T2"], ids=["as sent", "the new team's record first"])
def test_a_move_between_two_teams_takes_the_deltas_along(new_team_first):
    ledger, rollup = CustomerLedger(), new_rollup()
    first, outputs = fired(ledger, T1, FRI - 2 * D)
    feed(rollup, outputs)
    assert lists(rollup) == {"T1": [("C1", first, "east")]}
    feed(rollup, ledger.owner_changed("C1", T2, CFG), new_team_first)
    assert lists(rollup) == {"T2": [("C1", first, "west")]}
    second, outputs = fired(ledger, T2, FRI - D)
    feed(rollup, outputs)
    assert lists(rollup) == {"T2": [("C1", first, "west"), ("C1", second, "west")]}


def test_a_tombstone_moves_the_deltas_to_unassigned():
    ledger, rollup = CustomerLedger(), new_rollup()
    first, outputs = fired(ledger, T1, FRI - 2 * D)
    feed(rollup, outputs + ledger.owner_changed("C1", Owner(), CFG))
    assert lists(rollup) == {UNASSIGNED: [("C1", first, None)]}


def test_other_customers_stay_where_they_are():
    ledger, other, rollup = CustomerLedger(), CustomerLedger(), new_rollup()
    mine, outputs = fired(ledger, Owner(), FRI - 2 * D)
    theirs, more = fired(other, Owner(), FRI - D, customer_id="C2")  # never gets a directory record
    feed(rollup, outputs + more + ledger.owner_changed("C1", T1, CFG))
    assert lists(rollup) == {"T1": [("C1", mine, "east")], UNASSIGNED: [("C2", theirs, None)]}


def test_a_customer_no_team_holds_keeps_its_deltas_where_they_were_sent():
    rollup = new_rollup()
    delta = make_delta("urgency", 6, FRI - D, owner=T1)
    rollup.apply("T1", trace_update(delta))  # its customer row never came
    assert lists(rollup) == {"T1": [("C1", delta.delta_id, "east")]}


def test_a_delta_sent_to_two_teams_is_listed_once():
    ledger, rollup = CustomerLedger(), new_rollup()
    delta_id, outputs = fired(ledger, T1, FRI - D)
    (trace,) = [o.value for o in outputs if o.value.get("kind") == "delta"]
    feed(rollup, outputs)
    rollup.apply("T2", trace)  # e.g. re-sent after a crash, stamped with another team
    assert lists(rollup) == {"T1": [("C1", delta_id, "east")]}


@pytest.mark.parametrize(
    ["owner", "expected"],
    [
        pytest.param(T2, ("T2", "west", "R2"), id="a new team"),
        pytest.param(Owner("T1", "north", "R9"), ("T1", "north", "R9"), id="same team, new region and rep"),
        pytest.param(Owner(), (None, None, None), id="tombstone"),
    ],
)
def test_a_directory_change_republishes_the_customer_score_with_its_owner(owner, expected):
    ledger = CustomerLedger()
    fired(ledger, T1, FRI - D)
    (score,) = of(ledger.owner_changed("C1", owner, CFG), "customer-scores")
    assert (score["team_id"], score["region"], score["rep_id"]) == expected
    assert (score["net_points"], score["deltas_in_window"]) == (12, 1)


def test_no_score_to_republish_before_the_first_delta():
    ledger = CustomerLedger()
    ledger.record_activity("C1", FRI - D, Owner(), CFG)
    assert of(ledger.owner_changed("C1", T1, CFG), "customer-scores") == []


# -- replay: the directory record at every position among the customer's events ---------


EVENTS = [
    *logins("C1", NOW - 3 * D, ip="203.0.113.1"),  # decision_chain +12
    *quotes("C1", NOW - 2 * D, ip="203.0.113.2"),  # high_intent +8
    *rush("C1", NOW - D, "CT-1", ip="203.0.113.3"),  # urgency +6
]
#: a missed action makes each team red (0 % actions, 100 % signal strength: 46.67; no
#: signal strength: 0), so that the heat map holds its traceability list
ACTIONS = [sales_action(f"O-{t}", "demo", NOW - D, NOW, team=t) for t in ("T1", "T2", UNASSIGNED)]


def heatmap_and_score(log: list[LogRecord]) -> tuple[list[Any], dict[str, Any]]:
    result = replay([*ACTIONS, *log], catalog(), rules(), heatmap_at=FRI, rollup=CFG)
    heatmap = [o.value for o in result.outputs if o.topic == "credibility-heatmap"]
    *_, score = of(result.outputs, "customer-scores", "C1")
    return heatmap, {k: v for k, v in score.items() if k != "last_delta"}  # last_delta: as stamped


def traces(heatmap: list[Any]) -> dict[str, list[str]]:
    return {team: [row["signal"] for row in rows] for region in heatmap for team, rows in region["traceability"].items()}


@pytest.mark.parametrize("position", range(len(EVENTS) + 1))
def test_replay_lists_the_same_whatever_the_directory_records_position(position):
    log = [*EVENTS[:position], directory("C1", "T1"), *EVENTS[position:]]
    heatmap, score = heatmap_and_score(log)
    assert (heatmap, score) == heatmap_and_score([directory("C1", "T1"), *EVENTS])
    assert traces(heatmap) == {"T1": ["decision_chain", "high_intent", "urgency"], "T2": [], UNASSIGNED: []}
    assert {row["region"] for region in heatmap for rows in region["traceability"].values() for row in rows} == {"east"}
    assert (score["team_id"], score["net_points"]) == ("T1", 26)


@pytest.mark.parametrize(
    ["first", "second"],
    [(i, j) for i in range(len(EVENTS) + 1) for j in range(i, len(EVENTS) + 1)],
)
def test_replay_follows_a_move_whatever_the_positions(first, second):
    """Two directory records (T1, then T2) anywhere among the events: all in T2."""
    log = [*EVENTS]
    log.insert(second, directory("C1", "T2", region="west"))
    log.insert(first, directory("C1", "T1"))
    heatmap, score = heatmap_and_score(log)
    assert (heatmap, score) == heatmap_and_score([directory("C1", "T1"), directory("C1", "T2", "west"), *EVENTS])
    assert traces(heatmap) == {"T1": [], "T2": ["decision_chain", "high_intent", "urgency"], UNASSIGNED: []}
    assert (score["team_id"], score["region"]) == ("T2", "west")


def stamped(records: list[LogRecord], team_id: str) -> list[LogRecord]:
    """``records`` with a ``team_id`` field on every event."""
    return [LogRecord(r.topic, r.key, orjson.dumps({**orjson.loads(r.value or b"{}"), "team_id": team_id}))
            for r in records]  # fmt: skip


@pytest.mark.parametrize("position", range(len(EVENTS) + 1))
def test_the_directory_not_the_events_team_field_names_the_customers_team(position):
    """Events carrying another team stamp their deltas with it (SPEC: the completing
    event's fields win), but the customer, its score and its deltas' list follow the
    directory record, wherever it comes."""
    events = stamped(EVENTS, "T2")
    result = replay([*ACTIONS, *events[:position], directory("C1", "T1"), *events[position:]], catalog(),
                    rules(), heatmap_at=FRI, rollup=CFG)  # fmt: skip
    assert {d.owner.team_id for d in result.deltas} == {"T2"}
    heatmap = [o.value for o in result.outputs if o.topic == "credibility-heatmap"]
    assert traces(heatmap) == {"T1": ["decision_chain", "high_intent", "urgency"], "T2": [], UNASSIGNED: []}
    assert of(result.outputs, "customer-scores", "C1")[-1]["team_id"] == "T1"


def test_replay_without_a_directory_record_lists_the_deltas_as_unassigned():
    heatmap, score = heatmap_and_score(EVENTS)
    assert traces(heatmap) == {"T1": [], "T2": [], UNASSIGNED: ["decision_chain", "high_intent", "urgency"]}
    assert score["team_id"] is None
