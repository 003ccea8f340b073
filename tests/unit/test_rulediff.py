"""The dry run's comparison (``scoring.rulediff``): by hand-made outcomes, then end to
end over a small log scored under two rule sets."""

from __future__ import annotations

from typing import Any

import pytest

from scoring.catalog import ALERTS, CUSTOMER_SCORES, TEAM_CREDIBILITY
from scoring.replay import ReplayResult
from scoring.rollup.records import Output
from scoring.rulediff import Outcome, Scoring, delta_identity, diff, outcome_of
from scoring.signal_catalogue import build_signal_catalogue
from tests.unit.fixtures import catalog, default_rules_doc, record
from tests.unit.rulediff_fixtures import DRAFT, EXPECTED, NOW, rules, scenario, summarised


def delta(signal: str = "urgency", points: int = 6, ts: str = "2026-11-26T09:30:00.000Z",
          customer_id: str = "C1", rule_version: str = "v1-aaaa", delta_id: str = "d1") -> dict[str, Any]:
    return {"delta_id": delta_id, "customer_id": customer_id, "opportunity_id": None, "signal": signal,
            "points": points, "ts": ts, "team_id": "T1", "region": "east", "rep_id": "R1",
            "evidence": [{"event_id": "e1", "topic": "rush-delivery", "ts": ts, "ip": None}],
            "rule_version": rule_version}  # fmt: skip


def outcome(*deltas: dict[str, Any], net: dict[str, int] | None = None,
            alerts: dict[str, set[str]] | None = None, teams: dict[str, Any] | None = None) -> Outcome:
    return Outcome(
        {delta_identity(d): d for d in deltas}, net or {},
        {c: frozenset(ends) for c, ends in (alerts or {}).items()}, teams or {},
    )  # fmt: skip


def standing(score: float, band: str) -> dict[str, Any]:
    return {"score": score, "band": band}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(outcome(), outcome(), {}, id="empty"),
        pytest.param(
            outcome(delta(rule_version="v1-aaaa")), outcome(delta(rule_version="v1-bbbb")),
            {"signals": {"urgency": {"before": 1, "after": 1}}}, id="rule_version-is-not-a-change",
        ),
        pytest.param(
            outcome(delta(points=6)), outcome(delta(points=4)),
            {"signals": {"urgency": {"before": 1, "after": 1}},
             "deltas_added": [delta(points=4)], "deltas_removed": [delta(points=6)]},
            id="points-change-is-removed-and-added",
        ),
        pytest.param(
            outcome(delta()), outcome(delta(), delta("vip_intent", 10, delta_id="d2")),
            {"signals": {"urgency": {"before": 1, "after": 1}, "vip_intent": {"before": 0, "after": 1}},
             "deltas_added": [delta("vip_intent", 10, delta_id="d2")]},
            id="new-signal",
        ),
        pytest.param(
            outcome(delta("b", ts="2026-11-27T00:00:00.000Z", delta_id="d3"), delta("a", delta_id="d2"),
                    delta("a", customer_id="C0", delta_id="d4")),
            outcome(),
            {"signals": {"a": {"before": 2, "after": 0}, "b": {"before": 1, "after": 0}},
             "deltas_removed": [delta("a", customer_id="C0", delta_id="d4"), delta("a", delta_id="d2"),
                                delta("b", ts="2026-11-27T00:00:00.000Z", delta_id="d3")]},
            id="removed-in-time-then-customer-order",
        ),
        pytest.param(
            outcome(net={"C1": 8, "C2": 18, "C3": 5, "C4": 1}),
            outcome(net={"C1": 10, "C2": 16, "C3": 5, "C5": -3}),
            {"customers_changed": [
                {"customer_id": "C5", "before": 0, "after": -3},
                {"customer_id": "C1", "before": 8, "after": 10},
                {"customer_id": "C2", "before": 18, "after": 16},
                {"customer_id": "C4", "before": 1, "after": 0},
            ]},
            id="customers-largest-change-first-missing-is-zero",
        ),
        pytest.param(
            outcome(alerts={"C1": {"t1"}, "C2": {"t1"}, "C3": {"t1", "t2"}, "C4": {"t1"}}),
            outcome(alerts={"C1": {"t1"}, "C2": {"t2"}, "C3": {"t1"}, "C5": {"t1"}}),
            {"alerts_gained": ["C2", "C5"], "alerts_lost": ["C2", "C3", "C4"]},
            id="alerts-by-customer-and-time",
        ),
        pytest.param(
            outcome(teams={"T1": standing(50.0, "red"), "T2": standing(57.69, "red"),
                           "T3": standing(71.0, "yellow"), "T4": standing(90.0, "green")}),
            outcome(teams={"T1": standing(50.0, "red"), "T2": standing(84.62, "yellow"),
                           "T3": standing(72.5, "yellow"), "T5": standing(10.0, "red")}),
            {"teams": [
                {"team_id": "T2", "before": standing(57.69, "red"), "after": standing(84.62, "yellow")},
                {"team_id": "T3", "before": standing(71.0, "yellow"), "after": standing(72.5, "yellow")},
                {"team_id": "T4", "before": standing(90.0, "green"), "after": {"score": None, "band": None}},
                {"team_id": "T5", "before": {"score": None, "band": None}, "after": standing(10.0, "red")},
            ]},
            id="only-teams-that-change",
        ),
    ],
)  # fmt: skip
def test_diff(before: Outcome, after: Outcome, expected: dict[str, Any]) -> None:
    empty = {"signals": {}, "deltas_added": [], "deltas_removed": [], "customers_changed": [],
             "alerts_gained": [], "alerts_lost": [], "teams": []}  # fmt: skip
    assert diff(before, after).to_json() == {**empty, **expected}


