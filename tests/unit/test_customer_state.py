"""One customer's state (``scoring.customer``): de-duplication, lateness, ownership,
serialisation."""

from __future__ import annotations

import msgspec
import pytest

from scoring.config import DAY_MS, HOUR_MS
from scoring.customer import CustomerState, Outcome
from scoring.deltas import Owner
from tests.unit.fixtures import (
    CUSTOMER,
    Tick,
    at,
    communication,
    decoded,
    directory,
    event,
    feed,
    login,
    progress,
    quote_open,
    rules,
    rules_with,
    rush,
    summary,
)

A, DUP, LATE = Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.LATE
D, H = DAY_MS, HOUR_MS


def ev(topic, eid, off):
    return event(topic, event_id=eid, ts=at(ms=off))


@pytest.mark.parametrize(
    ["rows", "expected"],
    [
        pytest.param([], [], id="empty"),
        pytest.param([("role-login", "e1", 0)], [A], id="one"),
        pytest.param([("role-login", "e1", 0), ("role-login", "e2", 0)], [A, A], id="distinct ids"),
        pytest.param(
            [("role-login", "e1", 0), ("role-login", "e1", 0)], [A, DUP], id="same topic and id"
        ),
        pytest.param(
            [("role-login", "e1", 0), ("role-login", "e1", H)],
            [A, DUP],
            id="same id with another ts",
        ),
        pytest.param(
            [("role-login", "e1", 0), ("document-open", "e1", 0), ("rush-delivery", "e1", 0),
             ("stale-update", "e1", 0)],
            [A, A, A, A],
            id="same id on other topics",
        ),  # fmt: skip
        pytest.param(
            [("role-login", "e1", 0), ("role-login", "e1", 0), ("role-login", "e1", 0)],
            [A, DUP, DUP],
            id="every repeat",
        ),
        pytest.param(
            [("role-login", "e1", 8 * D), ("role-login", "e2", 0)], [A, LATE], id="8 days behind"
        ),
        pytest.param(
            [("role-login", "e1", 7 * D), ("role-login", "e2", 0)],
            [A, A],
            id="7 days behind exactly",
        ),
        pytest.param(
            [("role-login", "e1", 7 * D + 1), ("role-login", "e2", 0)],
            [A, LATE],
            id="7 days + 1 ms behind",
        ),
        pytest.param(
            [("role-login", "e1", 0), ("role-login", "e2", 7 * D), ("role-login", "e1", 0)],
            [A, A, DUP],
            id="de-duplication holds for 7 days",
        ),
        pytest.param(
            [("role-login", "e1", 0), ("role-login", "e2", 7 * D + 1), ("role-login", "e1", 0)],
            [A, A, LATE],
            id="beyond 7 days a repeat is late",
        ),
        pytest.param(
            [("role-login", "e1", 3 * D), ("role-login", "e2", 0), ("role-login", "e2", 0)],
            [A, A, DUP],
            id="an out-of-order event is remembered too",
        ),
        pytest.param(
            [("role-login", "e1", 8 * D), ("role-login", "e2", 0), ("role-login", "e2", 0)],
            [A, LATE, LATE],
            id="a late event is not remembered",
        ),
    ],
)
def test_dedup_and_lateness(rows, expected, state, cfg):
    outcomes = [state.apply(ev(t, eid, off), cfg).outcome for t, eid, off in rows]
    assert outcomes == expected


def test_memory_trails_the_newest_event(state, cfg):
    for i in range(10):
        state.apply(ev("role-login", f"e{i}", i * D), cfg)
    again = [state.apply(ev("role-login", f"e{i}", i * D), cfg).outcome for i in range(10)]
    assert again == [LATE, LATE] + [DUP] * 8


def test_duplicates_and_late_events_fire_nothing(state, cfg):
    opens = [quote_open(at(hours=i), event_id=f"q{i}") for i in range(3)]
    assert len(feed(state, opens[:2], cfg)) == 0
    assert feed(state, [opens[1]], cfg) == []  # a repeat does not count as a third open
    assert [d.signal for _, d in feed(state, [opens[2], opens[2]], cfg)] == ["high_intent"]
    state.apply(quote_open(at(days=30), dwell=0), cfg)
    assert feed(state, [quote_open(at(hours=i)) for i in range(3)], cfg) == []  # all late


def test_directory_records_are_never_duplicates(state, cfg):
    rec = directory("T1", "east", "R1", event_id="d1", ts=at(days=30))
    assert [state.apply(rec, cfg).outcome for _ in range(3)] == [A, A, A]
    # nor do they move the lateness horizon
    assert state.apply(ev("role-login", "d1", 0), cfg).outcome is A


