"""Test-data factories for the unit suite: valid input values, validated events,
replay log records, a serialising state store and hypothesis strategies.

Every builder goes through the real schema (``topics.yaml``), so an event built
here is exactly what a worker would see after validation.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
import yaml
from hypothesis import strategies as st

from scoring.bulkhead import Journal
from scoring.catalog import BEHAVIOUR_TOPICS, DEFAULT_PATH, DIRECTORY_TOPIC, Catalog, load_catalog
from scoring.config import DAY_MS, HOUR_MS
from scoring.customer import CustomerState
from scoring.deltas import SignalDelta
from scoring.engine import SignalEngine
from scoring.events import Event, decode_event
from scoring.patterns.base import Firing
from scoring.replay import LogRecord
from scoring.signal_catalogue import DEFAULT_PATH as DEFAULT_RULES
from scoring.signal_catalogue import SignalCatalogue, build_signal_catalogue

SECOND_MS = 1_000
MINUTE_MS = 60_000
#: 2026-11-26T09:30:00Z
T0 = 1_795_685_400_000
T0_ISO = "2026-11-26T09:30:00.000Z"
CUSTOMER = "C1"

#: Pass as a field value to leave the field out of the JSON value entirely.
OMIT: Any = object()
_FRESH: Any = object()

#: Signal -> its default points (SPEC "Signal rules").
SPEC_POINTS = {"high_intent": 8, "decision_chain": 12, "urgency": 6, "risk": -5}

#: Besides the common fields, a valid value of every input topic.
BASE_VALUES: dict[str, dict[str, Any]] = {
    "document-open": {"document_type": "quote", "document_id": "Q-1", "dwell_seconds": 300},
    "role-login": {"user_id": "u1", "role": "procurement"},
    "rush-delivery": {"contract_id": "K-1", "note": "asap please"},
    "stale-update": {"opportunity_id": "O1", "kind": "progress"},
    "customer-directory": {"team_id": "T1", "region": "east", "rep_id": "R1"},
    "sales-action": {"opportunity_id": "O1", "team_id": "T1", "action": "demo", "due_ts": T0},
    "forecast-outcome": {
        "team_id": "T1",
        "period": "2026-10",
        "forecast_amount": 100.0,
        "actual_amount": 90.0,
    },
}

_ids = itertools.count(1)


def at(days: float = 0, hours: float = 0, ms: int = 0) -> int:
    """Epoch ms ``days``/``hours``/``ms`` after :data:`T0`."""
    return T0 + int(days * DAY_MS) + int(hours * HOUR_MS) + ms


def next_id(prefix: str = "e") -> str:
    return f"{prefix}{next(_ids)}"


@cache
def catalog() -> Catalog:
    """The project's own ``topics.yaml`` (ignores ``CREDENCE_TOPICS_FILE``)."""
    return load_catalog(DEFAULT_PATH)


def default_rules_doc() -> dict[str, Any]:
    """SPEC's default ``rules.yaml``, parsed (a fresh copy to edit)."""
    doc: dict[str, Any] = yaml.safe_load(DEFAULT_RULES.read_text())
    return doc


@cache
def rules() -> SignalCatalogue:
    """SPEC's default signal catalogue (the project's ``rules.yaml``)."""
    return build_signal_catalogue(default_rules_doc(), catalog())


def rules_with(**changes: dict[str, Any]) -> SignalCatalogue:
    """The default catalogue with some rules' keys changed: ``rules_with(risk={"points": -9})``."""
    doc = default_rules_doc()
    for entry in doc["signals"]:
        entry.update(changes.pop(entry["id"], {}))
    assert not changes, f"no such rule: {sorted(changes)}"
    return build_signal_catalogue(doc, catalog())


def value(
    topic: str,
    *,
    event_id: Any = _FRESH,
    ts: Any = T0,
    customer_id: Any = CUSTOMER,
    **fields: Any,
) -> dict[str, Any]:
    """A valid JSON value for ``topic``; keyword arguments override (``OMIT`` removes)."""
    doc = {
        "event_id": next_id() if event_id is _FRESH else event_id,
        "ts": ts,
        "customer_id": customer_id,
        **BASE_VALUES[topic],
        **fields,
    }
    return {k: v for k, v in doc.items() if v is not OMIT}