def test_outcome_keeps_the_last_record_of_each_key_and_only_standing_alerts() -> None:
    def alert(alert_id: str, customer_id: str, ts: str, retracted: bool = False) -> Output:
        return Output(ALERTS, customer_id, {"alert_id": alert_id, "customer_id": customer_id,
                                            "ts": ts, "retracted": retracted})  # fmt: skip

    result = ReplayResult(outputs=[
        Output(CUSTOMER_SCORES, "C1", {"net_points": 18}),
        alert("a1", "C1", "t5"),
        alert("a0", "C2", "t1"),  # stored before retractions existed: no ``retracted`` field
        Output(TEAM_CREDIBILITY, "T1", {"score": 80.0, "band": "yellow"}),
        Output(CUSTOMER_SCORES, "C1", {"net_points": 16}),
        alert("a1", "C1", "t5", retracted=True),
        alert("a2", "C1", "t9"),
        Output(TEAM_CREDIBILITY, "T1", {"score": None, "band": None}),
    ])  # fmt: skip
    result.outputs[2].value.pop("retracted")
    got = outcome_of(result)
    assert got.net_points == {"C1": 16}
    assert got.alerts == {"C1": frozenset({"t9"}), "C2": frozenset({"t1"})}
    assert got.teams == {"T1": {"score": None, "band": None}}


@pytest.fixture(scope="module")
def scoring() -> Scoring:
    return Scoring(catalog(), now=NOW, wall_clock=NOW)


def test_the_draft_changes_what_was_computed_by_hand(scoring: Scoring) -> None:
    before, after = scoring.score_both(scenario(), rules(), rules(**DRAFT))
    assert summarised(diff(before, after).to_json()) == EXPECTED


def test_the_same_rules_change_nothing(scoring: Scoring) -> None:
    report = diff(*scoring.score_both(scenario(), rules(), rules())).to_json()
    assert report["signals"] == EXPECTED["signals"] | {"risk": {"before": 1, "after": 1}}
    assert [v for k, v in report.items() if k != "signals"] == [[]] * 6


def test_a_rule_whose_change_alters_no_verdict_is_no_change(scoring: Scoring) -> None:
    """The decision_chain deltas' rule_version changes with its window; the wider window
    changes no verdict of this log, so the diff is empty."""
    before, after = scoring.score_both(scenario(), rules(), rules(decision_chain={"within": "20d"}))

    def versions(outcome: Any, changed: bool) -> set[str]:
        return {d["rule_version"] for d in outcome.deltas.values() if (d["signal"] == "decision_chain") == changed}

    assert versions(before, True).isdisjoint(versions(after, True))
    assert versions(before, False) == versions(after, False)
    report = diff(before, after).to_json()
    assert [v for k, v in report.items() if k != "signals"] == [[]] * 6


def test_a_new_signal_is_reported_with_its_deltas(scoring: Scoring) -> None:
    """A draft that adds a first_per signal on the rush notes' contract: C2's note K-1
    gives one more delta, +1 to C2's net points, and nothing else changes."""
    draft_doc = default_rules_doc()
    draft_doc["signals"].append({"id": "contract_note", "points": 1, "topic": "rush-delivery",
                                 "pattern": "first_per", "field": "contract_id", "regex": "K-[0-9]+"})
    draft = build_signal_catalogue(draft_doc, catalog())
    report = diff(*scoring.score_both(scenario(), rules(), draft)).to_json()
    assert report["signals"]["contract_note"] == {"before": 0, "after": 1}
    [added] = report["deltas_added"]
    assert (added["signal"], added["customer_id"], added["points"]) == ("contract_note", "C2", 1)
    assert report["deltas_removed"] == []
    assert report["customers_changed"] == [{"customer_id": "C2", "before": 18, "after": 19}]


def test_both_scorings_in_two_processes_equal_one_after_the_other(scoring: Scoring) -> None:
    records, current, draft = scenario(), rules(), rules(**DRAFT)
    assert scoring.score_both(records, current, draft, parallel=True) == scoring.score_both(
        records, current, draft, parallel=False
    )


def test_a_failed_scoring_in_the_other_process_is_raised_here() -> None:
    current = rules()

    class FailsOnCurrent(Scoring):
        def score(self, records: Any, rules: Any) -> Outcome:
            if rules is current:
                raise ValueError("boom")
            return super().score(records, rules)

    with pytest.raises(RuntimeError, match="scoring under the current rules failed: ValueError: boom"):
        FailsOnCurrent(catalog(), now=NOW, wall_clock=NOW).score_both(scenario(), current, rules(**DRAFT))


def test_a_failed_scoring_here_does_not_wait_for_the_other_process_forever() -> None:
    draft = rules(**DRAFT)

    class FailsOnDraft(Scoring):
        def score(self, records: Any, rules: Any) -> Outcome:
            if rules is draft:
                raise ValueError("boom")
            return super().score(records, rules)

    # more than a pipe's buffer to send back: the other process blocks until it is read
    many = [record("rush-delivery", key=f"C{i}", customer_id=f"C{i}", ts=NOW) for i in range(500)]
    with pytest.raises(ValueError, match="boom"):
        FailsOnDraft(catalog(), now=NOW, wall_clock=NOW).score_both(many, rules(), draft)
