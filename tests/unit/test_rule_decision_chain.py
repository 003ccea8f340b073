"""``decision_chain`` (+12): procurement, technical and legal logins within 14 days."""

from __future__ import annotations

import pytest

from scoring.config import DAY_MS, HOUR_MS
from tests.unit.fixtures import RuleRun, at, feed, login, rules_with

H, D = HOUR_MS, DAY_MS
P, T, L = "procurement", "technical", "legal"


def logins(rows):
    """``(offset ms, role)`` rows -> events with ids ``l0, l1, ...``."""
    return [login(at(ms=off), role, event_id=f"l{i}") for i, (off, role) in enumerate(rows)]


@pytest.mark.parametrize(
    ["rows", "expected"],
    [
        pytest.param([], [], id="empty"),
        pytest.param([(0, P)], [], id="one role"),
        pytest.param([(0, P), (H, T)], [], id="two roles"),
        pytest.param([(0, P), (H, T), (2 * H, L)], [(2, (0, 1, 2))], id="all three"),
        pytest.param([(0, L), (H, P), (2 * H, T)], [(2, (1, 2, 0))], id="any order"),
        pytest.param([(0, P), (0, T), (0, L)], [(2, (0, 1, 2))], id="same ms"),
        pytest.param(
            [(0, P), (D, P), (2 * D, T), (3 * D, L)], [(3, (1, 2, 3))], id="latest login per role"
        ),
        pytest.param(
            [(5 * D, P), (D, P), (6 * D, T), (7 * D, L)],
            [(3, (0, 2, 3))],
            id="an older login does not replace the latest",
        ),
        pytest.param([(0, P), (7 * D, T), (14 * D, L)], [(2, (0, 1, 2))], id="14 days exactly"),
        pytest.param([(0, P), (7 * D, T), (14 * D + 1, L)], [], id="14 days + 1 ms"),
        pytest.param(
            [(0, P), (7 * D, T), (14 * D + 1, L), (15 * D, P)],
            [(3, (3, 1, 2))],
            id="the expired role logs in again",
        ),
        pytest.param([(0, P), (20 * D, T), (40 * D, L)], [], id="each too far from the last"),
        pytest.param(
            [(0, P), (H, T), (2 * H, "finance"), (3 * H, "sales"), (4 * H, "admin")],
            [],
            id="other roles are ignored",
        ),
        pytest.param(
            [(0, P), (H, "finance"), (2 * H, T), (3 * H, L)],
            [(3, (0, 2, 3))],
            id="other roles do not interrupt",
        ),
        pytest.param(
            [(0, P), (H, T), (2 * H, L), (3 * H, P), (4 * H, T)],
            [(2, (0, 1, 2))],
            id="reset after firing",
        ),
        pytest.param(
            [(0, P), (H, T), (2 * H, L), (3 * H, P), (4 * H, T), (5 * H, L)],
            [(2, (0, 1, 2)), (5, (3, 4, 5))],
            id="reset after firing: fires again",
        ),
        pytest.param(
            [(0, "PROCUREMENT"), (H, "Technical"), (2 * H, "lEgAl")],
            [(2, (0, 1, 2))],
            id="roles are case-insensitive",
        ),
    ],
)
def test_decision_chain(rows, expected, cfg):
    events = logins(rows)
    rule = RuleRun(cfg, "decision_chain")
    fired = [(i, f) for i, ev in enumerate(events) if (f := rule(ev))]
    assert [(i, tuple(int(e.event_id[1:]) for e in f.evidence)) for i, f in fired] == expected
    for i, firing in fired:
        assert (firing.rule.rule_id, firing.rule.points, firing.ts) == ("decision_chain", 12, events[i].ts)
        assert firing.opportunity_id is None
        # evidence: the latest login of each role, in the configured role order
        assert [e.topic for e in firing.evidence] == ["role-login"] * 3
        by_id = {ev.event_id: ev for ev in events}
        assert [by_id[e.event_id].get("role") for e in firing.evidence] == [P, T, L]


def test_decision_chain_through_customer_state(state, cfg):
    deltas = feed(state, logins([(0, P), (H, T), (2 * H, L)]), cfg)
    assert [(i, d.signal, d.points) for i, d in deltas] == [(2, "decision_chain", 12)]
    assert state.rules["decision_chain"].latest == {}


@pytest.mark.parametrize(
    ["overrides", "rows", "fires"],
    [
        ({"values": [P, L]}, [(0, P), (H, L)], True),
        ({"within": "1d"}, [(0, P), (H, T), (D + 1, L)], False),
        ({"within": "1d"}, [(0, P), (H, T), (D, L)], True),
        ({"within": "24h"}, [(0, P), (H, T), (D, L)], True),
    ],
)
def test_decision_chain_is_configurable(overrides, rows, fires):
    rule = RuleRun(rules_with(decision_chain=overrides), "decision_chain")
    firings = [rule(ev) for ev in logins(rows)]
    assert (firings[-1] is not None) == fires


def test_decision_chain_json_round_trip(cfg):
    rule = RuleRun(cfg, "decision_chain")
    assert rule.round_trips()
    for ev in logins([(0, P), (H, T)]):
        rule(ev)
    assert list(rule.state.latest) == [P, T]
    assert rule.round_trips()


def test_configured_roles_compare_case_insensitively():
    rule = RuleRun(rules_with(decision_chain={"values": ["Procurement", "Technical", "LEGAL"]}), "decision_chain")
    firings = [rule(ev) for ev in logins([(0, P), (H, T), (2 * H, L)])]
    assert firings[-1] is not None
