"""Team credibility (``scoring.rollup.team`` and ``TeamRollup.apply``): bands, the
weighted score with rescaled weights, the three components, publication."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.rollup.config import RollupConfig
from scoring.rollup.team import COMPONENTS, FORGET_EVERY_MS, TeamState, band, credibility
from scoring.rollup.team_rollup import DictTeamStore, TeamRollup
from scoring.rollup.undo import UndoLog
from scoring.timeutil import format_ts
from tests.unit.rollup_fixtures import (
    NOW,
    D,
    H,
    action,
    brief_team,
    customer,
    customer_left,
    new_rollup,
    of,
    outcome,
)

CFG = RollupConfig()
WEIGHTS = {"action_completion": 0.40, "signal_strength": 0.35, "fulfilment": 0.25}


def state_with(updates, cfg=CFG) -> TeamState:
    state = TeamState("T1")
    for update in updates:
        state.apply(update, cfg)
    return state


# --- band -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ["score", "expected"],
    [
        pytest.param(-1.0, "red", id="below zero"),
        pytest.param(0.0, "red", id="zero"),
        pytest.param(69.99, "red", id="69.99"),
        pytest.param(69.999999, "red", id="just below 70"),
        pytest.param(70.0, "yellow", id="70 exactly"),
        pytest.param(70, "yellow", id="70 as int"),
        pytest.param(84.99, "yellow", id="84.99"),
        pytest.param(84.999999, "yellow", id="just below 85"),
        pytest.param(85.0, "green", id="85 exactly"),
        pytest.param(100.0, "green", id="100"),
    ],
)
def test_band_default_limits(score, expected):
    assert band(score, CFG) == expected


@pytest.mark.parametrize(
    ["red_below", "yellow_below", "score", "expected"],
    [
        pytest.param(50, 60, 49.99, "red", id="49.99 of 50/60"),
        pytest.param(50, 60, 50, "yellow", id="50 of 50/60"),
        pytest.param(50, 60, 59.99, "yellow", id="59.99 of 50/60"),
        pytest.param(50, 60, 60, "green", id="60 of 50/60"),
        pytest.param(50, 60, 69.99, "green", id="69.99 is green under 50/60"),
        pytest.param(70, 70, 69.99, "red", id="no yellow band: 69.99"),
        pytest.param(70, 70, 70, "green", id="no yellow band: 70"),
        pytest.param(0, 0, 0, "green", id="nothing is red"),
        pytest.param(101, 101, 100, "red", id="everything is red"),
    ],
)
def test_band_configurable_limits(red_below, yellow_below, score, expected):
    assert band(score, RollupConfig(red_below=red_below, yellow_below=yellow_below)) == expected


# --- credibility ------------------------------------------------------------------


def comps(action_completion=None, signal_strength=None, fulfilment=None):
    return {
        "action_completion": action_completion,
        "signal_strength": signal_strength,
        "fulfilment": fulfilment,
    }


@pytest.mark.parametrize(
    ["components", "expected"],
    [
        # 0.4*80 + 0.35*60 + 0.25*90 = 32 + 21 + 22.5
        pytest.param(comps(80, 60, 90), 75.5, id="all three"),
        # (0.4*80 + 0.25*90) / 0.65 = 54.5 / 0.65
        pytest.param(comps(80, None, 90), 54.5 / 0.65, id="no signal strength"),
        # (0.4*80 + 0.35*60) / 0.75 = 53 / 0.75
        pytest.param(comps(80, 60, None), 53 / 0.75, id="no fulfilment"),
        # (0.35*60 + 0.25*90) / 0.6 = 43.5 / 0.6
        pytest.param(comps(None, 60, 90), 72.5, id="no action completion"),
        pytest.param(comps(80, None, None), 80.0, id="only action completion"),
        pytest.param(comps(None, 60, None), 60.0, id="only signal strength"),
        pytest.param(comps(None, None, 90), 90.0, id="only fulfilment"),
        pytest.param(comps(0, 0, 0), 0.0, id="zeros are data, not missing"),
        pytest.param(comps(0, None, None), 0.0, id="a single zero"),
        pytest.param(comps(100, 100, 100), 100.0, id="all 100"),
        pytest.param(comps(), None, id="none"),
        pytest.param({}, None, id="empty"),
    ],
)
def test_credibility(components, expected):
    result = credibility(components, CFG)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1e-9)


def test_credibility_of_action_80_and_fulfilment_90_is_83_85():
    # (0.4*80 + 0.25*90) / 0.65 = 83.846...
    assert round(credibility(comps(80, None, 90), CFG), 2) == 83.85


@pytest.mark.parametrize(
    ["weights", "components", "expected"],
    [
        pytest.param((1, 1, 1), comps(90, 60, 30), 60.0, id="equal weights"),
        pytest.param((0.5, 0.5, 0), comps(80, 40, 10), 60.0, id="fulfilment weighs nothing"),
        pytest.param((0.5, 0.5, 0), comps(None, None, 10), None, id="only a zero-weight part"),
        pytest.param((2, 0, 0), comps(None, 40, 10), None, id="all present parts weigh zero"),
        pytest.param((2, 1, 1), comps(100, None, 0), 200 / 3, id="rescaled custom weights"),
    ],
)
def test_credibility_configurable_weights(weights, components, expected):
    cfg = RollupConfig(*weights)
    result = credibility(components, cfg)
    assert result == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ["updates", "used", "score", "color"],
    [
        pytest.param(
            [action("O1", "demo", NOW - D, NOW - 2 * D)],
            ["action_completion"], 100.0, "green", id="actions only",
        ),
        pytest.param(
            [customer("C1", 13, NOW - D)], ["signal_strength"], 50.0, "red", id="customers only",
        ),
        pytest.param(
            [outcome("2026-10", 100, 80)], ["fulfilment"], 80.0, "yellow", id="outcomes only",
        ),
        # action 80 (4 of 5 on time), fulfilment 90: (0.4*80 + 0.25*90) / 0.65 = 83.846
        pytest.param(
            [
                *(action(f"O{i}", "demo", NOW - D, NOW - 2 * D) for i in range(4)),
                action("O9", "demo", NOW - D),
                outcome("2026-10", 100, 90),
            ],
            ["action_completion", "fulfilment"], 83.85, "yellow", id="action and fulfilment",
        ),
        # 0.4*100 + 0.35*50 + 0.25*80 = 40 + 17.5 + 20
        pytest.param(
            [
                action("O1", "demo", NOW - D, NOW - 2 * D),
                customer("C1", 13, NOW - D),
                outcome("2026-10", 100, 80),
            ],
            list(COMPONENTS), 77.5, "yellow", id="all three",
        ),
    ],
)  # fmt: skip
def test_record_says_which_components_were_used(updates, used, score, color):
    record = state_with(updates).record(NOW, CFG)
    assert record["components_used"] == used
    assert record["weights"] == WEIGHTS
    assert (record["score"], record["band"]) == (score, color)
    assert [k for k, v in record["components"].items() if v is not None] == used
    assert list(record["components"]) == list(COMPONENTS)
    assert record["team_id"] == "T1"
    assert record["ts"] == "2026-11-26T09:30:00.000Z"


@pytest.mark.parametrize(
    "updates",
    [
        pytest.param([], id="nothing"),
        pytest.param([action("O1", "demo", NOW + D)], id="only an action not yet due"),
        pytest.param([customer("C1", 26, NOW - 31 * D)], id="only an inactive customer"),
        pytest.param([customer("C1", 26, None)], id="a customer without activity"),
    ],
)
def test_no_record_without_any_component(updates):
    assert state_with(updates).record(NOW, CFG) is None


# --- action completion ------------------------------------------------------------


def completion(updates, now=NOW, cfg=CFG):
    return state_with(updates, cfg).components(now, cfg)["action_completion"]


@pytest.mark.parametrize(
    ["updates", "expected"],
    [
        pytest.param([], None, id="no actions"),
        pytest.param([action("O1", "demo", NOW - D, NOW - 2 * D)], 100.0, id="done before due"),
        pytest.param([action("O1", "demo", NOW - D, NOW - D)], 100.0, id="done exactly at due"),
        pytest.param([action("O1", "demo", NOW - D, NOW - D + 1)], 0.0, id="done 1 ms late"),
        pytest.param([action("O1", "demo", NOW - 5 * D, NOW - D)], 0.0, id="done days late"),
        pytest.param([action("O1", "demo", NOW - D)], 0.0, id="no done_ts: not done"),
        pytest.param([action("O1", "demo", NOW, NOW)], 100.0, id="due exactly now"),
        pytest.param([action("O1", "demo", NOW + 1, NOW - D)], None, id="due 1 ms from now"),
        pytest.param([action("O1", "demo", NOW + 3 * D)], None, id="not yet due, not done"),
        pytest.param([action("O1", "demo", NOW - 30 * D, NOW - 31 * D)], None,
                     id="due exactly 30 days ago: out"),
        pytest.param([action("O1", "demo", NOW - 30 * D + 1, NOW - 31 * D)], 100.0,
                     id="due 30 days minus 1 ms ago: in"),
        pytest.param([action("O1", "demo", NOW - 45 * D, NOW - 46 * D)], None, id="due long ago"),
        # the newest report (by its ts) wins, whatever order they arrive in
        pytest.param(
            [action("O1", "demo", NOW - D, ts=NOW - 3 * D),
             action("O1", "demo", NOW - D, NOW - 2 * D, ts=NOW - 2 * D)],
            100.0, id="reported twice: done report newer",
        ),
        pytest.param(
            [action("O1", "demo", NOW - D, NOW - 2 * D, ts=NOW - 2 * D),
             action("O1", "demo", NOW - D, ts=NOW - 3 * D)],
            100.0, id="reported twice: older report arrives last",
        ),
        pytest.param(
            [action("O1", "demo", NOW - D, NOW - 2 * D, ts=NOW - 2 * D),
             action("O1", "demo", NOW - D, ts=NOW - H)],
            0.0, id="reported twice: newest says not done",
        ),
        pytest.param(
            [action("O1", "demo", NOW - D, NOW - 2 * D, ts=NOW - 2 * D),
             action("O1", "demo", NOW - 2 * D, NOW - 2 * D, ts=NOW - 2 * D)],
            100.0, id="reported twice with the same ts: one action",
        ),
        pytest.param(
            [action("O1", "demo", NOW - D, NOW - 2 * D), action("O1", "call", NOW - D)],
            50.0, id="two actions of one opportunity",
        ),
        pytest.param(
            [action("O1", "demo", NOW - D, NOW - 2 * D), action("O2", "demo", NOW - D)],
            50.0, id="one action of two opportunities",
        ),
        # due in window: O1 on time, O2 late, O3 not done, O4 at due, O7 on time -> 3 of 5;
        # O5 due 31 days ago and O6 not yet due do not count
        pytest.param(
            [
                action("O1", "demo", NOW - 10 * D, NOW - 11 * D),
                action("O2", "demo", NOW - 5 * D, NOW - 4 * D),
                action("O3", "call", NOW - 3 * D),
                action("O4", "proposal", NOW - D, NOW - D),
                action("O5", "demo", NOW - 31 * D, NOW - 32 * D),
                action("O6", "demo", NOW + 2 * D, NOW - D),
                action("O7", "call", NOW - 20 * D, NOW - 20 * D - H),
            ],
            60.0, id="mixed: 3 of 5 due on time",
        ),
        pytest.param(
            [action("O1", "demo", NOW - D), action("O2", "demo", NOW - D),
             action("O3", "demo", NOW - D, NOW - D)],
            100 / 3, id="1 of 3",
        ),
    ],
)  # fmt: skip
def test_action_completion(updates, expected):
    result = completion(updates)
    assert result == (None if expected is None else pytest.approx(expected))


def test_action_window_is_configurable():
    updates = [action("O1", "demo", NOW - 5 * D, NOW - 6 * D), action("O2", "demo", NOW - D)]
    assert completion(updates, cfg=RollupConfig(action_window_ms=3 * D)) == 0.0
    assert completion(updates, cfg=RollupConfig(action_window_ms=7 * D)) == 50.0


# --- signal strength --------------------------------------------------------------


def strength(updates, now=NOW, cfg=CFG):
    return state_with(updates, cfg).components(now, cfg)["signal_strength"]


@pytest.mark.parametrize(
    ["updates", "expected"],
    [
        pytest.param([], None, id="no customers"),
        pytest.param([customer("C1", 26, NOW - D)], 100.0, id="26 points"),
        pytest.param([customer("C1", 13, NOW - D)], 50.0, id="13 points"),
        pytest.param([customer("C1", 1, NOW - D)], 100 / 26, id="1 point"),
        pytest.param([customer("C1", 0, NOW - D)], 0.0, id="0 points, active"),
        pytest.param([customer("C1", -5, NOW - D)], 0.0, id="negative counts as 0"),
        pytest.param([customer("C1", 39, NOW - D)], 100.0, id="over 26 clamps to 100"),
        pytest.param([customer("C1", 26, NOW)], 100.0, id="active exactly now"),
        pytest.param([customer("C1", 26, NOW - 30 * D + 1)], 100.0, id="active 30 d - 1 ms ago"),
        pytest.param([customer("C1", 26, NOW - 30 * D)], None, id="active exactly 30 days ago"),
        pytest.param([customer("C1", 26, NOW - 31 * D)], None, id="inactive"),
        pytest.param([customer("C1", 26, None)], None, id="never active"),
        pytest.param([customer("C1", 26, NOW - D), customer("C2", 0, NOW - 2 * D)], 50.0,
                     id="mean of 100 and 0"),
        # (100 + 50 + 0 + 100) / 4; C5 is inactive and left out
        pytest.param(
            [
                customer("C1", 26, NOW - D),
                customer("C2", 13, NOW - 2 * D),
                customer("C3", -5, NOW - 3 * D),
                customer("C4", 39, NOW - 4 * D),
                customer("C5", 20, NOW - 31 * D),
            ],
            62.5, id="mixed",
        ),
        pytest.param(
            [customer("C1", 26, NOW - D, as_of=NOW - D), customer("C1", 13, NOW - D, as_of=NOW - H)],
            50.0, id="newer report of a customer wins",
        ),
        pytest.param(
            [customer("C1", 13, NOW - D, as_of=NOW - H), customer("C1", 26, NOW - D, as_of=NOW - D)],
            50.0, id="older report arriving late is ignored",
        ),
        pytest.param([customer("C1", 26, NOW - D), customer_left("C1")], None, id="customer left"),
        pytest.param([customer("C1", 26, NOW - D), customer("C2", 0, NOW - D), customer_left("C1")],
                     0.0, id="one of two left"),
        pytest.param([customer_left("C9")], None, id="unknown customer left"),
    ],
)  # fmt: skip
def test_signal_strength(updates, expected):
    result = strength(updates)
    assert result == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ["cfg", "net", "expected"],
    [
        pytest.param(RollupConfig(strength_full_points=10), 5, 50.0, id="10 points full: 5"),
        pytest.param(RollupConfig(strength_full_points=10), 26, 100.0, id="10 points full: 26"),
        pytest.param(RollupConfig(activity_window_ms=2 * D), 26, None, id="2-day window"),
    ],
)
def test_signal_strength_configurable(cfg, net, expected):
    assert strength([customer("C1", net, NOW - 3 * D)], cfg=cfg) == expected


# --- fulfilment -------------------------------------------------------------------


def fulfilment(updates, cfg=CFG):
    return state_with(updates, cfg).components(NOW, cfg)["fulfilment"]


SIX_PLUS_ONE = [
    outcome("2026-04", 100, 50),  # deviation 0.5: the 7th newest period, ignored
    outcome("2026-05", 100, 90),  # 0.10
    outcome("2026-06", 200, 220),  # 0.10
    outcome("2026-07", 100, 100),  # 0
    outcome("2026-08", 50, 40),  # 0.20
    outcome("2026-09", 100, 130),  # 0.30
    outcome("2026-10", 400, 380),  # 0.05
]


@pytest.mark.parametrize(
    ["updates", "expected"],
    [
        pytest.param([], None, id="no periods"),
        pytest.param([outcome("2026-10", 100, 100)], 100.0, id="exact forecast"),
        pytest.param([outcome("2026-10", 100, 90)], 90.0, id="under by 10 %"),
        pytest.param([outcome("2026-10", 100, 110)], 90.0, id="over by 10 %"),
        pytest.param([outcome("2026-10", 100, 0)], 0.0, id="nothing sold"),
        pytest.param([outcome("2026-10", 100, 300)], 0.0, id="deviation 200 %: floor 0"),
        pytest.param([outcome("2026-10", 100, 300), outcome("2026-09", 100, 100)], 0.0,
                     id="mean deviation 100 %: 0"),
        pytest.param([outcome("2026-10", 100, 90), outcome("2026-09", 100, 130)], 80.0,
                     id="mean of 10 % and 30 %"),
        # last six: (0.10 + 0.10 + 0 + 0.20 + 0.30 + 0.05) / 6 = 0.125
        pytest.param(SIX_PLUS_ONE, 87.5, id="7 periods: the oldest is ignored"),
        pytest.param(SIX_PLUS_ONE[::-1], 87.5, id="7 periods in reverse order"),
        pytest.param(SIX_PLUS_ONE[1:], 87.5, id="exactly 6 periods"),
        # (0.5 + 0.10 + 0.10 + 0 + 0.20) / 5 = 0.18
        pytest.param(SIX_PLUS_ONE[:5], 82.0, id="5 periods: all count"),
        pytest.param(
            [outcome("2026-10", 100, 50, ts=NOW - 40 * D), outcome("2026-10", 100, 100, ts=NOW - 39 * D)],
            100.0, id="repeated period: newest wins",
        ),
        pytest.param(
            [outcome("2026-10", 100, 100, ts=NOW - 39 * D), outcome("2026-10", 100, 50, ts=NOW - 40 * D)],
            100.0, id="repeated period: older arrives last",
        ),
        pytest.param(
            [*SIX_PLUS_ONE, outcome("2026-10", 400, 400, ts=NOW - 30 * D)],
            # (0.10 + 0.10 + 0 + 0.20 + 0.30 + 0) / 6 = 0.1166...
            100 - 70 / 6, id="repeated period among seven",
        ),
    ],
)  # fmt: skip
def test_fulfilment(updates, expected):
    result = fulfilment(updates)
    assert result == (None if expected is None else pytest.approx(expected))


def test_fulfilment_periods_are_configurable():
    # the last two: (0.30 + 0.05) / 2 = 0.175
    assert fulfilment(SIX_PLUS_ONE, RollupConfig(fulfilment_periods=2)) == pytest.approx(82.5)


def test_fulfilment_does_not_age():
    state = state_with(SIX_PLUS_ONE)
    assert state.components(NOW + 400 * D, CFG)["fulfilment"] == pytest.approx(87.5)


# --- a team computed by hand, through TeamRollup.apply ------------------------------


HAND_TEAM = [
    # actions: 3 of 5 due in (NOW - 30 d, NOW] are done on time -> 60
    action("O1", "demo", NOW - 10 * D, NOW - 11 * D),  # on time
    action("O2", "demo", NOW - 5 * D, NOW - 4 * D),  # late
    action("O3", "call", NOW - 3 * D),  # not done
    action("O4", "proposal", NOW - D, NOW - D),  # done at due: on time
    action("O5", "demo", NOW - 31 * D, NOW - 32 * D),  # out of the window
    action("O6", "demo", NOW + 2 * D, NOW - D),  # not yet due
    action("O7", "call", NOW - 20 * D, NOW - 20 * D - H),  # on time
    # customers: (100 + 50 + 0 + 100) / 4 = 62.5; C5 inactive
    customer("C1", 26, NOW - D),
    customer("C2", 13, NOW - 2 * D),
    customer("C3", -5, NOW - 3 * D),
    customer("C4", 39, NOW - 4 * D),
    customer("C5", 20, NOW - 31 * D),
    # fulfilment: 100 - 12.5 = 87.5
    *SIX_PLUS_ONE,
]
# score: 0.4 * 60 + 0.35 * 62.5 + 0.25 * 87.5 = 24 + 21.875 + 21.875 = 67.75 -> red
HAND_SCORE = (
    67.75,
    "red",
    {"action_completion": 60.0, "signal_strength": 62.5, "fulfilment": 87.5},
    list(COMPONENTS),
)


def test_hand_computed_team_through_apply():
    rollup = new_rollup()
    published = []
    for update in HAND_TEAM:
        published += rollup.apply("T1", update)
    published += rollup.tick(NOW)
    records = of(published, "team-credibility", "T1")
    assert brief_team(records[-1]) == HAND_SCORE
    assert records[-1]["region"] == "east"
    assert rollup.store.load("T1").record(NOW, CFG)["score"] == 67.75


def test_hand_computed_team_in_any_update_order():
    rollup = new_rollup()
    for update in HAND_TEAM[::-1]:
        rollup.apply("T1", update)
    rollup.tick(NOW)
    assert brief_team(rollup.store.load("T1").record(NOW, CFG)) == HAND_SCORE


def test_teams_are_scored_separately():
    rollup = new_rollup()
    for update in HAND_TEAM:
        rollup.apply("T1", update)
    out = rollup.apply("T2", outcome("2026-10", 100, 90, team_id="T2"))
    assert [brief_team(r) for r in of(out, "team-credibility", "T2")] == [
        (90.0, "green", {"action_completion": None, "signal_strength": None, "fulfilment": 90.0},
         ["fulfilment"])
    ]  # fmt: skip
    assert rollup.store.load("T1").record(NOW, CFG)["score"] == 67.75


# --- publication --------------------------------------------------------------------


NO = None
PUBLICATION_STEPS = [
    # (update, score this update publishes, or NO); every report speaks for NOW or earlier
    (action("O1", "demo", NOW - 2 * D, NOW - 3 * D, ts=NOW), 100.0),
    (action("O1", "demo", NOW - 2 * D, NOW - 3 * D, ts=NOW), NO),  # the same report again
    # strength 100: (40 + 35) / 0.75 = 100, same score, but a new component: published
    (customer("C1", 26, NOW - 2 * D), 100.0),
    (customer("C2", 30, NOW - 2 * D), NO),  # 30 points clamp to 100: nothing changes
    # C2 down to 13: strength (100 + 50) / 2 = 75 -> (40 + 0.35 * 75) / 0.75 = 88.33
    (customer("C2", 13, NOW - 2 * D, as_of=NOW - D), 88.33),
    (outcome("2026-10", 100, 100), 91.25),  # 0.4 * 100 + 0.35 * 75 + 0.25 * 100
    (outcome("2026-10", 100, 100), NO),  # the same period again
    (customer("C3", 13, None), NO),  # never active: not counted
    (customer_left("C9"), NO),  # an unknown customer left
    (action("O2", "demo", NOW + 5 * D, ts=NOW), NO),  # not yet due
]


def test_team_credibility_is_published_only_on_change():
    rollup = new_rollup()
    got = []
    for update, _ in PUBLICATION_STEPS:
        records = of(rollup.apply("T1", update), "team-credibility")
        assert len(records) <= 1
        got.append(records[0]["score"] if records else NO)
    assert got == [score for _, score in PUBLICATION_STEPS]
    assert of(rollup.tick(NOW), "team-credibility") == []  # the clock alone changes nothing


@pytest.mark.parametrize(
    ["later", "published"],
    [
        pytest.param(NOW + H, False, id="an hour later: nothing changed"),
        pytest.param(NOW + 2 * D - 1, False, id="just before the action ages out"),
        # O1 due NOW - 28 d leaves the window at NOW + 2 d; O2 (not done) remains -> 0
        pytest.param(NOW + 2 * D, True, id="the on-time action ages out"),
    ],
)
def test_a_tick_publishes_only_when_time_changed_the_score(later, published):
    rollup = new_rollup()
    rollup.apply("T1", action("O1", "demo", NOW - 28 * D, NOW - 29 * D))
    rollup.apply("T1", action("O2", "demo", NOW - D))
    rollup.tick(NOW)
    records = of(rollup.tick(later), "team-credibility")
    assert [r["components"]["action_completion"] for r in records] == ([0.0] if published else [])


def test_a_region_change_republishes():
    rollup = new_rollup()
    assert of(rollup.apply("T1", customer("C1", 13, NOW - D, region="east")), "team-credibility")
    records = of(rollup.apply("T1", customer("C1", 13, NOW - D, region="west")), "team-credibility")
    assert [(r["score"], r["region"]) for r in records] == [(50.0, "west")]


# --- a customer moving teams --------------------------------------------------------


def test_customer_moving_teams():
    rollup = new_rollup()
    rollup.apply("T1", action("O1", "demo", NOW - D, NOW - 2 * D, ts=NOW))  # T1 keeps a component
    rollup.apply("T1", customer("C1", 13, NOW - D))
    rollup.apply("T1", customer("C2", 26, NOW - D))
    assert rollup.store.load("T1").components(NOW, CFG)["signal_strength"] == 75.0
    # the ledger tells the old team first, then the new one
    left = rollup.apply("T1", customer_left("C2"))
    joined = rollup.apply("T2", customer("C2", 26, NOW - D))
    # T1: strength 50 -> (40 + 17.5) / 0.75 = 76.67; T2: strength 100 only
    assert [(r["score"], r["components"]["signal_strength"]) for r in of(left, "team-credibility")] == [
        (76.67, 50.0)
    ]
    assert [(r["team_id"], r["score"]) for r in of(joined, "team-credibility")] == [("T2", 100.0)]


# --- deviations from SPEC -----------------------------------------------------------


def test_newer_activity_without_a_delta_keeps_the_customer_active():
    rollup = new_rollup()
    rollup.apply("T1", outcome("2026-10", 100, 90))
    # a delta at NOW - D: the ledger's as_of is NOW - D
    rollup.apply("T1", customer("C1", 13, NOW - D, as_of=NOW - D))
    # a later behaviour event without a delta: activity moves, as_of does not
    out = rollup.apply("T1", customer("C1", 13, NOW - D + 2 * H, as_of=NOW - D))
    # nothing changed: C1 is still active with 13 points (strength 50)
    assert of(out, "team-credibility") == []
    assert rollup.store.load("T1").components(rollup.store.load("T1").clock, CFG)[
        "signal_strength"
    ] == 50.0


def test_actions_with_a_slash_do_not_collide():
    updates = [
        action("O/1", "demo", NOW - D, NOW - 2 * D),  # done on time
        action("O", "1/demo", NOW - D),  # another action, not done
    ]
    assert completion(updates) == 50.0


def test_a_team_that_lost_all_data_does_not_keep_its_old_score():
    rollup = new_rollup()
    first = of(rollup.apply("T1", customer("C1", 26, NOW - D)), "team-credibility")
    assert [r["score"] for r in first] == [100.0]
    # 30 days after the last activity C1 is inactive: the team has no data any more
    later = [o for o in rollup.tick(NOW + 30 * D) if o.topic == "team-credibility"]
    assert later, "expected a record (score None) or a tombstone superseding score 100"
    assert later[-1].value is None or later[-1].value["score"] is None


def test_last_six_periods_are_the_newest_not_the_largest_strings():
    updates = [
        outcome("2026-9", 100, 0),  # the oldest of seven: must be ignored
        *(outcome(p, 100, 100) for p in ("2026-10", "2026-11", "2026-12", "2027-01", "2027-02",
                                         "2027-03")),
    ]  # fmt: skip
    assert fulfilment(updates) == 100.0


class _PieceRecordingStore(DictTeamStore):
    """Remembers which pieces each save was asked to write, as the table store does."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[set[tuple[str, str]]] = []

    def save(self, state: TeamState) -> None:
        self.written.append(set(state.dirty))
        state.dirty.clear()
        super().save(state)


