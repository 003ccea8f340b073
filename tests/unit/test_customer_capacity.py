"""A customer's state is bounded by construction: past its capacity an event is
dead-lettered (``customer_over_capacity``) instead of growing the state, so the state
always fits its changelog record (``MAX_STATE_BYTES``)."""

from __future__ import annotations

import struct

import pytest

from scoring import customer
from scoring.catalog import BEHAVIOUR_TOPICS
from scoring.customer import (
    MAX_REMEMBERED_EVENTS,
    MAX_STATE_BYTES,
    CustomerState,
    Outcome,
)
from scoring.dedup import SeenIds
from scoring.deltas import Owner, SignalDelta
from scoring.engine import DictStore, SignalEngine
from scoring.events import Evidence
from scoring.patterns import first_per, silence
from scoring.patterns.first_per import MAX_VALUES
from scoring.patterns.silence import MAX_WATCHES, Watch
from scoring.replay import replay
from scoring.rollup import ledger
from scoring.rollup.ledger import MAX_ENTRIES, CustomerLedger
from scoring.signal_catalogue import SignalCatalogue
from tests.unit.fixtures import (
    CUSTOMER,
    T0,
    at,
    catalog,
    communication,
    event,
    login,
    progress,
    raw,
    record,
    rush,
    value,
)


def longest(chars: int, tag: object = "") -> str:
    """A string at its ``max_length`` whose JSON is as long as can be: control
    characters escape to six bytes each."""
    text = str(tag)
    return text + "\x01" * (chars - len(text))


def worst_case_state(cfg: SignalCatalogue) -> CustomerState:
    """Every part of a state at its capacity, every id and field at its longest."""
    ev = Evidence(longest(128), "stale-update", T0, longest(64))
    owner = Owner(longest(128), longest(128), longest(128))
    state = CustomerState(longest(128), owner=owner, event_owner=owner)
    for topic in BEHAVIOUR_TOPICS:
        state.max_ts[topic] = T0
        state.seen[topic] = SeenIds(b"".join(struct.pack("<qq", -(2**63) + i, -(10**15)) for i in range(MAX_REMEMBERED_EVENTS)))
    state.bind(cfg)
    state.rules["high_intent"].events = [ev] * cfg.rule("high_intent").count
    state.rules["decision_chain"].latest = {role: ev for role in cfg.rule("decision_chain").values}
    state.rules["urgency"].fired = {f"K{i}".ljust(128, "-") for i in range(MAX_VALUES)}
    state.rules["risk"].watches = {longest(128, i): Watch(ev, ev, True, longest(128)) for i in range(MAX_WATCHES)}
    delta = SignalDelta(state.customer_id, "decision_chain", 12, -(10**15), (ev,) * 3, owner, "f" * 12, longest(128))
    state.ledger = CustomerLedger([[f"{i:032x}", "decision_chain", -(10**6), -(10**15) + i] for i in range(MAX_ENTRIES)])
    state.ledger.last_delta = delta.to_record(-(10**15))
    state.ledger.as_of = state.ledger.activity_ts = -(10**15)
    # alerts are kept while they can hold a later one back: a cool-down (7 days) apart,
    # within the score window (30 days)
    state.ledger.alerts = [[-(10**15), f"{i:032x}"] for i in range(8)]
    state.ledger.reported = [longest(128), -(10**9), -(10**15)]
    return state


def test_a_state_at_capacity_fits_its_changelog_record(cfg):
    state = worst_case_state(cfg)
    encoded = state.to_bytes()
    # key and value, with room to spare for Kafka's record overhead
    assert len(encoded) + len(state.customer_id.encode()) < MAX_STATE_BYTES * 0.8
    assert CustomerState.from_bytes(encoded).to_bytes() == encoded


@pytest.fixture
def small(monkeypatch):
    """Capacities small enough to reach with a handful of events."""
    for module, name, size in [
        (customer, "MAX_REMEMBERED_EVENTS", 100), (silence, "MAX_WATCHES", 2), (first_per, "MAX_VALUES", 2),
    ]:
        monkeypatch.setattr(module, name, size)


