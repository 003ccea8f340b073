"""A team's running aggregates (``scoring/rollup/active.py``, the region counts in
``TeamState``) agree with a recount over every customer, whatever comes in."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.rollup.active import ActiveCustomers
from scoring.rollup.config import RollupConfig
from scoring.rollup.team import TeamState

DAY = 86_400_000
CFG = RollupConfig()
T0 = 1_790_000_000_000
PROPERTY = settings(max_examples=80, deadline=None, database=None)

customer_update = st.fixed_dictionaries({
    "kind": st.just("customer"),
    "customer_id": st.sampled_from([f"c{i}" for i in range(6)]),
    "net_points": st.integers(-20, 40),
    "activity_ts": st.one_of(st.none(), st.integers(T0, T0 + 90 * DAY)),
    "as_of": st.integers(T0, T0 + 90 * DAY),
    "region": st.one_of(st.none(), st.sampled_from(["east", "west", "north"])),
})
customer_left = st.fixed_dictionaries({
    "kind": st.just("customer_left"), "customer_id": st.sampled_from([f"c{i}" for i in range(6)]),
})
clock_moves = st.integers(0, 20 * DAY).map(lambda days: {"kind": "clock", "by": days})


def recount(state: TeamState) -> tuple[float | None, str | None]:
    """Signal strength at the clock and the region, from every customer."""
    full = CFG.strength_full_points
    active = [c for c in state.customers.values()
              if c[1] is not None and state.clock - CFG.activity_window_ms < c[1] <= state.clock]
    strength = sum(min(max(c[0], 0), full) for c in active) / len(active) / full * 100 if active else None
    counts = Counter(str(c[3]) for c in state.customers.values() if c[3])
    region = min(counts, key=lambda r: (-counts[r], r)) if counts else None
    return strength, region


@PROPERTY
@given(st.lists(st.one_of(customer_update, customer_left, clock_moves), max_size=60))
def test_the_running_aggregates_equal_a_recount_after_every_update(updates: list[dict[str, Any]]) -> None:
    state = TeamState("T")
    state.advance_clock(T0)
    for update in updates:
        if update["kind"] == "clock":
            state.advance_clock(state.clock + update["by"])
        else:
            state.apply(update, CFG)
            if update["kind"] == "customer":
                state.advance_clock(max(t for t in (update["as_of"], update["activity_ts"]) if t is not None))
        # the aggregates are read (and so built, then kept) from the first update on
        assert (state.components(state.clock, CFG)["signal_strength"], state.region()) == recount(state)


def test_stale_expiry_entries_do_not_pile_up():
    active = ActiveCustomers(30 * DAY, 26.0)
    for hour in range(10_000):  # one customer re-reported hourly for over a year
        active.set("c", T0 + hour * 3_600_000, 8)
        assert active.strength(T0 + hour * 3_600_000) == 8 / 26 * 100
    assert len(active._expiry) <= 2 * 1 + 64


def test_a_customer_active_again_is_not_expired_by_its_older_activity():
    active = ActiveCustomers(30 * DAY, 26.0)
    active.set("c", T0, 8)
    assert active.strength(T0) == 8 / 26 * 100
    active.set("c", T0 + 20 * DAY, 13)
    assert active.strength(T0 + 35 * DAY) == 50.0  # its activity of T0 aged out, not it
    assert active.strength(T0 + 50 * DAY) is None
