"""``risk`` (-5): more than 48 h since the last progress update while the latest
communication outcome is ``reconsider``; once per staleness episode."""

from __future__ import annotations

import pytest

from scoring.config import HOUR_MS
from scoring.customer import CustomerState
from scoring.events import Event
from scoring.patterns.silence import Watch
from tests.unit.fixtures import (
    CUSTOMER,
    OMIT,
    RuleRun,
    Tick,
    at,
    communication,
    evidence_ids,
    feed,
    progress,
    rules_with,
)

H = HOUR_MS
STALE = 48 * H


def P(eid, off, opp="O1"):
    return progress(at(ms=off), opp, event_id=eid)


def C(eid, off, outcome="reconsider", opp="O1"):
    return communication(at(ms=off), outcome, opp, event_id=eid)


def tick(off):
    return Tick(at(ms=off))


@pytest.mark.parametrize(
    ["steps", "expected"],
    [
        pytest.param([], [], id="empty"),
        pytest.param([tick(100 * H)], [], id="a tick without state"),
        pytest.param([C("r", 0), tick(100 * H)], [], id="no progress ever"),
        pytest.param([P("p", 0), tick(100 * H)], [], id="no communication"),
        pytest.param([P("p", 0), C("r", H), tick(STALE)], [], id="48 h exactly is not stale"),
        pytest.param(
            [P("p", 0), C("r", H), tick(STALE + 1)], [(2, STALE, ("p", "r"))], id="48 h + 1 ms"
        ),
        pytest.param(
            [P("p", 0), C("r", H), tick(STALE + 1), tick(STALE + 2), tick(500 * H)],
            [(2, STALE, ("p", "r"))],
            id="once per staleness episode",
        ),
        pytest.param(
            [C("r", 0), P("p", H), tick(H + STALE + 1)],
            [(2, H + STALE, ("p", "r"))],
            id="reconsider before the progress update",
        ),
        pytest.param(
            [P("p", 0), C("r", 50 * H)],
            [(1, 50 * H, ("p", "r"))],
            id="reconsider after 48 h fires at once, at its own time",
        ),
        pytest.param(
            [P("p", 0), C("r", STALE), tick(STALE + 1)],
            [(2, STALE, ("p", "r"))],
            id="reconsider exactly at 48 h",
        ),
        pytest.param(
            [P("p", 0), C("r", STALE + 1)],
            [(1, STALE + 1, ("p", "r"))],
            id="reconsider at 48 h + 1 ms",
        ),
        pytest.param(
            [P("p", 0), C("r", H), C("ok", 2 * H, "positive"), tick(100 * H)],
            [],
            id="a later positive outcome clears it",
        ),
        pytest.param(
            [P("p", 0), C("r", H), C("nr", 2 * H, "no_reply"), tick(100 * H)],
            [],
            id="a later no_reply outcome clears it",
        ),
        pytest.param(
            [P("p", 0), C("r", H), C("x", 2 * H, OMIT), tick(100 * H)],
            [],
            id="a communication without outcome clears it",
        ),
        pytest.param(
            [P("p", 0), C("ok", H, "positive"), C("r", 2 * H), tick(STALE + 1)],
            [(3, STALE, ("p", "r"))],
            id="the latest communication counts",
        ),
        pytest.param(
            [P("p", 0), C("r", 2 * H), C("ok", H, "positive"), tick(STALE + 1)],
            [(3, STALE, ("p", "r"))],
            id="an older communication arriving late is ignored",
        ),
        pytest.param(
            [P("p", 0), C("r", H, "ReConsider"), tick(STALE + 1)],
            [(2, STALE, ("p", "r"))],
            id="outcome is case-insensitive",
        ),
        pytest.param(
            [P("p", 0), C("r", H), P("p2", 47 * H), tick(STALE + 1), tick(95 * H)],
            [],
            id="a progress update within 48 h restarts the clock",
        ),
        pytest.param(
            [P("p", 0), C("r", H), P("p2", 47 * H), tick(95 * H + 1)],
            [(3, 95 * H, ("p2", "r"))],
            id="then it fires 48 h after that update",
        ),
        pytest.param(
            [P("p", 10 * H), P("old", 0), C("r", 11 * H), tick(STALE + 1), tick(58 * H + 1)],
            [(4, 58 * H, ("p", "r"))],
            id="an older progress update arriving late is ignored",
        ),
        pytest.param(
            [P("p", 0), C("r", H), tick(STALE + 1), P("p2", 50 * H), tick(98 * H)],
            [(2, STALE, ("p", "r"))],
            id="the next progress update re-arms: not before 48 h",
        ),
        pytest.param(
            [P("p", 0), C("r", H), tick(STALE + 1), P("p2", 50 * H), tick(98 * H + 1)],
            [(2, STALE, ("p", "r")), (4, 98 * H, ("p2", "r"))],
            id="the next progress update re-arms: fires 48 h later",
        ),
        pytest.param(
            [P("p", 0), C("r", H), tick(STALE + 1), C("r2", 60 * H), tick(200 * H)],
            [(2, STALE, ("p", "r"))],
            id="a new reconsider without progress is the same episode",
        ),
        pytest.param(
            [P("p", 0), C("r", H), P("p2", 60 * H)],
            [(2, STALE, ("p", "r"))],
            id="a progress update after 48 h first fires the overdue risk",
        ),
        pytest.param(
            [P("p", 0), C("r", H), P("p2", 60 * H), tick(108 * H + 1)],
            [(2, STALE, ("p", "r")), (3, 108 * H, ("p2", "r"))],
            id="...and then re-arms",
        ),
        pytest.param(
            [P("p", 0), C("r", H), C("ok", 60 * H, "positive")],
            [(2, STALE, ("p", "r"))],
            id="a clearing communication after 48 h first fires the overdue risk",
        ),
        pytest.param(
            [P("p", 0, "O1"), C("r", H, opp="O2"), tick(100 * H)],
            [],
            id="opportunities are separate",
        ),
        pytest.param(
            [P("a", 0, "O1"), P("b", H, "O2"), C("ra", 2 * H, opp="O1"), C("rb", 2 * H, opp="O2"),
             tick(49 * H + 1)],
            [(4, STALE, ("a", "ra")), (4, 49 * H, ("b", "rb"))],
            id="two opportunities fire on one tick",
        ),  # fmt: skip
    ],
)
def test_risk(steps, expected, state, cfg):
    fired = feed(state, steps, cfg)
    assert [(i, d.ts - at(), evidence_ids(d)) for i, d in fired] == expected
    for _, delta in fired:
        assert (delta.signal, delta.points, delta.customer_id) == ("risk", -5, CUSTOMER)
        assert [e.topic for e in delta.evidence] == ["stale-update"] * 2
        by_id = {s.event_id: s for s in steps if not isinstance(s, Tick)}
        assert delta.opportunity_id == by_id[delta.evidence[0].event_id].get("opportunity_id")


