"""Property tests over random event streams: idempotence, determinism, serialisation."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.catalog import DIRECTORY_TOPIC
from scoring.config import DAY_MS
from scoring.customer import CustomerState, Outcome
from scoring.dedup import DEDUP_HORIZON_MS
from scoring.engine import DictStore, SignalEngine
from scoring.events import Event
from scoring.replay import replay
from tests.unit.fixtures import (
    GAPS_MS,
    SPEC_POINTS,
    BytesStore,
    Tick,
    catalog,
    decoded,
    event_values,
    replay_logs,
    rules,
    run_engine,
    summary,
    to_events,
    to_records,
)

CFG = rules()
FAR_FUTURE = 10**14  # year 5138: every pending risk is due, and no event time is ahead of it
PROPERTY = settings(max_examples=60, deadline=None, database=None)
EVIDENCE = {
    "high_intent": ["document-open"] * 3,
    "decision_chain": ["role-login"] * 3,
    "urgency": ["rush-delivery"],
    "risk": ["stale-update"] * 2,
}


def apply_all(states: dict[str, CustomerState], events: list[Event]) -> list[Any]:
    out = []
    for ev in events:
        state = states.setdefault(ev.customer_id, CustomerState(ev.customer_id))
        out.append(state.apply(ev, CFG))
    return out


@st.composite
def steps_with_ticks(draw: st.DrawFn) -> list[Any]:
    """Valid records with clock ticks around and after them, as a live worker sees."""
    pairs = draw(event_values())
    steps: list[Any] = []
    for record, (_, doc) in zip(to_records(pairs), pairs, strict=True):
        steps.append(record)
        if draw(st.integers(0, 3)) == 0:
            steps.append(Tick(doc["ts"] + draw(st.sampled_from(GAPS_MS))))
    steps.append(Tick(FAR_FUTURE))
    return steps


@PROPERTY
@given(event_values())
def test_each_event_twice_in_a_row_changes_nothing(pairs):
    events = to_events(pairs)
    once = apply_all({}, events)
    twice = apply_all({}, [ev for ev in events for _ in range(2)])
    assert [summary(d) for a in twice for d in a.deltas] == [
        summary(d) for a in once for d in a.deltas
    ]
    for ev, first, second in zip(events, twice[::2], twice[1::2], strict=True):
        assert second.deltas == []
        if first.outcome is Outcome.ACCEPTED and ev.topic != DIRECTORY_TOPIC:
            assert second.outcome is Outcome.DUPLICATE
        else:
            assert second.outcome is first.outcome


@PROPERTY
@given(event_values())
def test_feeding_the_same_stream_again_changes_nothing(pairs):
    events = [ev for ev in to_events(pairs) if ev.topic != DIRECTORY_TOPIC]
    states: dict[str, CustomerState] = {}
    apply_all(states, events)
    before = {c: s.to_bytes() for c, s in states.items()}
    second = apply_all(states, events)
    assert [d for a in second for d in a.deltas] == []
    assert {a.outcome for a in second} <= {Outcome.DUPLICATE, Outcome.LATE}
    assert {c: s.to_bytes() for c, s in states.items()} == before
    times = [ev.ts for ev in events]
    if times and max(times) - min(times) <= DEDUP_HORIZON_MS:
        assert {a.outcome for a in second} == {Outcome.DUPLICATE}


@PROPERTY
@given(replay_logs(), st.sampled_from([None, FAR_FUTURE]))
def test_replay_is_deterministic(log, now):
    first = replay(log, catalog(), CFG, now=now, wall_clock=FAR_FUTURE)
    second = replay(log, catalog(), CFG, now=now, wall_clock=FAR_FUTURE)
    assert [d.delta_id for d in first.deltas] == [d.delta_id for d in second.deltas]
    assert [d.to_record(0) for d in first.deltas] == [d.to_record(0) for d in second.deltas]
    assert [(r, e.reason) for r, e in first.invalid] == [(r, e.reason) for r, e in second.invalid]
    assert first.outcomes == second.outcomes
    assert sum(first.outcomes.values()) == len(log)


@PROPERTY
@given(replay_logs())
def test_deltas_keep_the_signal_rules(log):
    deltas = replay(log, catalog(), CFG, now=FAR_FUTURE, wall_clock=FAR_FUTURE).deltas
    values = {
        (r.topic, doc["event_id"]): doc
        for r in log
        if isinstance(doc := _json(r.value), dict) and "event_id" in doc
    }
    assert len({d.delta_id for d in deltas}) == len(deltas)  # nothing fires twice
    for d in deltas:
        assert d.points == SPEC_POINTS[d.signal]
        assert d.points in {8, 12, 6, -5}
        assert [e.topic for e in d.evidence] == EVIDENCE[d.signal]
        docs = [values[(e.topic, e.event_id)] for e in d.evidence]
        times = [e.ts for e in d.evidence]
        assert all(doc["customer_id"] == d.customer_id for doc in docs)
        if d.signal == "high_intent":
            assert max(times) - min(times) <= 7 * DAY_MS
            assert all(doc["document_type"].lower() == "quote" for doc in docs)
            assert all(doc["dwell_seconds"] > 120 for doc in docs)
            assert d.ts in times
        elif d.signal == "decision_chain":
            assert max(times) - min(times) <= 14 * DAY_MS
            assert [doc["role"].lower() for doc in docs] == ["procurement", "technical", "legal"]
            assert d.ts in times
        elif d.signal == "urgency":
            assert docs[0]["contract_id"].strip()
            assert d.ts == times[0]
        else:
            progress, comm = docs
            assert (progress["kind"], comm["kind"]) == ("progress", "communication")
            assert comm["outcome"].lower() == "reconsider"
            assert progress["opportunity_id"] == comm["opportunity_id"] == d.opportunity_id
            assert d.ts == max(times[0] + CFG.rule("risk").after_ms, times[1])


@PROPERTY
@given(steps_with_ticks())
def test_serialising_state_at_every_step_changes_no_delta(steps):
    plain = run_engine(SignalEngine(catalog(), CFG, DictStore(), clock=lambda: FAR_FUTURE), steps)
    serialised = run_engine(SignalEngine(catalog(), CFG, BytesStore(), clock=lambda: FAR_FUTURE), steps)
    assert [(summary(d), d.owner) for d in serialised] == [(summary(d), d.owner) for d in plain]


@PROPERTY
@given(event_values(max_size=20))
def test_state_round_trips_after_every_event(pairs):
    states: dict[str, CustomerState] = {}
    for ev in to_events(pairs):
        state = states.setdefault(ev.customer_id, CustomerState(ev.customer_id))
        state.apply(ev, CFG)
        state.fire_due(ev.ts, CFG)
        restored = decoded(state.to_bytes(), CFG)
        assert restored == state
        assert restored.to_bytes() == state.to_bytes()



def _json(value: bytes | None) -> Any:
    try:
        return None if value is None else orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
