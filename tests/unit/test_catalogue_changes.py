"""Changing the catalogue: a draft with more signals of the existing kinds and other
points gives exactly the hand-computed deltas; a fifth kind is one class and one
registry entry; a restart with a changed catalogue keeps, restarts or drops each
rule's state by what changed in its definition."""

from __future__ import annotations

from typing import Any

import pytest

from scoring.customer import CustomerState
from scoring.engine import SignalEngine
from scoring.events import Event, Evidence
from scoring.patterns import KINDS
from scoring.patterns.base import Firing, Pattern
from scoring.patterns.spec import Spec
from scoring.replay import replay
from scoring.signal_catalogue import SignalCatalogue, build_signal_catalogue
from tests.unit.fixtures import (
    BytesStore,
    at,
    catalog,
    default_rules_doc,
    quote_open,
    record,
    rules,
    rules_with,
)

CUSTOMER = "C1"
MIN = 60_000

DRAFT_SIGNALS: list[dict[str, Any]] = [
    {"id": "long_read", "points": 3, "topic": "document-open", "pattern": "streak",
     "match": {"document_type": {"in": ["contract", "proposal"]}, "dwell_seconds": {"ge": 600}},
     "count": 2, "within": "2d"},
    {"id": "exec_sponsor", "points": 4, "topic": "role-login", "pattern": "all_of",
     "field": "role", "values": ["executive", "legal"], "within": "1d"},
    {"id": "first_note", "points": 1, "topic": "rush-delivery", "pattern": "first_per",
     "field": "note", "regex": "(?i).*asap.*"},
    {"id": "silent_proposal", "points": -2, "topic": "stale-update", "pattern": "silence",
     "per": "opportunity_id", "clock": {"kind": "progress"},
     "while": {"kind": "communication", "outcome": {"in": ["no_reply", "reconsider"]}}, "after": "24h"},
]  # fmt: skip


def draft() -> SignalCatalogue:
    doc = default_rules_doc()
    doc["signals"][0]["points"] = 10  # high_intent: 8 -> 10
    doc["signals"] += DRAFT_SIGNALS
    return build_signal_catalogue(doc, catalog())


def log() -> list[Any]:
    def doc_open(eid: str, hours: int, kind: str, dwell: int) -> Any:
        return record("document-open", event_id=eid, ts=at(hours=hours), document_type=kind, dwell_seconds=dwell)

    return [
        doc_open("d1", 0, "quote", 300),
        doc_open("d2", 1, "contract", 700),  # long_read: 1 (a quote open is no high_intent break)
        doc_open("d3", 2, "quote", 300),  # long_read: an in-scope miss, the streak breaks
        doc_open("d4", 3, "proposal", 600),  # long_read: 1
        doc_open("d5", 4, "Contract", 900),  # long_read fires (d4, d5)
        doc_open("d6", 5, "quote", 300),  # high_intent fires (d1, d3, d6)
        record("role-login", event_id="l1", ts=at(hours=6), role="legal"),
        record("role-login", event_id="l2", ts=at(hours=8), role="Executive"),  # exec_sponsor fires (l2, l1)
        record("rush-delivery", event_id="u1", ts=at(hours=9), contract_id="K-1", note="ASAP please"),  # urgency, first_note
        record("rush-delivery", event_id="u2", ts=at(hours=10), contract_id="K-1", note="ASAP please"),  # both fired already
        record("stale-update", event_id="p1", ts=at(hours=11), opportunity_id="O1", kind="progress"),
        record("stale-update", event_id="c1", ts=at(hours=12), opportunity_id="O1", kind="communication", outcome="no_reply"),
    ]


