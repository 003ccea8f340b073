"""The customer state's encoded form: format 4 (msgpack, the de-duplication memory as
raw bytes) and the JSON formats before it, which stored states keep being read in.

The format 3 fixture was encoded by the format 3 code (commit c75fd94) from a customer
fed ``busy_steps`` (random event ids); the format 4 one is that state rewritten by the
current code."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings

from scoring.customer import CustomerState
from scoring.engine import DictStore, SignalEngine
from tests.unit.fixtures import CUSTOMER, catalog, decoded, feed, rules, run_engine
from tests.unit.test_customer_state import busy_steps
from tests.unit.test_properties import FAR_FUTURE, steps_with_ticks

DATA = Path(__file__).parent / "data"
V3 = (DATA / "customer_state_v3.json").read_bytes()
V4 = (DATA / "customer_state_v4.msgpack").read_bytes()
CFG = rules()


def format_3(state: CustomerState) -> bytes:
    """The format 3 encoder, as it was: the reference for the property below."""
    return orjson.dumps({
        "v": 3,
        "c": state.customer_id,
        "o": [state.owner.team_id, state.owner.region, state.owner.rep_id],
        "eo": [state.event_owner.team_id, state.event_owner.region, state.event_owner.rep_id],
        "l": state.ledger.to_json(),
        "m": state.max_ts,
        "s": {topic: base64.b64encode(ids.packed()).decode("ascii") for topic, ids in state.seen.items()},
        "r": state._encode_rules(),
    })


def busy_state() -> CustomerState:
    state = CustomerState(CUSTOMER)
    feed(state, busy_steps(), CFG)
    return state


def assert_busy(state: CustomerState) -> None:
    """``state`` is what ``busy_steps`` leave, but for the (random) event ids."""
    fresh = busy_state()
    assert (state.customer_id, state.owner, state.event_owner) == (fresh.customer_id, fresh.owner, fresh.event_owner)
    assert state.max_ts == fresh.max_ts
    assert {t: list(ids.times.values()) for t, ids in state.seen.items()} == {
        t: list(ids.times.values()) for t, ids in fresh.seen.items()
    }
    assert state.rules["urgency"].fired == {"K-1", "K-2"}
    assert sorted(state.rules["risk"].watches) == ["O1", "O2"]
    assert list(state.due_times(CFG)) == list(fresh.due_times(CFG))


def test_a_captured_format_3_state_loads_and_is_written_as_the_captured_format_4() -> None:
    assert orjson.loads(V3)["v"] == 3
    state = decoded(V3, CFG)
    assert_busy(state)
    assert state.to_bytes() == V4
    assert len(V4) < len(V3) * 0.75


def test_a_captured_format_4_state_loads_and_encodes_the_same() -> None:
    state = decoded(V4, CFG)
    assert_busy(state)
    assert state == decoded(V3, CFG)
    assert state.to_bytes() == V4


@pytest.mark.parametrize("doc", [
    {"v": None}, {"v": 0}, {"v": 1}, {"v": 5}, {"v": "4"}, {"c": CUSTOMER}, [4], 4,
])
def test_unknown_versions_are_refused(doc: Any) -> None:
    for encode in (orjson.dumps, msgspec.msgpack.encode):
        with pytest.raises(ValueError):  # msgspec.DecodeError is one
            CustomerState.from_bytes(encode(doc))


def test_a_json_document_claiming_format_4_is_refused() -> None:
    doc = orjson.loads(V3)
    doc["v"] = 4
    with pytest.raises(ValueError, match="version"):
        CustomerState.from_bytes(orjson.dumps(doc))


@settings(max_examples=30, deadline=None, database=None)
@given(steps_with_ticks())
def test_the_old_and_the_new_codec_agree(steps: list[Any]) -> None:
    """Every state a stream leaves (rules, ledger, de-duplication memory) decodes the same
    from format 3 and format 4, and a format 3 value is rewritten as the format 4 one."""
    store = DictStore()
    run_engine(SignalEngine(catalog(), CFG, store, clock=lambda: FAR_FUTURE), steps)
    for state in store.states.values():
        state.bind(CFG)  # as decoded() binds (a directory-only customer was never bound)
        old, new = decoded(format_3(state), CFG), decoded(state.to_bytes(), CFG)
        assert old == new == state
        assert [list(ids.times.items()) for ids in old.seen.values()] == [
            list(ids.times.items()) for ids in state.seen.values()
        ]
        assert old.to_bytes() == state.to_bytes()