def test_a_clock_moved_by_an_update_is_written_with_the_team_header():
    store = _PieceRecordingStore()
    rollup = TeamRollup(RollupConfig(), store)
    seen = {"kind": "customer", "customer_id": "C1", "region": "east", "net_points": 0}
    rollup.apply("T1", {**seen, "activity_ts": 1_000, "as_of": 1_000})
    # newer activity, same score: nothing is published, but the clock moves on
    assert rollup.apply("T1", {**seen, "activity_ts": 2_000, "as_of": 2_000}) == []
    assert store.load("T1").clock == 2_000
    assert ("h", "") in store.written[-1]  # the new clock reaches the table



# --- the trace's forgetting ---------------------------------------------------


@given(st.lists(st.tuples(st.integers(0, 90), st.sampled_from((0, H, D, 10 * D)), st.booleans()), max_size=60))
@settings(max_examples=150, deadline=None)
def test_the_trace_keeps_the_deltas_a_scan_would(steps: list[tuple[int, int, bool]]) -> None:
    """Deltas arrive out of time order, the clock moves on, some steps are rolled back:
    the trace holds what a scan of every delta at each hourly forgetting would keep."""
    state, model, forgot_at, clock = TeamState("T1"), {}, 0, NOW
    for number, (days_ago, step, undone) in enumerate(steps):
        before = (dict(model), forgot_at)
        state.undo = UndoLog()
        ts = clock - days_ago * D + number
        state.apply({"kind": "delta", "delta_id": f"d{number}", "ts": format_ts(ts)}, CFG)
        model[f"d{number}"] = ts
        clock += step
        state.forget_before(clock, CFG)
        if clock - forgot_at >= FORGET_EVERY_MS:
            model, forgot_at = {d: t for d, t in model.items() if t >= clock - CFG.trace_keep_ms}, clock
        if undone:
            state.rollback()
            model, forgot_at = before
        state.undo = None
        assert {d: t["ts_ms"] for d, t in state.trace.items()} == model