@pytest.mark.parametrize(
    ["steps", "due", "trigger"],
    [
        ([], None, None),
        ([P("p", 0)], None, None),
        ([C("r", 0)], None, None),
        ([P("p", 0), C("ok", H, "positive")], None, None),
        ([P("p", 0), C("r", H)], STALE + 1, STALE),
        ([P("p", 0), C("r", STALE)], STALE + 1, STALE),
        ([P("p", 0), C("r", 60 * H)], 60 * H, 60 * H),
    ],
)
def test_watch_due_and_trigger(steps, due, trigger, cfg):
    risk = cfg.rule("risk")
    state = risk.new_state()
    state.watches["O1"] = watch = watch_of(steps)

    def shift(v: int | None) -> int | None:
        return None if v is None else v - at()

    assert shift(risk.due_at(watch)) == due
    assert shift(risk.trigger_ts(watch)) == trigger
    if due is not None:
        assert risk.fire_due(state, at(ms=due - 1)) == []
        assert len(risk.fire_due(state, at(ms=due))) == 1
        assert risk.due_at(watch) is None  # fired: disarmed until the next progress update


def watch_of(steps: list[Event]) -> Watch:
    """A watch holding ``steps`` without having judged them (as if it never fired)."""
    watch = Watch()
    for ev in steps:
        if ev.get("kind") == "progress":
            watch.clock = ev.evidence
        else:
            watch.latest, watch.holds = ev.evidence, ev.get("outcome") == "reconsider"
    return watch


def test_risk_due_times_lists_armed_opportunities(state, cfg):
    feed(state, [P("a", 0, "O1"), C("ra", H, opp="O1"), P("b", 0, "O2")], cfg)
    assert list(state.due_times(cfg)) == [at(ms=STALE + 1)]


@pytest.mark.parametrize(
    ["overrides", "tick_at", "fires"],
    [
        ({"after": "24h"}, 24 * H + 1, True),
        ({"after": "24h"}, 24 * H, False),
        ({"after": "1d"}, 24 * H + 1, True),
        ({"points": -9}, STALE + 1, True),
        ({"while": {"kind": "communication", "outcome": "no_reply"}}, STALE + 1, False),
        ({"while": {"kind": "communication", "outcome": {"in": ["no_reply", "reconsider"]}}}, STALE + 1, True),
    ],
)
def test_risk_is_configurable(overrides, tick_at, fires):
    cfg = rules_with(risk=overrides)
    fired = feed(CustomerState(CUSTOMER), [P("p", 0), C("r", H), tick(tick_at)], cfg)
    assert len(fired) == int(fires)
    if fires:
        assert fired[0][1].points == overrides.get("points", -5)


@pytest.mark.parametrize(
    "steps",
    [
        [],
        [P("p", 0)],
        [P("p", 0), C("r", H)],
        [P("p", 0), C("r", H), C("ok", 2 * H, "positive")],
    ],
)
def test_risk_json_round_trip(steps, cfg):
    rule = RuleRun(cfg, "risk")
    for ev in steps:
        rule(ev)
    assert rule.round_trips()
    rule.rule.fire_due(rule.state, at(ms=500 * H))
    assert rule.round_trips()


def test_configured_outcome_compares_case_insensitively():
    cfg = rules_with(risk={"while": {"kind": "Communication", "outcome": "Reconsider"}})
    fired = feed(CustomerState(CUSTOMER), [P("p", 0), C("r", H), tick(STALE + 1)], cfg)
    assert len(fired) == 1
