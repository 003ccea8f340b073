"""A team's running aggregates (``scoring/rollup/window.py``, the region counts in
``TeamState``) agree with a recount over every customer and action, whatever comes in."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.rollup.config import RollupConfig
from scoring.rollup.team import TeamState
from scoring.rollup.window import TrailingWindow

DAY = 86_400_000
CFG = RollupConfig()
T0 = 1_790_000_000_000
PROPERTY = settings(max_examples=100, deadline=None, database=None)
times = st.integers(T0, T0 + 90 * DAY)

customer_update = st.fixed_dictionaries({
    "kind": st.just("customer"),
    "customer_id": st.sampled_from([f"c{i}" for i in range(6)]),
    "net_points": st.integers(-20, 40),
    "activity_ts": st.one_of(st.none(), times),
    "as_of": times,
    "region": st.one_of(st.none(), st.sampled_from(["east", "west", "north"])),
})
customer_left = st.fixed_dictionaries({
    "kind": st.just("customer_left"), "customer_id": st.sampled_from([f"c{i}" for i in range(6)]),
})
action = st.fixed_dictionaries({
    "kind": st.just("action"),
    "opportunity_id": st.sampled_from(["o1", "o2", "o3"]),
    "action": st.sampled_from(["call", "demo"]),
    "ts": times,
    "due_ts": times,
    "done_ts": st.one_of(st.none(), times),
})
clock_moves = st.integers(0, 20 * DAY).map(lambda days: {"kind": "clock", "by": days})


def recount(state: TeamState) -> tuple[float | None, float | None, str | None]:
    """Action completion and signal strength at the clock, and the region, from scratch."""
    now = state.clock
    due = [a for a in state.actions.values() if now - CFG.action_window_ms < a[1] <= now]
    completion = sum(1 for a in due if a[2] is not None and a[2] <= a[1]) / len(due) * 100 if due else None
    full = CFG.strength_full_points
    active = [c for c in state.customers.values()
              if c[1] is not None and now - CFG.activity_window_ms < c[1] <= now]
    strength = sum(min(max(c[0], 0), full) for c in active) / len(active) / full * 100 if active else None
    counts = Counter(str(c[3]) for c in state.customers.values() if c[3])
    region = min(counts, key=lambda r: (-counts[r], r)) if counts else None
    return completion, strength, region


@PROPERTY
@given(st.lists(st.one_of(customer_update, customer_left, action, clock_moves), max_size=60))
def test_the_running_aggregates_equal_a_recount_after_every_update(updates: list[dict[str, Any]]) -> None:
    state = TeamState("T")
    state.advance_clock(T0)
    for update in updates:
        if update["kind"] == "clock":
            state.advance_clock(state.clock + update["by"])
            state.forget_before(state.clock, CFG)  # drops actions out of the window
        else:
            state.apply(update, CFG)
            if update["kind"] == "customer":
                state.advance_clock(max(t for t in (update["as_of"], update["activity_ts"]) if t is not None))
            elif update["kind"] == "action":
                state.advance_clock(update["ts"])
        # read (and so built, then kept up to date) from the first update on
        components = state.components(state.clock, CFG)
        assert (components["action_completion"], components["signal_strength"], state.region()) == recount(state)


def test_an_item_set_again_is_not_taken_out_by_its_older_time():
    window = TrailingWindow(30 * DAY, T0)
    window.set("c", T0, 8)
    window.set("c", T0 + 20 * DAY, 13)
    window.advance(T0 + 35 * DAY)  # its time of T0 left the window, not it
    assert (len(window), window.total) == (1, 13)
    window.advance(T0 + 50 * DAY)
    assert (len(window), window.total) == (0, 0)


def test_an_item_due_later_comes_in_when_the_clock_reaches_it():
    window = TrailingWindow(30 * DAY, T0)
    window.set("a", T0 + 5 * DAY, 1)
    assert len(window) == 0
    window.advance(T0 + 5 * DAY)
    assert (len(window), window.total) == (1, 1)
    window.advance(T0 + 100 * DAY)  # in and out again within one move
    window.set("b", T0 + 120 * DAY, 1)
    window.advance(T0 + 200 * DAY)
    assert (len(window), window.total) == (0, 0)


def test_stale_heap_entries_do_not_pile_up():
    window = TrailingWindow(30 * DAY, T0)
    for hour in range(10_000):  # one customer re-reported hourly for over a year
        window.advance(T0 + hour * 3_600_000)
        window.set("c", T0 + hour * 3_600_000, 8)
        assert (len(window), window.total) == (1, 8)
    assert len(window._coming) + len(window._leaving) <= 2 * 1 + 64


def test_an_item_moved_later_does_not_come_in_at_its_earlier_time():
    window = TrailingWindow(30 * DAY, T0)
    window.set("a", T0 + 5 * DAY, 1)
    window.set("a", T0 + 10 * DAY, 1)
    window.advance(T0 + 7 * DAY)
    assert len(window) == 0
    window.advance(T0 + 10 * DAY)
    assert len(window) == 1
