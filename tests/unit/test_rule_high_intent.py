"""``high_intent`` (+8): three consecutive long quote opens, first and third within 7 days."""

from __future__ import annotations

import pytest

from scoring.config import DAY_MS, HOUR_MS
from tests.unit.fixtures import CUSTOMER, RuleRun, at, feed, quote_open, rules_with

Q, OTHER = "quote", "contract"
H, D = HOUR_MS, DAY_MS


def opens(rows):
    """``(offset ms, dwell, document type)`` rows -> events with ids ``q0, q1, ...``."""
    return [
        quote_open(at(ms=off), dwell, document_type=doc, event_id=f"q{i}")
        for i, (off, dwell, doc) in enumerate(rows)
    ]


@pytest.mark.parametrize(
    ["rows", "expected"],
    [
        pytest.param([], [], id="empty"),
        pytest.param([(0, 300, Q)], [], id="one open"),
        pytest.param([(0, 300, Q), (H, 300, Q)], [], id="two opens"),
        pytest.param([(0, 300, Q), (H, 300, Q), (2 * H, 300, Q)], [(2, (0, 1, 2))], id="three"),
        pytest.param([(0, 121, Q), (0, 121, Q), (0, 121, Q)], [(2, (0, 1, 2))], id="same ms"),
        pytest.param(
            [(0, 120.001, Q), (H, 120.5, Q), (2 * H, 121, Q)], [(2, (0, 1, 2))], id="just over 120 s"
        ),
        pytest.param([(0, 300, Q), (H, 120, Q), (2 * H, 300, Q)], [], id="120 s exactly breaks"),
        pytest.param(
            [(0, 300, Q), (H, 300, Q), (2 * H, 120, Q), (3 * H, 300, Q), (4 * H, 300, Q)],
            [],
            id="a broken streak starts over",
        ),
        pytest.param(
            [(0, 300, Q), (H, 0, Q), (2 * H, 300, Q), (3 * H, 300, Q), (4 * H, 300, Q)],
            [(4, (2, 3, 4))],
            id="dwell 0 breaks, then 3 more fire",
        ),
        pytest.param(
            [(0, 300, Q), (H, 300, OTHER), (2 * H, 300, Q), (3 * H, 300, Q)],
            [(3, (0, 2, 3))],
            id="a long non-quote open neither counts nor breaks",
        ),
        pytest.param(
            [(0, 300, Q), (H, 5, OTHER), (2 * H, 300, Q), (3 * H, 300, Q)],
            [(3, (0, 2, 3))],
            id="a short non-quote open does not break",
        ),
        pytest.param(
            [(0, 300, OTHER), (H, 300, OTHER), (2 * H, 300, OTHER)], [], id="only other documents"
        ),
        pytest.param([(0, 300, Q), (3 * D, 300, Q), (7 * D, 300, Q)], [(2, (0, 1, 2))], id="7 days exactly"),
        pytest.param([(0, 300, Q), (3 * D, 300, Q), (7 * D + 1, 300, Q)], [], id="7 days + 1 ms"),
        pytest.param(
            [(0, 300, Q), (6 * D, 300, Q), (7 * D + 1, 300, Q), (7 * D + 2, 300, Q)],
            [(3, (1, 2, 3))],
            id="too wide, then the next long open fires",
        ),
        pytest.param(
            [(0, 300, Q), (D, 300, Q), (8 * D, 300, Q), (8 * D + H, 300, Q), (9 * D, 300, Q)],
            [(4, (2, 3, 4))],
            id="window slides past every stale open",
        ),
        pytest.param(
            [(i * H, 300, Q) for i in range(5)], [(2, (0, 1, 2))], id="reset after firing: 2 more"
        ),
        pytest.param(
            [(i * H, 300, Q) for i in range(6)],
            [(2, (0, 1, 2)), (5, (3, 4, 5))],
            id="reset after firing: 3 more fire again",
        ),
        pytest.param(
            [(0, 300, "Quote"), (H, 300, "QUOTE"), (2 * H, 300, "quote")],
            [(2, (0, 1, 2))],
            id="document type is case-insensitive",
        ),
    ],
)
def test_high_intent(rows, expected, cfg):
    events = opens(rows)
    rule = RuleRun(cfg, "high_intent")
    fired = [(i, f) for i, ev in enumerate(events) if (f := rule(ev))]
    assert [(i, tuple(int(e.event_id[1:]) for e in f.evidence)) for i, f in fired] == expected
    for i, firing in fired:
        assert (firing.rule.rule_id, firing.rule.points) == ("high_intent", 8)
        assert firing.ts == events[i].ts  # the open that completed the pattern
        assert firing.evidence == tuple(events[int(e.event_id[1:])].evidence for e in firing.evidence)


def test_high_intent_evidence_carries_ip_and_opportunity(cfg):
    events = [
        quote_open(at(hours=i), ip=f"10.0.0.{i}", opportunity_id=opp)
        for i, opp in enumerate(["O1", None, "O2"])
    ]
    rule = RuleRun(cfg, "high_intent")
    firing = [rule(ev) for ev in events][-1]
    assert firing is not None
    assert [e.ip for e in firing.evidence] == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    assert firing.opportunity_id == "O2"


def test_high_intent_through_customer_state(state, cfg):
    deltas = feed(state, [quote_open(at(hours=i)) for i in range(3)], cfg)
    assert [(i, d.signal, d.points, d.customer_id) for i, d in deltas] == [
        (2, "high_intent", 8, CUSTOMER)
    ]
    assert state.rules["high_intent"].events == []


@pytest.mark.parametrize(
    ["overrides", "dwells", "fires"],
    [
        ({"count": 2}, [300, 300], True),
        ({"match": {"document_type": "quote", "dwell_seconds": {"gt": 300}}}, [300, 301, 301], False),
        ({"match": {"document_type": "quote", "dwell_seconds": {"gt": 300}}}, [301, 301, 301], True),
        ({"match": {"document_type": "quote", "dwell_seconds": {"ge": 300}}}, [300, 300, 300], True),
        ({"points": 3}, [300, 300, 300], True),
    ],
)
def test_high_intent_is_configurable(overrides, dwells, fires):
    cfg = rules_with(high_intent=overrides)
    rule = RuleRun(cfg, "high_intent")
    firings = [rule(quote_open(at(hours=i), d)) for i, d in enumerate(dwells)]
    assert (firings[-1] is not None) == fires
    if fires:
        assert firings[-1].rule.points == overrides.get("points", 8)


def test_high_intent_json_round_trip(cfg):
    rule = RuleRun(cfg, "high_intent")
    assert rule.round_trips()
    for ev in [quote_open(at(hours=0), ip="1.2.3.4"), quote_open(at(hours=1))]:
        rule(ev)
    assert len(rule.state.events) == 2
    assert rule.round_trips()


def test_configured_document_type_compares_case_insensitively():
    cfg = rules_with(high_intent={"match": {"document_type": "Quote", "dwell_seconds": {"gt": 120}}, "scope": {"document_type": "QUOTE"}})
    rule = RuleRun(cfg, "high_intent")
    firings = [rule(quote_open(at(hours=i))) for i in range(3)]
    assert firings[-1] is not None
