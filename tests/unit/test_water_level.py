"""Monthly action water levels and the process diagnosis (``scoring.rollup.water_level``,
``scoring.rollup.diagnosis``), with every number computed by hand."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from scoring.catalog import ACTION_WATER_LEVELS, PROCESS_DIAGNOSIS
from scoring.replay import LogRecord, replay
from scoring.rollup import team
from scoring.rollup.config import RollupConfig
from scoring.rollup.team_rollup import TeamRollup
from scoring.rollup.water_level import month_end, month_of
from streams.processing.team_store import TableTeamStore, piece_key
from tests.unit.fixtures import catalog, record, rules
from tests.unit.rollup_fixtures import new_rollup, of, utc

SHANGHAI = "Asia/Shanghai"
CFG = RollupConfig(water_targets={"tech_request": 0.95})


def item(opp: str, due: str, done: str | None = None, *, ts: str | None = None, owner: str | None = "technical",
         action: str = "tech_request", action_id: str | None = None) -> dict[str, Any]:
    """An ``action`` team update (times in Shanghai unless they say otherwise)."""
    update: dict[str, Any] = {"kind": "action", "ts": utc(ts or done or due), "opportunity_id": opp,
                              "action": action, "due_ts": utc(due)}
    if done is not None:
        update["done_ts"] = utc(done)
    if owner is not None:
        update["owner"] = owner
    if action_id is not None:
        update["action_id"] = action_id
    return update


def levels(outputs: list[Any]) -> dict[str, tuple[Any, ...]]:
    """The newest ``action-water-levels`` record per key, as (due, on_time, missed, level, below, final)."""
    return {o.key: tuple(o.value[k] for k in ("due", "on_time", "missed", "level", "below", "final"))
            for o in outputs if o.topic == ACTION_WATER_LEVELS}


@pytest.mark.parametrize(("at", "zone", "month"), [
    ("2026-09-30T15:59:59.999Z", SHANGHAI, "2026-09"),
    ("2026-09-30T16:00:00Z", SHANGHAI, "2026-10"),  # midnight in Shanghai: October there
    ("2026-09-30T16:00:00Z", "UTC", "2026-09"),  # ... still September in UTC
    ("2026-09-30T23:59:59.999Z", "UTC", "2026-09"),
    ("2026-10-01T00:00:00Z", "UTC", "2026-10"),
    ("2026-12-31T16:00:00Z", SHANGHAI, "2027-01"),  # a new year
    ("2026-11-01T04:30:00Z", "America/New_York", "2026-11"),  # 00:30 EDT
])
def test_month_of(at: str, zone: str, month: str) -> None:
    assert month_of(utc(at), zone) == month


@pytest.mark.parametrize(("month", "zone", "end"), [
    ("2026-09", SHANGHAI, "2026-09-30T16:00:00Z"),
    ("2026-09", "UTC", "2026-10-01T00:00:00Z"),
    ("2026-12", SHANGHAI, "2026-12-31T16:00:00Z"),
    ("2026-03", "America/New_York", "2026-04-01T04:00:00Z"),  # summer time: UTC-4
    ("2026-11", "America/New_York", "2026-12-01T05:00:00Z"),  # winter time: UTC-5
])
def test_month_end(month: str, zone: str, end: str) -> None:
    assert month_end(month, zone) == utc(end)


@pytest.mark.parametrize(("zone", "expected"), [
    # due 2026-10-01 01:00 in Shanghai = 2026-09-30 17:00 UTC
    (SHANGHAI, {"T1|tech_request|2026-10": (1, 0, 1, 0.0, True, True)}),
    ("UTC", {"T1|tech_request|2026-09": (1, 0, 1, 0.0, True, True),
             "T1|tech_request|2026-10": (0, 0, 0, None, False, True)}),
])
def test_a_month_edge_depends_on_the_time_zone(zone: str, expected: dict[str, Any]) -> None:
    rollup = new_rollup(RollupConfig(time_zone=zone, water_targets={"tech_request": 0.95}))
    out = rollup.apply("T1", item("o1", "2026-10-01T01:00:00+08:00"))
    out += rollup.tick(utc("2026-11-02T00:00:00+08:00"))
    assert {k: v for k, v in levels(out).items() if k < "T1|tech_request|2026-11"} == expected


# A team's tech requests (target 0.95), the clock at 2026-12-10 12:00 Shanghai:
#   2026-07  one on time                                   -> 1 due, 1 on time, level 100
#   2026-08  nothing due                                   -> null, not below
#   2026-09  s1-s3 on time; s4 (legal) 2 h late            -> 4 due, 3 on time: 75.00
#   2026-10  o1 on time; o2 reported undone, then done 3 h late; o3 1 h late; o4 never
#            done; o5 (no owner) 6 h late; o6 (sales) reported undone, then done
#            on time                                        -> 6 due, 2 on time: 33.33
#   2026-11  two on time                                   -> 100
#   2026-12  d1 due 12-05 never done (missed); d2 due 12-20 open; d3 due 12-25 done
#            early                                         -> 3 due, 1 on time, 1 missed:
#            the decided so far: 1 / 2 = 50.00, not final
HISTORY = [
    item("j1", "2026-07-15T10:00:00+08:00", "2026-07-15T09:00:00+08:00"),
    *[item(f"s{i}", f"2026-09-0{i}T10:00:00+08:00", f"2026-09-0{i}T09:00:00+08:00") for i in (1, 2, 3)],
    item("s4", "2026-09-30T22:00:00+08:00", "2026-10-01T00:00:00+08:00", owner="legal"),
    item("o1", "2026-10-01T00:00:00+08:00", "2026-10-01T00:00:00+08:00"),
    item("o2", "2026-10-05T10:00:00+08:00", ts="2026-10-05T11:00:00+08:00"),
    item("o2", "2026-10-05T10:00:00+08:00", "2026-10-05T13:00:00+08:00", ts="2026-10-06T09:00:00+08:00"),
    item("o3", "2026-10-10T10:00:00+08:00", "2026-10-10T11:00:00+08:00"),
    item("o4", "2026-10-20T10:00:00+08:00", ts="2026-10-01T09:00:00+08:00"),
    item("o5", "2026-10-31T12:00:00+08:00", "2026-10-31T18:00:00+08:00", owner=None),
    item("o6", "2026-10-25T10:00:00+08:00", ts="2026-10-24T10:00:00+08:00", owner="sales"),
    item("o6", "2026-10-25T10:00:00+08:00", "2026-10-25T08:00:00+08:00", ts="2026-10-26T10:00:00+08:00",
         owner="sales"),
    *[item(f"n{i}", f"2026-11-1{i}T10:00:00+08:00", f"2026-11-1{i}T09:00:00+08:00") for i in (1, 2)],
    item("d1", "2026-12-05T10:00:00+08:00", ts="2026-12-01T10:00:00+08:00"),
    item("d2", "2026-12-20T10:00:00+08:00", ts="2026-12-01T10:00:00+08:00"),
    item("d3", "2026-12-25T10:00:00+08:00", "2026-12-02T10:00:00+08:00"),
]
CLOCK = utc("2026-12-10T12:00:00+08:00")

EXPECTED_LEVELS = {
    "T1|tech_request|2026-07": (1, 1, 0, 100.0, False, True),
    "T1|tech_request|2026-08": (0, 0, 0, None, False, True),
    "T1|tech_request|2026-09": (4, 3, 1, 75.0, True, True),
    "T1|tech_request|2026-10": (6, 2, 4, 33.33, True, True),
    "T1|tech_request|2026-11": (2, 2, 0, 100.0, False, True),
    "T1|tech_request|2026-12": (3, 1, 1, 50.0, True, False),
}
# Diagnosis of 2026-09 and 2026-10: missed s4 (legal, 2 h), o2 (3 h), o3 (1 h), o4 (never),
# o5 (unassigned, 6 h): 5 in all. technical: 3 of 5 = 0.6, mean of 3 h and 1 h = 2.0, max
# 3.0, one never done; legal and unassigned one each (0.2), ordered by name.
EXPECTED_DIAGNOSIS = {
    "team_id": "T1", "region": None, "action": "tech_request", "target": 95.0,
    "months": [{"month": "2026-09", "level": 75.0, "due": 4, "on_time": 3},
               {"month": "2026-10", "level": 33.33, "due": 6, "on_time": 2}],
    "missed": 5, "never_done": 1,
    "stall_points": [
        {"owner": "technical", "missed": 3, "share_of_missed": 0.6, "never_done": 1,
         "mean_hours_late": 2.0, "max_hours_late": 3.0},
        {"owner": "legal", "missed": 1, "share_of_missed": 0.2, "never_done": 0,
         "mean_hours_late": 2.0, "max_hours_late": 2.0},
        {"owner": "unassigned", "missed": 1, "share_of_missed": 0.2, "never_done": 0,
         "mean_hours_late": 6.0, "max_hours_late": 6.0},
    ],
}
# never done first, then the latest
WORST = [("o4", None), ("o5", 6.0), ("o2", 3.0), ("s4", 2.0), ("o3", 1.0)]


def run(updates: list[dict[str, Any]], clock: int = CLOCK, cfg: RollupConfig = CFG) -> tuple[TeamRollup, list[Any]]:
    rollup = new_rollup(cfg)
    out = [o for u in updates for o in rollup.apply("T1", u)]
    out += rollup.tick(clock)
    assert rollup.take_failures() == []
    return rollup, out


def test_monthly_levels_by_hand() -> None:
    rollup, out = run(HISTORY)
    assert levels(out) == EXPECTED_LEVELS
    # the team page's view: the records as last published, by action then month
    assert [(r["month"], r["level"], r["target"]) for r in rollup.water_levels("T1")] == [
        (k.rpartition("|")[2], v[3], 95.0) for k, v in EXPECTED_LEVELS.items()
    ]


def test_the_diagnosis_by_hand() -> None:
    rollup, out = run(HISTORY)
    [diagnosis] = of(out, PROCESS_DIAGNOSIS)
    assert {k: v for k, v in diagnosis.items() if k not in {"worst", "as_of"}} == EXPECTED_DIAGNOSIS
    assert [(w["opportunity_id"], w["hours_late"]) for w in diagnosis["worst"]] == WORST
    assert diagnosis["worst"][0] == {
        "month": "2026-10", "action_id": None, "opportunity_id": "o4", "owner": "technical",
        "due_ts": "2026-10-20T02:00:00.000Z", "done_ts": None, "hours_late": None,
    }
    assert rollup.latest_diagnosis("T1") == diagnosis
    assert rollup.latest_diagnosis("nobody") is None and rollup.water_levels("nobody") == []


def last_diagnoses(outputs: list[Any]) -> dict[str, dict[str, Any]]:
    """The newest diagnosis per pair of months, without its time stamp."""
    return {d["months"][1]["month"]: d | {"as_of": None} for d in of(outputs, PROCESS_DIAGNOSIS)}


def test_the_same_records_in_any_order() -> None:
    """Backwards, September closes with one item; the diagnosis waits for the clock tick,
    when every report is in: one, the same."""
    _, forward = run(HISTORY)
    _, backward = run(HISTORY[::-1])
    assert levels(backward) == levels(forward)
    assert len(of(backward, PROCESS_DIAGNOSIS)) == 1
    assert last_diagnoses(backward) == last_diagnoses(forward)


def test_a_late_report_republishes_its_pair_at_the_next_tick() -> None:
    rollup, _ = run(HISTORY)
    # o3 was answered 5 h late, not 1 h
    out = rollup.apply("T1", item("o3", "2026-10-10T10:00:00+08:00", "2026-10-10T15:00:00+08:00",
                                  ts="2026-12-10T13:00:00+08:00"))
    assert of(out, PROCESS_DIAGNOSIS) == [] and levels(out) == {}  # the counts did not change
    [diagnosis] = of(rollup.tick(utc("2026-12-10T13:00:10+08:00")), PROCESS_DIAGNOSIS)
    assert diagnosis["stall_points"][0] == {"owner": "technical", "missed": 3, "share_of_missed": 0.6,
                                            "never_done": 1, "mean_hours_late": 4.0, "max_hours_late": 5.0}


def test_published_on_change_only() -> None:
    rollup, _ = run(HISTORY)
    assert rollup.apply("T1", HISTORY[0]) == []  # the same report again
    assert rollup.tick(CLOCK + 60_000) == []  # time passes, nothing decided
    # d2's due time passes undone: December's missed and level change, nothing else
    out = rollup.tick(utc("2026-12-20T10:00:01+08:00"))
    assert levels(out) == {"T1|tech_request|2026-12": (3, 1, 2, 33.33, True, False)}
    # December closes: final, and with November above target no diagnosis
    out = rollup.tick(utc("2027-01-01T00:00:00+08:00"))
    assert levels(out) == {"T1|tech_request|2026-12": (3, 1, 2, 33.33, True, True),
                           "T1|tech_request|2027-01": (0, 0, 0, None, False, False)}
    assert of(out, PROCESS_DIAGNOSIS) == []


def test_a_third_month_below_gives_a_second_diagnosis_for_the_last_two() -> None:
    # November below too: 1 of 2 on time (n2 done 4 h late)
    history = [u for u in HISTORY if u["opportunity_id"] != "n2"]
    history.append(item("n2", "2026-11-12T10:00:00+08:00", "2026-11-12T14:00:00+08:00", owner="legal"))
    rollup, out = run(history)
    diagnoses = of(out, PROCESS_DIAGNOSIS)
    assert [[m["month"] for m in d["months"]] for d in diagnoses] == [["2026-09", "2026-10"], ["2026-10", "2026-11"]]
    second = diagnoses[1]
    assert second["months"][1] == {"month": "2026-11", "level": 50.0, "due": 2, "on_time": 1}
    # October's four misses and November's one: technical 3 of 5, legal 1 (4 h), unassigned 1
    assert [(p["owner"], p["missed"], p["share_of_missed"], p["mean_hours_late"]) for p in second["stall_points"]] == [
        ("technical", 3, 0.6, 2.0), ("legal", 1, 0.2, 4.0), ("unassigned", 1, 0.2, 6.0),
    ]
    assert rollup.latest_diagnosis("T1") == second
    # nothing more when time passes: one record per pair of months
    assert of(rollup.tick(CLOCK + 3_600_000), PROCESS_DIAGNOSIS) == []


def on_time_items(month: str, on_time: int, due: int) -> list[dict[str, Any]]:
    """``due`` items due on day 2 of ``month``, the first ``on_time`` done an hour early, the
    others an hour late."""
    return [
        item(f"{month}-{i}", f"{month}-02T10:00:00+08:00",
             f"{month}-02T{'09' if i < on_time else '11'}:00:00+08:00")
        for i in range(due)
    ]


@pytest.mark.parametrize(("on_time", "due", "level", "below"), [
    (19, 20, 95.0, False),  # exactly at target: not below
    (18, 20, 90.0, True),
    (20, 20, 100.0, False),
    (0, 3, 0.0, True),
    (0, 0, None, False),  # nothing due: null, never below
])
def test_below_target(on_time: int, due: int, level: float | None, below: bool) -> None:
    history = on_time_items("2026-10", on_time, due) + on_time_items("2026-11", on_time, due)
    history.append(item("anchor", "2026-09-02T10:00:00+08:00", "2026-09-02T09:00:00+08:00"))
    _, out = run(history)
    got = levels(out)
    assert got["T1|tech_request|2026-10"] == got["T1|tech_request|2026-11"] == (
        due, on_time, due - on_time, level, below, True)
    assert len(of(out, PROCESS_DIAGNOSIS)) == (1 if below else 0)


def test_a_kind_without_a_target_is_never_below() -> None:
    _, out = run([item("x", "2026-10-02T10:00:00+08:00", action="call"),
                  item("y", "2026-11-02T10:00:00+08:00", action="call")])
    assert {o.value["month"]: (o.value["target"], o.value["below"]) for o in out if o.topic == ACTION_WATER_LEVELS} == {
        "2026-10": (None, False), "2026-11": (None, False), "2026-12": (None, False)}
    assert of(out, PROCESS_DIAGNOSIS) == []


def test_item_identity_is_the_action_id_when_present() -> None:
    due = "2026-11-02T10:00:00+08:00"
    rollup, out = run([
        # one item under two opportunities: its newest report (done on time) wins
        item("o1", due, action_id="A-1", ts="2026-11-01T00:00:00+08:00"),
        item("o2", due, "2026-11-02T09:00:00+08:00", action_id="A-1"),
        # two items of one opportunity and action, told apart by their ids
        item("o3", due, action_id="A-2"),
        item("o3", due, "2026-11-02T09:00:00+08:00", action_id="A-3"),
    ], clock=utc("2026-11-20T00:00:00+08:00"))
    assert levels(out)["T1|tech_request|2026-11"] == (3, 2, 1, 66.67, True, False)
    components = rollup.store.load("T1").components(utc("2026-11-20T00:00:00+08:00"), CFG)
    assert components["action_completion"] == pytest.approx(200 / 3)


def test_over_capacity_items_are_refused_and_known_ones_still_update(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(team, "MAX_ACTION_ITEMS", 2)
    rollup = new_rollup(CFG)
    rollup.apply("T1", item("o1", "2026-11-02T10:00:00+08:00"))
    rollup.apply("T1", item("o2", "2026-11-02T10:00:00+08:00"))
    rollup.apply("T1", item("o3", "2026-11-02T10:00:00+08:00"))
    [failure] = rollup.take_failures()
    assert (failure.error.reason, failure.update["opportunity_id"]) == ("team_over_capacity", "o3")
    out = rollup.apply("T1", item("o1", "2026-11-02T10:00:00+08:00", "2026-11-02T09:00:00+08:00",
                                  ts="2026-11-03T00:00:00+08:00"))
    assert rollup.take_failures() == [] and levels(out)["T1|tech_request|2026-11"][:2] == (2, 1)


def test_months_before_the_kept_thirteen_are_forgotten() -> None:
    rollup, _ = run(HISTORY)
    rollup.tick(utc("2027-08-05T00:00:00+08:00"))  # 2026-08 .. 2027-08 kept
    state = rollup.store.load("T1")
    assert min(r["month"] for r in rollup.water_levels("T1")) == "2026-08"
    assert "j1" not in {row[5] for row in state.actions.values()}  # July's item went with its month
    assert state.water.latest_diagnosis() is not None  # the 2026-09/10 pair is still kept


def stored(rollup: TeamRollup) -> dict[bytes, bytes]:
    """The team table as the live store leaves it: every piece the team ever touched."""
    state = rollup.store.load("T1")
    return {piece_key(kind, "T1", key): orjson.dumps(state.piece(kind, key)) for kind, key in state.dirty}


def reloaded(table: dict[bytes, bytes], cfg: RollupConfig = CFG) -> TeamRollup:
    rollup = new_rollup(cfg)
    state = TableTeamStore(None, table).load("T1")  # type: ignore[arg-type]  # no app: nothing written
    assert state is not None
    rollup.store.save(state)
    return rollup


def test_the_team_table_keeps_water_levels_and_diagnoses() -> None:
    before, _ = run(HISTORY)
    after = reloaded(stored(before))
    assert after.water_levels("T1") == before.water_levels("T1")
    assert after.latest_diagnosis("T1") == before.latest_diagnosis("T1")
    assert after.tick(CLOCK + 60_000) == []  # nothing published again after a restart


def test_team_state_stored_before_water_levels_still_loads() -> None:
    """Then an action row was ``[ts, due_ts, done_ts]`` under ``[opportunity_id, action]``."""
    due, done = utc("2026-10-02T10:00:00+08:00"), utc("2026-10-02T11:00:00+08:00")
    header = {"t": "T1", "p": {}, "pub": None, "clk": done, "fa": 0}
    table = {piece_key("h", "T1", ""): orjson.dumps(header),
             piece_key("a", "T1", '["o1","tech_request"]'): orjson.dumps([done, due, done])}
    rollup = reloaded(table)
    out = rollup.tick(utc("2026-11-05T00:00:00+08:00"))
    assert levels(out)["T1|tech_request|2026-10"] == (1, 0, 1, 0.0, True, True)
    # a new report of the same item (no action_id) replaces the old row
    rollup.apply("T1", item("o1", "2026-10-02T10:00:00+08:00", "2026-10-02T09:00:00+08:00",
                            ts="2026-11-05T01:00:00+08:00"))
    assert [r["on_time"] for r in rollup.water_levels("T1")] == [1, 0]


def as_log(updates: list[dict[str, Any]]) -> list[LogRecord]:
    """The ``sales-action`` records behind team updates (one event id per report)."""
    return [
        record("sales-action", event_id=f"sa-{i}", customer_id="C1", team_id="T1",
               **{k: v for k, v in u.items() if k != "kind"})
        for i, u in enumerate(updates)
    ]


@pytest.mark.parametrize("now", [CLOCK, None])
def test_replay_publishes_the_levels_and_the_diagnosis(now: int | None) -> None:
    """Without ``--now`` the months close by the wall clock the replay runs at, as a live
    worker's clock ticks would have closed them: the same records as ``--now`` then."""
    result = replay(as_log(HISTORY), catalog(), rules(), now=now, rollup=CFG, wall_clock=CLOCK)
    assert result.invalid == [] and result.failed_team_updates == []
    assert levels(result.outputs) == EXPECTED_LEVELS
    [diagnosis] = of(result.outputs, PROCESS_DIAGNOSIS)
    assert {k: v for k, v in diagnosis.items() if k not in {"worst", "as_of"}} == EXPECTED_DIAGNOSIS


@pytest.mark.parametrize("due_ts", [253_402_300_799_999, utc("9999-12-01T00:00:00Z")])
def test_a_due_month_past_the_calendar_fails_that_report_alone(due_ts: int) -> None:
    rollup = new_rollup(CFG)
    rollup.apply("T1", item("o1", "2026-11-02T10:00:00+08:00"))
    assert rollup.apply("T1", item("o2", "2026-11-02T10:00:00+08:00") | {"due_ts": due_ts}) == []
    [failure] = rollup.take_failures()
    assert (failure.error.reason, failure.update["opportunity_id"]) == ("internal_error", "o2")
    out = rollup.tick(utc("2026-12-05T00:00:00+08:00"))
    assert levels(out)["T1|tech_request|2026-11"] == (1, 0, 1, 0.0, True, True)
