"""States stored before the catalogue (format 2, written by the four fixed rules)
load, and carry on under the default rule ids. The fixture was encoded by that code:
a customer with two long quote opens, two of the three roles, contract K-1 fired, and
three watched opportunities (O1 and O2 fired, O3 armed, due 48 h after its progress update at hour 10)."""

from __future__ import annotations

from pathlib import Path

import orjson

from scoring.customer import CustomerState
from scoring.legacy_state import DEFAULT_SHAPES
from tests.unit.fixtures import Tick, at, decoded, feed, login, quote_open, rules, rules_with, rush

V2 = (Path(__file__).parent / "data" / "customer_state_v2.json").read_bytes()
H = 3_600_000


def test_the_default_shapes_are_the_default_catalogues() -> None:
    assert {r.rule_id: r.shape for r in rules().rules} == DEFAULT_SHAPES


def test_a_format_2_state_loads_under_the_default_ids() -> None:
    state = decoded(V2, rules())
    assert orjson.loads(V2)["v"] == 2
    assert [e.event_id for e in state.rules["high_intent"].events] == ["q1", "q2"]
    assert {v: e.event_id for v, e in state.rules["decision_chain"].latest.items()} == {"procurement": "l1", "technical": "l2"}
    assert state.rules["urgency"].fired == {"K-1"}
    watches = state.rules["risk"].watches
    assert {k: (w.clock.event_id, w.latest.event_id, w.holds, w.fired_on) for k, w in watches.items()} == {  # type: ignore[union-attr]
        "O1": ("p1", "r1", True, "p1"), "O2": ("p2", "r2", True, "p2"), "O3": ("p3", "r3", True, None),
    }
    assert state.owner.team_id == "T1" and len(state.ledger.entries) == 3
    assert CustomerState.from_bytes(state.to_bytes()).stored.keys() == DEFAULT_SHAPES.keys()  # written as format 4


def test_a_format_2_state_carries_on_where_it_stopped() -> None:
    cat = rules()
    state = decoded(V2, cat)
    assert list(state.due_times(cat)) == [at(hours=10 + 48) + 1]  # p3 at hour 10
    steps = [
        quote_open(at(hours=20), event_id="q3"),  # the third of the streak
        login(at(hours=21), "legal", event_id="l3"),  # the third role
        rush(at(hours=22), "K-1", event_id="u2"),  # fired already
        Tick(at(hours=60)),  # O3 is due
    ]
    fired = [(d.signal, [e.event_id for e in d.evidence], d.opportunity_id) for _, d in feed(state, steps, cat)]
    assert fired == [
        ("high_intent", ["q1", "q2", "q3"], None),
        ("decision_chain", ["l1", "l2", "l3"], None),
        ("risk", ["p3", "r3"], "O3"),
    ]


def test_a_format_2_state_under_a_changed_catalogue() -> None:
    cat = rules_with(high_intent={"points": 20}, decision_chain={"within": "15d"})
    state = decoded(V2, cat)
    assert len(state.rules["high_intent"].events) == 2  # points only: kept
    assert state.rules["decision_chain"].latest == {}  # a changed definition starts afresh
    fired = feed(state, [quote_open(at(hours=20)), login(at(hours=21), "legal")], cat)
    assert [(d.signal, d.points) for _, d in fired] == [("high_intent", 20)]