def raw(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError:  # integers beyond 64 bits, which JSON allows
        return json.dumps(doc).encode()


def event(topic: str, **kw: Any) -> Event:
    """A validated :class:`Event` (decoded from JSON through the topic's schema)."""
    return decode_event(catalog().schema(topic), raw(value(topic, **kw)))


def quote_open(ts: int, dwell: float = 300, *, document_type: str = "quote", **kw: Any) -> Event:
    return event("document-open", ts=ts, dwell_seconds=dwell, document_type=document_type, **kw)


def login(ts: int, role: str, **kw: Any) -> Event:
    return event("role-login", ts=ts, role=role, **kw)


def rush(ts: int, contract_id: Any = "K-1", **kw: Any) -> Event:
    return event("rush-delivery", ts=ts, contract_id=contract_id, **kw)


def progress(ts: int, opportunity_id: str = "O1", **kw: Any) -> Event:
    return event("stale-update", ts=ts, opportunity_id=opportunity_id, kind="progress", **kw)


def communication(
    ts: int, outcome: Any = "reconsider", opportunity_id: str = "O1", **kw: Any
) -> Event:
    return event(
        "stale-update",
        ts=ts,
        opportunity_id=opportunity_id,
        kind="communication",
        outcome=outcome,
        **kw,
    )


def directory(
    team_id: str = "T1", region: str = "east", rep_id: str = "R1", **kw: Any
) -> Event:
    return event(DIRECTORY_TOPIC, team_id=team_id, region=region, rep_id=rep_id, **kw)


def record(topic: str, key: str | None = CUSTOMER, **kw: Any) -> LogRecord:
    """A replay log record holding a valid value of ``topic``."""
    return LogRecord(topic, None if key is None else key.encode(), raw(value(topic, **kw)))


def raw_record(topic: str, payload: bytes | None, key: str | None = CUSTOMER) -> LogRecord:
    return LogRecord(topic, None if key is None else key.encode(), payload)


@dataclass(frozen=True)
class Tick:
    """A clock step in a scripted scenario: fire whatever is due at ``now``."""

    now: int


def feed(
    state: CustomerState, steps: Iterable[Event | Tick], cfg: SignalCatalogue
) -> list[tuple[int, SignalDelta]]:
    """Run events and ticks through one customer's state; ``(step index, delta)`` pairs."""
    out: list[tuple[int, SignalDelta]] = []
    for i, step in enumerate(steps):
        deltas = state.fire_due(step.now, cfg) if isinstance(step, Tick) else state.apply(step, cfg).deltas
        out += [(i, d) for d in deltas]
    return out


def decoded(raw: bytes, catalogue: SignalCatalogue) -> CustomerState:
    """A stored state as the engine uses it: decoded and bound to the catalogue."""
    state = CustomerState.from_bytes(raw)
    state.bind(catalogue)
    return state


class RuleRun:
    """One rule of a catalogue over one customer's state, event by event."""

    def __init__(self, catalogue: SignalCatalogue, rule_id: str) -> None:
        self.rule = catalogue.rule(rule_id)
        self.state = self.rule.new_state()

    def __call__(self, event: Event) -> Firing | None:
        """Accumulate ``event``; the firing it completes, if any."""
        firings = self.rule.accumulate(self.state, event)
        assert len(firings) <= 1
        return firings[0] if firings else None

    def round_trips(self) -> bool:
        """Whether the state survives its JSON form (through bytes, as stored)."""
        return self.rule.from_json(orjson.loads(orjson.dumps(self.rule.to_json(self.state)))) == self.state


def evidence_ids(delta: SignalDelta) -> tuple[str, ...]:
    return tuple(e.event_id for e in delta.evidence)


def summary(delta: SignalDelta) -> tuple[Any, ...]:
    """What a delta says, without ownership or rule version."""
    return (
        delta.delta_id,
        delta.customer_id,
        delta.signal,
        delta.points,
        delta.ts,
        evidence_ids(delta),
        delta.opportunity_id,
    )


class BytesStore:
    """A state store that keeps only serialised bytes, like a Faust table changelog:
    every load is a fresh :meth:`CustomerState.from_bytes`."""

    def __init__(self) -> None:
        self.raw: dict[str, bytes] = {}
        self.journal = Journal()  # every save is a checkpoint: it never holds a saved record

    def load(self, customer_id: str) -> CustomerState | None:
        self.journal.loaded(customer_id)
        data = self.raw.get(customer_id)
        return None if data is None else CustomerState.from_bytes(data)

    def save(self, state: CustomerState) -> None:
        self.raw[state.customer_id] = state.to_bytes()
        self.journal.discard(state.customer_id)

    def checkpoint(self, customer_id: str) -> bytes | None:
        return self.raw.get(customer_id)

    def restore(self, customer_id: str, state: CustomerState | None) -> None:
        pass  # nothing is held decoded


def run_engine(
    engine: SignalEngine, steps: Iterable[LogRecord | Tick]
) -> list[SignalDelta]:
    """Drive an engine like a live worker: records through ``handle``, ticks through
    ``fire_due``."""
    deltas: list[SignalDelta] = []
    for step in steps:
        if isinstance(step, Tick):
            deltas += engine.fire_due(step.now).deltas
        else:
            deltas += engine.handle(step.topic, step.key, step.value).deltas
    return deltas


# --- hypothesis strategies ------------------------------------------------------

#: Gaps between consecutive event times: around every rule boundary, and backwards.
#: Small gaps are repeated so that patterns complete often.
GAPS_MS = (
    0, 1, MINUTE_MS, HOUR_MS, HOUR_MS, 6 * HOUR_MS, 6 * HOUR_MS, DAY_MS, DAY_MS,
    2 * DAY_MS - 1, 2 * DAY_MS, 2 * DAY_MS + 1, 3 * DAY_MS, 7 * DAY_MS, 8 * DAY_MS,
    -HOUR_MS, -3 * DAY_MS,
)  # fmt: skip

_TOPIC_FIELDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "document-open": st.fixed_dictionaries(
        {
            "document_type": st.sampled_from(["quote", "quote", "Quote", "contract"]),
            "document_id": st.just("Q-1"),
            "dwell_seconds": st.sampled_from([600, 600, 600, 121, 120.5, 120, 0]),
            "opportunity_id": st.sampled_from([OMIT, "O1"]),
        }
    ),
    "role-login": st.fixed_dictionaries(
        {
            "user_id": st.sampled_from(["u1", "u2"]),
            "role": st.sampled_from(["procurement", "Technical", "LEGAL", "finance"]),
        }
    ),
    "rush-delivery": st.fixed_dictionaries(
        {"contract_id": st.sampled_from([OMIT, None, "", "  ", "K-1", "K-2", "no good"])}
    ),
    "stale-update": st.fixed_dictionaries(
        {
            "opportunity_id": st.sampled_from(["O1", "O1", "O2"]),
            "kind": st.sampled_from(["progress", "communication"]),
            "outcome": st.sampled_from(["reconsider", "reconsider", "Reconsider", "positive", OMIT]),
        }
    ),
    DIRECTORY_TOPIC: st.fixed_dictionaries(
        {
            "team_id": st.sampled_from(["T1", "T2"]),
            "region": st.just("east"),
            "rep_id": st.just("R1"),
        }
    ),
}