def brief(deltas: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (d.signal, d.points, (d.ts - at()) // MIN, tuple(e.event_id for e in d.evidence), d.opportunity_id)
        for d in deltas
    ]


def test_a_draft_of_existing_kinds_gives_the_hand_computed_deltas() -> None:
    result = replay(log(), catalog(), draft(), now=at(hours=40))
    assert result.invalid == []
    assert brief(result.deltas) == [
        ("long_read", 3, 4 * 60, ("d4", "d5"), None),
        ("high_intent", 10, 5 * 60, ("d1", "d3", "d6"), None),
        ("exec_sponsor", 4, 8 * 60, ("l2", "l1"), None),
        ("urgency", 6, 9 * 60, ("u1",), None),
        ("first_note", 1, 9 * 60, ("u1",), None),
        ("silent_proposal", -2, 35 * 60, ("p1", "c1"), "O1"),  # progress + 24 h
    ]
    default = replay(log(), catalog(), rules(), now=at(hours=40))
    assert brief(default.deltas) == [
        ("high_intent", 8, 5 * 60, ("d1", "d3", "d6"), None),
        ("urgency", 6, 9 * 60, ("u1",), None),
    ]


class CountWithin(Pattern):
    """A fifth kind: ``count`` events matching ``match`` within ``within``."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.match = spec.optional_condition("match")
        self.count = spec.integer("count", minimum=1)
        self.within_ms = spec.duration("within")

    def new_state(self) -> list[Evidence]:
        return []

    def accumulate(self, state: list[Evidence], event: Event) -> list[Firing]:
        if self.match is not None and not self.match(event.fields):
            return []
        state[:] = [e for e in state if event.ts - e.ts <= self.within_ms] + [event.evidence]
        if len(state) < self.count:
            return []
        evidence = tuple(state)
        state.clear()
        return [Firing(self, event.ts, evidence)]

    def to_json(self, state: list[Evidence]) -> list[Any]:
        return [e.to_list() for e in state]

    def from_json(self, data: list[Any]) -> list[Evidence]:
        return [Evidence.from_list(row) for row in data]


def test_a_fifth_kind_is_one_class_and_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "count_within", CountWithin)
    doc = default_rules_doc()
    doc["signals"].append({"id": "busy_buyer", "points": 2, "topic": "role-login", "pattern": "count_within",
                           "match": {"user_id": {"regex": "buyer-.*"}}, "count": 3, "within": "1h"})  # fmt: skip
    cat = build_signal_catalogue(doc, catalog())
    logins = [
        record("role-login", event_id=f"b{i}", ts=at(ms=minutes * MIN), role="other", user_id=user)
        for i, (minutes, user) in enumerate([(0, "buyer-1"), (10, "seller"), (30, "buyer-2"), (61, "buyer-3"), (70, "buyer-1")])
    ]
    engine = SignalEngine(catalog(), cat, BytesStore())  # state through bytes between events
    deltas = [d for r in logins for d in engine.receive(r.topic, r.key, r.value).deltas]
    # b0 is 61 min older than b3: out of the hour, so b2, b3, b4
    assert brief(deltas) == [("busy_buyer", 2, 70, ("b2", "b3", "b4"), None)]
    assert deltas[0].rule_version == cat.rule("busy_buyer").version


def engine_on(store: BytesStore, cat: SignalCatalogue) -> SignalEngine:
    """A worker (re)started with ``cat`` over the state ``store`` holds."""
    return SignalEngine(catalog(), cat, store)


def send(engine: SignalEngine, *records: Any) -> list[tuple[str, int]]:
    return [(d.signal, d.points) for r in records for d in engine.receive(r.topic, r.key, r.value).deltas]


def quote(eid: str, hours: float) -> Any:
    return record("document-open", event_id=eid, ts=at(hours=hours))


def login(eid: str, hours: float, role: str) -> Any:
    return record("role-login", event_id=eid, ts=at(hours=hours), role=role)


def test_a_restart_with_a_changed_catalogue_keeps_restarts_or_drops_each_rules_state() -> None:
    store = BytesStore()
    before = engine_on(store, rules())
    assert send(
        before,
        quote("q1", 0), quote("q2", 1),  # high_intent: 2 of 3
        login("l1", 2, "procurement"), login("l2", 3, "technical"),  # decision_chain: 2 of 3
        record("rush-delivery", event_id="u1", ts=at(hours=4), contract_id="K-1"),  # urgency fires
        record("stale-update", event_id="p1", ts=at(hours=5), opportunity_id="O1", kind="progress"),
        record("stale-update", event_id="c1", ts=at(hours=6), opportunity_id="O1", kind="communication", outcome="reconsider"),
    ) == [("urgency", 6)]  # fmt: skip
    changed = rules_with(decision_chain={"within": "15d"}, risk={"points": -7})
    doc = default_rules_doc()
    doc["signals"] = [e for e in doc["signals"] if e["id"] != "urgency"]
    doc["signals"][1]["within"], doc["signals"][2]["points"] = "15d", -7
    after = engine_on(store, build_signal_catalogue(doc, catalog()))
    assert [r.rule_id for r in after.rules.rules] == ["high_intent", "decision_chain", "risk"]
    assert changed.rule("risk").version == after.rules.rule("risk").version
    # unchanged: the third open completes the streak begun before the restart
    assert send(after, quote("q3", 7)) == [("high_intent", 8)]
    # changed definition: afresh, legal alone is not the chain
    assert send(after, login("l3", 8, "legal")) == []
    # points only: the armed watch is kept and fires with the new points
    assert [(d.signal, d.points, d.ts) for d in after.tick(CUSTOMER, at(hours=54)).deltas] == [("risk", -7, at(hours=53))]
    # removed: its state is gone from the stored value; back again, it starts afresh
    assert "urgency" not in store.load(CUSTOMER).stored  # type: ignore[union-attr]
    again = engine_on(store, rules())
    assert send(again, record("rush-delivery", event_id="u2", ts=at(hours=60), contract_id="K-1")) == [("urgency", 6)]


def test_a_state_in_memory_moves_to_another_catalogue_as_a_stored_one_would() -> None:

    state = CustomerState(CUSTOMER)
    first, points_only, reshaped = rules(), rules_with(high_intent={"points": 1}), rules_with(high_intent={"count": 4})
    state.apply(quote_open(at(hours=0)), first)
    state.apply(quote_open(at(hours=1)), points_only)  # kept: 2 of 3
    assert len(state.rules["high_intent"].events) == 2
    assert [d.points for d in state.apply(quote_open(at(hours=2)), points_only).deltas] == [1]
    state.apply(quote_open(at(hours=3)), first)
    state.apply(quote_open(at(hours=4)), reshaped)  # afresh: 1 of 4
    assert len(state.rules["high_intent"].events) == 1
