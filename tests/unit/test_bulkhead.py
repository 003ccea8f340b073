"""The per-record bulkhead (``scoring.bulkhead``): a record whose processing raises is
dead-lettered and leaves no trace; everything else comes out as if it had never come.

No natural record raises, so the tests inject faults: a rule or the ledger raises for
records whose event id starts with ``poison-``, after it has changed state.
"""

from __future__ import annotations

from typing import Any

import pytest

from scoring.bulkhead import INTERNAL_ERROR, Journal, Received, stage_of
from scoring.config import HOUR_MS
from scoring.customer import Outcome
from scoring.engine import DictStore, Handled, SignalEngine
from scoring.patterns import streak
from scoring.replay import LogRecord, replay
from scoring.rollup import ledger, team_rollup
from scoring.rollup.config import RollupConfig
from scoring.rollup.team import TeamState
from scoring.rollup.team_rollup import TeamRollup
from scoring.signal_catalogue import SignalCatalogue
from tests.unit.fixtures import at, catalog, record, summary
from tests.unit.rollup_fixtures import NOW, D, new_rollup
from tests.unit.rollup_fixtures import action as team_action
from tests.unit.rollup_fixtures import customer as team_customer

H = HOUR_MS
POISON = "poison-"


@pytest.fixture
def faulty_rule(monkeypatch: pytest.MonkeyPatch) -> str:
    """high_intent raises once a poison quote open has joined the streak."""
    real = streak._span

    def span(streak: list[Any]) -> int:
        if streak[-1].event_id.startswith(POISON):
            raise RuntimeError("injected rule fault")
        return real(streak)

    monkeypatch.setattr(streak, "_span", span)
    return "signal:high_intent: RuntimeError: injected rule fault"


@pytest.fixture
def faulty_ledger(monkeypatch: pytest.MonkeyPatch) -> str:
    """The ledger raises on a delta with poison evidence, after counting it."""
    real = ledger._trace_entry

    def trace_entry(delta: dict[str, Any]) -> dict[str, Any]:
        if any(e["event_id"].startswith(POISON) for e in delta["evidence"]):
            raise KeyError("injected ledger fault")
        return real(delta)

    monkeypatch.setattr(ledger, "_trace_entry", trace_entry)
    return "ledger: KeyError: 'injected ledger fault'"


def quote(event_id: str, hours: float, customer: str = "C1") -> LogRecord:
    return record("document-open", key=customer, customer_id=customer, event_id=event_id,
                  ts=at(hours=hours), dwell_seconds=300)


def log(poison: LogRecord | None) -> list[LogRecord]:
    """Two customers; C1's quote streak, urgency and an armed risk around the poison."""
    records = [
        record("customer-directory", key="C1", customer_id="C1", event_id="dir", team_id="T1", region="east", rep_id="R1"),
        quote("q1", 0),
        record("stale-update", key="C1", customer_id="C1", event_id="p1", ts=at(hours=1),
               opportunity_id="O1", kind="progress"),
        quote("q2", 2),
        quote("x1", 2.5, customer="C2"),
        record("rush-delivery", key="C1", customer_id="C1", event_id="k1", ts=at(hours=3), contract_id="K-1"),
    ]
    if poison is not None:
        records.append(poison)
    return [
        *records,
        quote("x2", 4, customer="C2"),
        quote("q3", 5),
        record("rush-delivery", key="C1", customer_id="C1", event_id="k2", ts=at(hours=6), contract_id="K-9"),
        record("stale-update", key="C1", customer_id="C1", event_id="c1", ts=at(hours=7),
               opportunity_id="O1", kind="communication", outcome="reconsider"),
        quote("x3", 8, customer="C2"),
        quote("q2", 9),  # a duplicate
    ]


POISONS = {
    # joins C1's quote streak, then the rule raises
    "faulty_rule": quote("poison-q", 4),
    # completes urgency for K-9, then the ledger raises counting the delta
    "faulty_ledger": record("rush-delivery", key="C1", customer_id="C1", event_id="poison-k",
                            ts=at(hours=4), contract_id="K-9"),
}


def run(records: list[LogRecord], cfg: SignalCatalogue) -> tuple[SignalEngine, list[Handled]]:
    engine = SignalEngine(catalog(), cfg, DictStore())
    return engine, [engine.receive(r.topic, r.key, r.value) for r in records]


