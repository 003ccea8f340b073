"""The team stage's rollback (an undo log, :mod:`scoring.rollup.undo`) against the full
copy it replaced, on generated update sequences with failing updates: the same
published records, the same failures and the same final teams.

Faults are injected as in ``test_bulkhead``: applying an update for a ``poison-``
customer raises after changing the team, and scoring a team that holds a
``poisonscore-`` customer raises.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.bulkhead import internal_error
from scoring.rollup.config import RollupConfig
from scoring.rollup.records import Output
from scoring.rollup.team import TeamState
from scoring.rollup.team_rollup import TeamFailure, TeamRollup
from scoring.schema import InvalidEvent
from tests.unit.rollup_fixtures import (
    NOW,
    D,
    H,
    action,
    customer,
    customer_left,
    make_delta,
    new_rollup,
    outcome,
    trace_update,
)

PROPERTY = settings(max_examples=200, deadline=None, database=None)


def full_copy(state: TeamState) -> TeamState:
    """The team as a copy of everything, its running aggregates left to be rebuilt."""
    copied = copy.deepcopy(state)
    copied._active = copied._due = copied._regions = None
    copied.water.forget_aggregates()
    return copied


class FullCopyRollup(TeamRollup):
    """The team stage as it was: a full copy of the team before its updates, and a
    failing update undone by starting again from the copy."""

    def _apply_team(self, team_id: str, updates: list[dict[str, Any]]) -> list[Output]:
        stored = self.store.load(team_id)
        before = full_copy(stored) if stored is not None else None
        state = stored or TeamState(team_id)
        applied: list[dict[str, Any]] = []
        for update in updates:
            try:
                self._accumulate(state, update)
            except Exception as exc:
                error = exc if isinstance(exc, InvalidEvent) else internal_error(exc)
                self.failures.append(TeamFailure(team_id, update, error))
                state = full_copy(before) if before is not None else TeamState(team_id)
                for earlier in applied:
                    self._accumulate(state, earlier)
            else:
                applied.append(update)
        if not applied and before is None:
            return []
        try:
            return self._publish(state, diagnose=any(u["kind"] == "tick" for u in applied))
        except Exception as exc:
            if before is not None:
                self.store.save(before)
            if len(applied) <= 1:
                self.failures += [TeamFailure(team_id, u, internal_error(exc)) for u in applied]
                return []
        outputs: list[Output] = []
        for update in applied:
            outputs += self._apply_team(team_id, [update])
        return outputs


@pytest.fixture(autouse=True)
def faults(monkeypatch: pytest.MonkeyPatch) -> None:
    real_apply, real_publish = TeamState.apply, TeamState.publish_if_changed

    def apply(self: TeamState, update: dict[str, Any], cfg: RollupConfig) -> None:
        real_apply(self, update, cfg)
        if update.get("customer_id", "").startswith("poison-"):
            raise RuntimeError("injected team fault")

    def publish_if_changed(self: TeamState, now: int, cfg: RollupConfig) -> Any:
        if any(c.startswith("poisonscore-") for c in self.customers):
            raise ValueError("injected scoring fault")
        return real_publish(self, now, cfg)

    monkeypatch.setattr(TeamState, "apply", apply)
    monkeypatch.setattr(TeamState, "publish_if_changed", publish_if_changed)


CUSTOMERS = ["c0", "c1", "c2", "c3", "poison-c", "poisonscore-c"]
times = st.integers(-40, 40).map(lambda hours: NOW + hours * 12 * H)
updates = st.one_of(
    st.builds(customer, st.sampled_from(CUSTOMERS), st.integers(-5, 40), times,
              region=st.sampled_from(["east", "west", None])),
    st.builds(customer_left, st.sampled_from(CUSTOMERS)),
    st.builds(action, st.sampled_from(["O1", "O2", "O3"]), st.sampled_from(["call", "demo"]), times,
              st.none() | times, ts=times),
    st.builds(outcome, st.sampled_from(["2026-9", "2026-10", "2026-11", "2026-Q4"]),
              st.integers(1, 100).map(float), st.integers(0, 120).map(float), ts=times),
    st.builds(lambda c, ts: trace_update(make_delta("urgency", 3, ts, customer_id=c)), st.sampled_from(CUSTOMERS), times),
)
#: a batch of (team, update) pairs, or a clock tick
steps = st.lists(
    st.one_of(
        st.lists(st.tuples(st.sampled_from(["T1", "T2"]), updates), min_size=1, max_size=8),
        times.map(lambda t: t + 30 * D),
    ),
    min_size=1, max_size=12,
)


def run(rollup: TeamRollup, plan: list[Any]) -> tuple[list[Output], list[tuple[str, Any, str, str]]]:
    outputs: list[Output] = []
    for step in plan:
        outputs += rollup.tick(step) if isinstance(step, int) else rollup.apply_many(step)
    outputs += rollup.settle(NOW + 90 * D)
    return outputs, [(f.team_id, f.update, f.error.reason, f.error.detail) for f in rollup.take_failures()]


@PROPERTY
@given(steps)
def test_the_undo_log_rolls_back_as_a_full_copy_did(plan: list[Any]) -> None:
    reference = FullCopyRollup(RollupConfig(), new_rollup().store)
    rollup = new_rollup()

    assert run(rollup, plan) == run(reference, plan)
    teams = {t.team_id: t for t in rollup.store.all()}
    expected = {t.team_id: t for t in reference.store.all()}
    assert teams == expected
    assert {k: (t.dirty, t.removed) for k, t in teams.items()} == {k: (t.dirty, t.removed) for k, t in expected.items()}
    assert all(t.undo is None for t in teams.values())


def test_the_plan_reaches_both_kinds_of_failure() -> None:
    """The generated plans can fail an update and fail a score (the property is not vacuous)."""
    rollup = new_rollup()
    plan: list[Any] = [[("T1", customer("c0", 5, NOW)), ("T1", customer("poison-c", 5, NOW)),
                        ("T1", customer("poisonscore-c", 5, NOW)), ("T1", customer("c1", 7, NOW))]]
    outputs, failures = run(rollup, plan)
    assert [f[1]["customer_id"] for f in failures] == ["poison-c", "poisonscore-c"]
    assert set(rollup.store.load("T1").customers) == {"c0", "c1"}
    assert outputs
