"""``urgency`` (+6): a rush-delivery note naming a contract, once per (customer, contract)."""

from __future__ import annotations

import pytest

from scoring.customer import CustomerState
from tests.unit.fixtures import OMIT, RuleRun, at, feed, rules_with, rush


@pytest.mark.parametrize(
    ["contracts", "expected"],
    [
        pytest.param([], [], id="empty"),
        pytest.param(["K-1"], [0], id="one contract"),
        pytest.param(["K-1", "K-1"], [0], id="same contract twice"),
        pytest.param(["K-1", "K-2"], [0, 1], id="different contracts"),
        pytest.param(["K-1", "K-2", "K-1", "K-2", "K-3"], [0, 1, 4], id="each contract once"),
        pytest.param([OMIT], [], id="no contract field"),
        pytest.param([None], [], id="null contract"),
        pytest.param([""], [], id="empty contract"),
        pytest.param(["   "], [], id="whitespace contract"),
        pytest.param(["\t\n"], [], id="tab and newline"),
        pytest.param([None, "", " ", "K-1"], [3], id="no signal, then a contract"),
        pytest.param([" K-1 ", "K-1"], [0], id="surrounding blanks are ignored"),
        pytest.param(["k-1", "K-1"], [0, 1], id="contract ids are case-sensitive"),
        pytest.param(["K 1"], [], id="inner blank does not match the pattern"),
        pytest.param(["-K1"], [0], id="SPEC's pattern allows a leading punctuation mark"),
        pytest.param(["K-ä"], [], id="non-ASCII does not match"),
        pytest.param(["7"], [0], id="one character"),
        pytest.param(["A" * 128], [0], id="128 characters"),
        pytest.param(["ORD/2026:11#4.a_b-c"], [0], id="punctuation the pattern allows"),
    ],
)
def test_urgency(contracts, expected, cfg):
    events = [rush(at(hours=i), contract, event_id=f"r{i}") for i, contract in enumerate(contracts)]
    rule = RuleRun(cfg, "urgency")
    fired = [(i, f) for i, ev in enumerate(events) if (f := rule(ev))]
    assert [i for i, _ in fired] == expected
    for i, firing in fired:
        assert (firing.rule.rule_id, firing.rule.points, firing.ts) == ("urgency", 6, events[i].ts)
        assert firing.evidence == (events[i].evidence,)  # the rush note itself


def test_urgency_once_per_customer(cfg):
    one, other = CustomerState("C1"), CustomerState("C2")
    assert len(feed(one, [rush(at(), "K-1", customer_id="C1")], cfg)) == 1
    assert len(feed(other, [rush(at(), "K-1", customer_id="C2")], cfg)) == 1
    assert feed(one, [rush(at(days=30), "K-1", customer_id="C1")], cfg) == []


@pytest.mark.parametrize(
    ["pattern", "contract", "fires"],
    [
        (r"K-\d+", "K-12", True),
        (r"K-\d+", "K-12x", False),  # the whole id must match
        (r"K-\d+", "xK-12", False),
    ],
)
def test_urgency_pattern_is_configurable(pattern, contract, fires):
    rule = RuleRun(rules_with(urgency={"regex": pattern}), "urgency")
    assert (rule(rush(at(), contract)) is not None) == fires


def test_urgency_json_round_trip(cfg):
    rule = RuleRun(cfg, "urgency")
    assert rule.round_trips()
    for contract in ["K-2", "K-1"]:
        rule(rush(at(), contract))
    assert rule.rule.to_json(rule.state) == ["K-1", "K-2"]
    assert rule.round_trips()