@pytest.mark.parametrize("fault", list(POISONS))
@pytest.mark.parametrize(
    "checkpoint_entries, customer_entries",
    [(1, 10_000), (4, 10_000), (10_000, 10_000), (10_000, 2)],
    ids=["checkpoint every save", "checkpoint then journal", "journal only", "checkpoint per customer"],
)
def test_a_poison_record_is_dead_lettered_and_leaves_no_trace(
    fault: str, checkpoint_entries: int, customer_entries: int, cfg: SignalCatalogue,
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clean_engine, clean = run(log(None), cfg)  # before the fault: the reference run
    detail = request.getfixturevalue(fault)
    monkeypatch.setattr(DictStore, "CHECKPOINT_ENTRIES", checkpoint_entries)
    monkeypatch.setattr(DictStore, "CUSTOMER_ENTRIES", customer_entries)
    poison = POISONS[fault]

    engine, handled = run(log(poison), cfg)

    failed = handled[log(poison).index(poison)]
    assert (failed.outcome, failed.deltas, failed.outputs) == (Outcome.FAILED, [], [])
    assert failed.error is not None and failed.error.reason == INTERNAL_ERROR
    assert failed.error.detail == detail
    others = [h for h in handled if h is not failed]
    assert [(h.outcome, [summary(d) for d in h.deltas], h.outputs) for h in others] == [
        (h.outcome, [summary(d) for d in h.deltas], h.outputs) for h in clean
    ]
    assert {c: s.to_bytes() for c, s in engine.store.states.items()} == {
        c: s.to_bytes() for c, s in clean_engine.store.states.items()
    }
    # the risk armed before the poison is still watched, and fires as without it
    due = at(hours=1) + 48 * H + 1
    assert [summary(d) for d in engine.fire_due(due).deltas] == [
        summary(d) for d in clean_engine.fire_due(due).deltas
    ] != []


@pytest.mark.parametrize("fault", list(POISONS))
def test_replay_dead_letters_the_poison_and_gives_the_same_outputs(
    fault: str, cfg: SignalCatalogue, request: pytest.FixtureRequest
) -> None:
    clean = replay(log(None), catalog(), cfg, now=at(days=30))
    request.getfixturevalue(fault)
    poison = POISONS[fault]

    result = replay(log(poison), catalog(), cfg, now=at(days=30))

    [(letter, error)] = result.invalid
    assert letter == poison and error.reason == INTERNAL_ERROR
    assert [summary(d) for d in result.deltas] == [summary(d) for d in clean.deltas]
    assert result.outputs == clean.outputs
    assert result.outcomes == {**clean.outcomes, "failed": 1}


def test_a_failing_clock_tick_leaves_the_customer_as_it_was(
    cfg: SignalCatalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _ = run(log(None), cfg)
    before = engine.store.states["C1"].to_bytes()
    due = at(hours=1) + 48 * H + 1
    real = ledger.CustomerLedger.expire

    def expire(self: ledger.CustomerLedger, customer_id: str, *args: Any) -> Any:
        real(self, customer_id, *args)
        if customer_id == "C1":
            raise ZeroDivisionError("injected tick fault")
        return []

    monkeypatch.setattr(ledger.CustomerLedger, "expire", expire)

    fired = engine.fire_due(due)

    assert fired.deltas == [] and fired.outputs == []
    [(tick, error)] = fired.failed_ticks
    assert (tick.customer_id, tick.now, error.reason) == ("C1", due, INTERNAL_ERROR)
    assert "ZeroDivisionError: injected tick fault" in error.detail
    assert engine.store.states["C1"].to_bytes() == before
    # the next record of the customer is scored as usual
    later = engine.receive(*_args(quote("q9", 60)))
    assert later.outcome is Outcome.ACCEPTED


def test_a_new_customer_whose_first_record_fails_is_not_stored(cfg: SignalCatalogue, faulty_rule: str) -> None:
    engine, handled = run([quote("poison-a", 0, "C9")], cfg)
    assert handled[0].outcome is Outcome.FAILED
    assert "C9" not in engine.store.states
    assert engine.receive(*_args(quote("b", 1, "C9"))).outcome is Outcome.ACCEPTED
    assert [e.event_id for e in engine.store.states["C9"].rules["high_intent"].events] == ["b"]


def test_the_journal_keeps_only_records_that_changed_state() -> None:
    journal = Journal()
    first, second = Received("t", None, b"1", 0), Received("t", None, b"2", 0)
    journal.begin(first)
    journal.loaded("C1")
    journal.loaded("C2")  # only the first customer a record loads is its own
    assert journal.end(changed=True) == "C1"
    journal.begin(second)
    journal.loaded("C1")
    assert journal.end(changed=False) == "C1"
    journal.loaded("C1")  # outside an entry: nothing to record
    assert len(journal) == 1 and journal.take("C1") == [first] and len(journal) == 0


def test_stage_names_the_innermost_known_module() -> None:
    def raise_in(module: str) -> BaseException:
        namespace = {"__name__": module}
        exec("def fail():\n    raise ValueError('x')", namespace)  # a frame of that module
        try:
            namespace["fail"]()  # type: ignore[operator]
        except ValueError as exc:
            return exc
        raise AssertionError

    assert stage_of(raise_in("scoring.patterns.first_per")) == "signal:first_per"  # a rule's own frame names its id
    assert stage_of(raise_in("scoring.rollup.ledger")) == "ledger"
    assert stage_of(raise_in("scoring.rollup.team")) == "team_rollup"
    assert stage_of(raise_in("somewhere.else")) == "engine"


def _args(r: LogRecord) -> tuple[str, bytes | None, bytes | None]:
    return r.topic, r.key, r.value


# --- the team stage ----------------------------------------------------------


@pytest.fixture
def faulty_team_update(monkeypatch: pytest.MonkeyPatch) -> None:
    """A team raises on an update for a poison customer, after applying it."""
    real = TeamState.apply

    def apply(self: TeamState, update: dict[str, Any], cfg: RollupConfig) -> None:
        real(self, update, cfg)
        if update.get("customer_id", "").startswith(POISON):
            raise RuntimeError("injected team fault")

    monkeypatch.setattr(TeamState, "apply", apply)


def teams(rollup: TeamRollup) -> dict[str, Any]:
    return {t.team_id: t.to_json() for t in rollup.store.all()}


BEFORE = [("T1", team_customer("c0", 10, NOW - 2 * D)), ("T1", team_action("O1", "call", NOW - D, NOW - D))]
BATCH = [
    ("T1", team_customer("c1", 20, NOW - D)),
    ("T2", team_customer("c3", 5, NOW - D)),
    ("T1", team_action("O2", "demo", NOW - H)),
    ("T1", team_customer("c2", 2, NOW - H)),
]
POISON_UPDATE = ("T1", team_customer("poison-c", 26, NOW))


@pytest.mark.parametrize("at_index", [0, 2, 4])
def test_a_failing_team_update_is_reported_and_the_batch_goes_on(at_index: int, faulty_team_update: None) -> None:
    clean = new_rollup()
    clean.apply_many(BEFORE)
    clean_out = clean.apply_many(BATCH)
    rollup = new_rollup()
    rollup.apply_many(BEFORE)

    out = rollup.apply_many([*BATCH[:at_index], POISON_UPDATE, *BATCH[at_index:]])

    [failure] = rollup.take_failures()
    assert (failure.team_id, failure.update) == POISON_UPDATE
    assert failure.error.reason == INTERNAL_ERROR
    assert failure.error.detail == "team_rollup: RuntimeError: injected team fault"
    assert teams(rollup) == teams(clean)
    assert out == clean_out
    assert rollup.take_failures() == []


def test_a_new_team_whose_only_update_fails_is_not_stored(faulty_team_update: None) -> None:
    rollup = new_rollup()
    assert rollup.apply_many([("T9", team_customer("poison-c", 1, NOW))]) == []
    assert rollup.store.load("T9") is None and len(rollup.take_failures()) == 1


def test_a_failure_scoring_a_team_fails_only_the_update_that_causes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = TeamState.publish_if_changed

    def publish_if_changed(self: TeamState, now: int, cfg: RollupConfig) -> Any:
        if any(c.startswith(POISON) for c in self.customers):
            raise ValueError("injected scoring fault")
        return real(self, now, cfg)

    one_at_a_time = new_rollup()
    for team, update in [*BEFORE, *BATCH]:
        one_at_a_time.apply(team, update)
    rollup = new_rollup()
    rollup.apply_many(BEFORE)
    monkeypatch.setattr(TeamState, "publish_if_changed", publish_if_changed)

    rollup.apply_many([*BATCH[:2], POISON_UPDATE, *BATCH[2:]])

    assert [(f.team_id, f.update) for f in rollup.take_failures()] == [POISON_UPDATE]
    assert teams(rollup) == teams(one_at_a_time)


def test_a_team_failing_its_clock_tick_does_not_hold_the_others_up(monkeypatch: pytest.MonkeyPatch) -> None:
    rollup = new_rollup()
    rollup.apply_many([*BEFORE, ("T-bad", team_customer("c9", 3, NOW - D))])
    bad_before = teams(rollup)["T-bad"]
    real = TeamState.advance_clock

    def advance_clock(self: TeamState, now: int) -> None:
        real(self, now)
        if self.team_id == "T-bad":
            raise RuntimeError("injected tick fault")

    monkeypatch.setattr(TeamState, "advance_clock", advance_clock)

    out = rollup.tick(NOW + 40 * D)  # every customer's activity has aged out

    assert [(f.team_id, f.update) for f in rollup.take_failures()] == [("T-bad", {"kind": "tick", "now": NOW + 40 * D})]
    assert [o.key for o in out if o.topic == "team-credibility"] == ["T1"]
    assert teams(rollup)["T-bad"] == bad_before


def test_a_failing_scheduled_heat_map_is_reported_and_the_teams_still_move_on(monkeypatch: pytest.MonkeyPatch) -> None:
    rollup = new_rollup()
    rollup.apply_many(BEFORE)
    rollup.tick(NOW)  # starts the heat map schedule

    def snapshot(*args: Any) -> Any:
        raise RuntimeError("injected heat map fault")

    monkeypatch.setattr(team_rollup, "snapshot", snapshot)

    out = rollup.tick(NOW + 7 * D)  # one Friday 17:00 has passed

    [failure] = rollup.take_failures()
    assert failure.update["kind"] == "heatmap" and "RuntimeError: injected heat map fault" in failure.error.detail
    # T1's score did not change; a month passed: its water levels closed November and opened December
    assert [(o.key, o.value["final"]) for o in out] == [("T1|call|2026-11", True), ("T1|call|2026-12", False)]
    assert rollup.store.load("T1").clock == NOW + 7 * D
    assert rollup.store.last_heatmap() == failure.update["at"]  # not tried again at every tick