@st.composite
def event_values(
    draw: st.DrawFn, max_size: int = 30, customers: tuple[str, ...] = ("C1", "C1", "C1", "C2")
) -> list[tuple[str, dict[str, Any]]]:
    """``(topic, value)`` pairs of valid signal-input events, event ids unique.

    Events come in short bursts of one customer and topic, so that the rules' patterns
    complete often.
    """
    topics = st.sampled_from((*BEHAVIOUR_TOPICS, *BEHAVIOUR_TOPICS, DIRECTORY_TOPIC))
    n = draw(st.integers(0, max_size))
    ts = T0
    out: list[tuple[str, dict[str, Any]]] = []
    while len(out) < n:
        topic = draw(topics)
        customer = draw(st.sampled_from(customers))
        for _ in range(min(draw(st.sampled_from([1, 2, 3, 3, 4])), n - len(out))):
            ts += draw(st.sampled_from(GAPS_MS))
            fields = draw(_TOPIC_FIELDS[topic])
            doc = {"event_id": f"e{len(out)}", "ts": ts, "customer_id": customer}
            doc.update({k: v for k, v in fields.items() if v is not OMIT})
            out.append((topic, doc))
    return out


def to_events(pairs: Iterable[tuple[str, dict[str, Any]]]) -> list[Event]:
    return [decode_event(catalog().schema(t), raw(v)) for t, v in pairs]


def to_records(pairs: Iterable[tuple[str, dict[str, Any]]]) -> list[LogRecord]:
    return [LogRecord(t, v["customer_id"].encode(), raw(v)) for t, v in pairs]


#: Undecodable payloads a log may hold, each with the reason it must get.
BAD_PAYLOADS: tuple[tuple[bytes | None, str], ...] = (
    (b"{not json", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"event_id": "x", "customer_id": "C1"}', "missing_field"),
    (b'{"event_id": "x", "ts": "2026-11-26T09:30:00", "customer_id": "C1"}', "bad_timestamp"),
)


@st.composite
def replay_logs(draw: st.DrawFn, max_size: int = 30) -> list[LogRecord]:
    """A replay log: valid events with a few undecodable records mixed in."""
    records = to_records(draw(event_values(max_size=max_size)))
    for _ in range(draw(st.integers(0, 3))):
        payload, _reason = draw(st.sampled_from(BAD_PAYLOADS))
        topic = draw(st.sampled_from(BEHAVIOUR_TOPICS))
        records.insert(draw(st.integers(0, len(records))), raw_record(topic, payload))
    return records