@pytest.mark.parametrize(
    ["directory_record", "event_owner", "expected"],
    [
        pytest.param(None, {}, Owner(None, None, None), id="unknown owner"),
        pytest.param(("T1", "east", "R1"), {}, Owner("T1", "east", "R1"), id="from the directory"),
        pytest.param(
            ("T1", "east", "R1"),
            {"team_id": "T9"},
            Owner("T9", "east", "R1"),
            id="the event's own fields win",
        ),
        pytest.param(
            None, {"team_id": "T9", "region": "west", "rep_id": "R9"}, Owner("T9", "west", "R9"),
            id="from the event alone",
        ),  # fmt: skip
    ],
)
def test_delta_owner(directory_record, event_owner, expected, state, cfg):
    if directory_record:
        state.apply(directory(*directory_record), cfg)
    (_, delta), = feed(state, [rush(at(), "K-1", **event_owner)], cfg)  # fmt: skip
    assert delta.owner == expected


def test_latest_directory_record_wins_and_tombstone_clears(state, cfg):
    state.apply(directory("T1", "east", "R1"), cfg)
    state.apply(directory("T2", "west", "R2"), cfg)
    assert state.owner == Owner("T2", "west", "R2")
    state.clear_owner()
    assert state.owner == Owner()


def test_timer_fired_risk_takes_the_directory_owner(state, cfg):
    steps = [
        directory("T1", "east", "R1"),
        progress(at(), team_id="T9"),
        communication(at(hours=1)),
        Tick(at(hours=49)),
    ]
    ((_, delta),) = feed(state, steps, cfg)
    assert delta.owner == Owner("T1", "east", "R1")
    assert delta.rule_version == cfg.rule("risk").version


def test_apply_refuses_other_topics(state, cfg):
    with pytest.raises(ValueError):
        state.apply(event("sales-action"), cfg)


# --- serialisation ---------------------------------------------------------------


def busy_steps():
    """Events that leave something in every part of the state."""
    return [
        directory("T1", "east", "R1"),
        quote_open(at(hours=0), ip="10.0.0.1"),
        quote_open(at(hours=1)),
        login(at(hours=2), "procurement"),
        login(at(hours=3), "legal"),
        rush(at(hours=4), "K-1"),
        rush(at(hours=5), "K-2"),
        progress(at(hours=6), "O1"),
        communication(at(hours=7), "reconsider", "O1"),
        progress(at(hours=8), "O2"),
        communication(at(hours=9), "positive", "O2"),
        Tick(at(hours=100)),
        quote_open(at(hours=101)),
        login(at(hours=102), "technical"),
        progress(at(hours=103), "O1"),
    ]


def test_round_trip_of_an_empty_state():
    state = CustomerState(CUSTOMER)
    assert CustomerState.from_bytes(state.to_bytes()) == state


def test_round_trip_of_a_busy_state(state, cfg):
    feed(state, busy_steps(), cfg)
    restored = decoded(state.to_bytes(), cfg)
    assert restored == state
    assert restored.to_bytes() == state.to_bytes()
    assert [list(ids.times) for ids in restored.seen.values()] == [
        list(ids.times) for ids in state.seen.values()
    ]  # arrival order survives


def test_serialising_between_every_step_changes_no_delta(cfg):
    steps = busy_steps()
    plain = CustomerState(CUSTOMER)
    expected = feed(plain, steps, cfg)
    assert {d.signal for _, d in expected} == {"high_intent", "decision_chain", "urgency", "risk"}

    restored = CustomerState(CUSTOMER)
    got = []
    for i, step in enumerate(steps):
        restored = CustomerState.from_bytes(restored.to_bytes())
        got += [(i, d) for _, d in feed(restored, [step], cfg)]
    assert [(i, summary(d), d.owner) for i, d in got] == [
        (i, summary(d), d.owner) for i, d in expected
    ]
    restored.bind(cfg)
    assert restored == plain


def test_state_is_compact(state, cfg):
    feed(state, busy_steps(), cfg)
    doc = msgspec.msgpack.decode(state.to_bytes())
    assert set(doc) == {"v", "c", "o", "eo", "l", "m", "s", "r"}
    assert doc["c"] == CUSTOMER and doc["r"]["urgency"] == [cfg.rule("urgency").shape, ["K-1", "K-2"]]


def test_rule_version_is_per_rule_stable_and_tracks_the_definition():
    versions = {r.rule_id: r.version for r in rules().rules}
    assert len(set(versions.values())) == 4
    assert {r.rule_id: r.version for r in rules_with().rules} == versions
    changed = rules_with(urgency={"points": 7}, risk={"after": "49h"}, high_intent={"within": "168h"})
    assert {r.rule_id: r.version != versions[r.rule_id] for r in changed.rules} == {
        "high_intent": False, "decision_chain": False, "urgency": True, "risk": True,
    }  # "168h" is "7d": the same definition
    # the shape ignores the points only
    assert changed.rule("urgency").shape == rules().rule("urgency").shape
    assert changed.rule("risk").shape != rules().rule("risk").shape