def refused(state: CustomerState, ev, cfg) -> str | None:
    applied = state.apply(ev, cfg)
    if applied.outcome is Outcome.OVER_CAPACITY:
        assert applied.error is not None and applied.error.reason == "customer_over_capacity"
        assert applied.deltas == []
        return applied.error.detail
    assert applied.outcome is Outcome.ACCEPTED
    return None


@pytest.mark.usefixtures("small")
def test_remembered_event_ids_per_topic(cfg, monkeypatch):
    monkeypatch.setattr(customer, "MAX_REMEMBERED_EVENTS", 3)
    state = CustomerState(CUSTOMER)
    firsts = [event("document-open", ts=at(hours=h), document_type="pdf") for h in range(3)]
    for ev in firsts:
        assert refused(state, ev, cfg) is None
    assert refused(state, event("document-open", ts=at(hours=4)), cfg) == "document-open: 3 event ids within the de-duplication horizon"
    assert state.apply(firsts[0], cfg).outcome is Outcome.DUPLICATE  # still recognised
    assert refused(state, login(at(hours=4), "procurement"), cfg) is None  # another topic has its own
    # an event that moves the horizon past the oldest id makes room for itself
    assert refused(state, event("document-open", ts=at(days=7, hours=0.5)), cfg) is None
    assert len(state.seen["document-open"]) == 3


@pytest.mark.usefixtures("small")
def test_watched_opportunities(cfg):
    """Full: a new opportunity replaces the watch whose newest update is oldest; no
    event is refused."""
    state = CustomerState(CUSTOMER)
    assert refused(state, progress(at(0), "O1"), cfg) is None
    assert refused(state, progress(at(1), "O2"), cfg) is None
    assert refused(state, communication(at(2), opportunity_id="O1"), cfg) is None  # O1 now newer than O2
    assert refused(state, communication(at(3), opportunity_id="O3"), cfg) is None
    assert sorted(state.rules["risk"].watches) == ["O1", "O3"]
    assert refused(state, progress(at(4), "O4"), cfg) is None  # O3 (day 3) is newer than O1 (day 2)
    assert sorted(state.rules["risk"].watches) == ["O3", "O4"]


@pytest.mark.usefixtures("small")
def test_fired_contracts(cfg):
    state = CustomerState(CUSTOMER)
    assert refused(state, rush(at(0), "K-1"), cfg) is None
    assert refused(state, rush(at(1), "K-2"), cfg) is None
    assert refused(state, rush(at(2), "K-3"), cfg) == "urgency: 2 values of contract_id fired"
    assert refused(state, rush(at(3), "K-1"), cfg) is None  # fired already: adds nothing
    assert refused(state, rush(at(4), "not a contract"), cfg) is None
    assert state.rules["urgency"].fired == {"K-1", "K-2"}


def test_the_score_window_keeps_the_newest_deltas(cfg, monkeypatch):
    monkeypatch.setattr(ledger, "MAX_ENTRIES", 2)
    engine = SignalEngine(catalog(), cfg, DictStore())
    for i, contract in enumerate(["K-1", "K-2", "K-3"]):
        handled = engine.handle("rush-delivery", CUSTOMER.encode(), raw(value("rush-delivery", ts=at(i), contract_id=contract)))
        assert len(handled.deltas) == 1  # never refused: the oldest delta leaves the score early
    (score,) = [o.value for o in handled.outputs if o.topic == "customer-scores"]
    assert (score["net_points"], score["deltas_in_window"]) == (2 * cfg.rule("urgency").points, 2)
    state = engine.store.load(CUSTOMER)
    assert state is not None and [e[3] for e in state.ledger.entries] == [at(1), at(2)]


@pytest.mark.usefixtures("small")
def test_replay_dead_letters_the_same_records(cfg, monkeypatch):
    monkeypatch.setattr(customer, "MAX_REMEMBERED_EVENTS", 3)
    records = [record("document-open", ts=at(hours=h), document_type="pdf") for h in range(5)]
    result = replay(records, catalog(), cfg)
    assert [(r, e.reason) for r, e in result.invalid] == [(records[3], "customer_over_capacity"), (records[4], "customer_over_capacity")]
    assert result.outcomes == {"accepted": 3, "over_capacity": 2}
