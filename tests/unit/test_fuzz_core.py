"""Hostile input through the pure core (issue #10): any bytes, any JSON-ish value, any
key, on any input topic. The engine and replay never raise, every rejected record has a
known reason, and rejected records leave no trace in what the valid ones produce."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.catalog import TEAM_UPDATES
from scoring.customer import Outcome
from scoring.dedup import DEDUP_HORIZON_MS
from scoring.engine import SIGNAL_INPUTS, TEAM_FIELDS, TEAM_INPUTS, DictStore, SignalEngine
from scoring.replay import LogRecord, ReplayResult, replay
from scoring.schema import MAX_MESSAGE_BYTES, REASONS
from scoring.timeutil import MAX_MS
from tests.unit.fixtures import BASE_VALUES, T0, catalog, event_values, raw, rules, to_records

CFG = rules()
INPUTS = (*SIGNAL_INPUTS, *TEAM_INPUTS)
#: the wall clock of the fuzz runs: far enough ahead that no generated valid event is
#: "future", while every time beyond year 9999's start is
WALL = 10**14
FUZZ = settings(
    max_examples=60, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip

ODD_TEXT = st.sampled_from([
    "", " ", "²", "٣", "２０２６-10", "\x00", "\u202e", "\ufeff", "e\u0301", "👍🏽", "\\", '"', "\n",
    "C1", "c1", "C1 ", "T1", "2026-10", "9999-12-30T00:00:00Z", "2026-11-26T09:30:00",
]) | st.text(st.characters(codec="utf-8"), max_size=12)  # fmt: skip
NUMBERS = st.sampled_from([
    0, -1, -0.0, 1e308, -1e308, 5e-324, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63),
    MAX_MS, MAX_MS + 1, 253_402_128_000_000, T0,
]) | st.integers() | st.floats(allow_nan=False, allow_infinity=False)  # fmt: skip
TIMES = st.sampled_from([
    "9999-12-30T00:00:00Z", "2026-11-26T09:30:00", "0001-01-01T00:00:00+00:00", "1969-12-31T23:59:59.999Z",
    "2026-02-30T00:00:00Z", "2026-11-26T09:30:00+25:00", "2026-11-26T09:30:00.123456789Z",
    "２０２６-11-26T09:30:00Z", "+002026-11-26T09:30:00Z", "2026-W48-4T09:30Z", "2026-11-26T09:30:00+14:00",
]) | NUMBERS  # fmt: skip
JSONISH = st.recursive(
    st.none() | st.booleans() | NUMBERS | ODD_TEXT | TIMES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=8,
)
NASTY_BYTES = st.sampled_from([
    b"", b"null", b"NaN", b'{"ts": NaN}', b'{"ts": Infinity}', b"\xff\xfe{}", b'\xef\xbb\xbf{}', b'{"a": "\\ud800"}',
    b"[" * 10_000, b'{"event_id": "x"' + b", " * 1000, b"{}" * 3, b'{"customer_id": "C1"}',
]) | st.binary(max_size=64)  # fmt: skip


def _field_names(topic: str) -> list[str]:
    return [*catalog().schema(topic).names, "kind", "pad", "__proto__"]


@st.composite
def hostile_values(draw: st.DrawFn, topic: str) -> bytes:
    """A value of ``topic``: raw bytes, any JSON-ish value, or a valid one mutated (fields
    replaced, removed, added; strings near their limits; padding near 64 KiB)."""
    shape = draw(st.sampled_from(["bytes", "json", "mutated", "mutated", "mutated"]))
    if shape == "bytes":
        return draw(NASTY_BYTES)
    if shape == "json":
        return raw(draw(JSONISH))
    doc: dict[str, Any] = {"event_id": draw(ODD_TEXT), "ts": T0, "customer_id": "C1", **BASE_VALUES[topic]}
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(_field_names(topic)))
        action = draw(st.sampled_from(["set", "set", "drop", "near_limit"]))
        if action == "drop":
            doc.pop(name, None)
        elif action == "near_limit":
            spec = next((f for f in catalog().schema(topic).fields if f.name == name), None)
            limit = spec.max_length if spec is not None and spec.max_length else 128
            doc[name] = draw(st.sampled_from(["x", "\x01", "é", "👍"])) * (limit + draw(st.integers(-1, 1)))
        else:
            doc[name] = draw(JSONISH | TIMES)
    payload = raw(doc)
    if draw(st.integers(0, 9)) == 0:  # padded to the size limit, give or take a byte
        doc["pad"] = ""
        size = MAX_MESSAGE_BYTES + draw(st.integers(-1, 1))
        doc["pad"] = "p" * max(0, size - len(raw(doc)))
        payload = raw(doc)
    return payload


KEYS = st.none() | st.sampled_from([b"", b"C1", b"C2", b"T1", b"c1", b"C1 ", b"\xff", b"\xc3"]) | st.binary(max_size=8)


@st.composite
def hostile_records(draw: st.DrawFn) -> LogRecord:
    topic = draw(st.sampled_from(INPUTS))
    payload = None if draw(st.integers(0, 19)) == 0 else draw(hostile_values(topic))
    return LogRecord(topic, draw(KEYS), payload)


def _check(handled_error: Any, outcome: Outcome) -> None:
    if outcome is Outcome.INVALID:
        assert handled_error is not None and handled_error.reason in REASONS, handled_error
    else:
        assert handled_error is None


@FUZZ
@given(st.lists(hostile_records(), min_size=1, max_size=8))
def test_the_engine_never_raises_and_every_rejection_has_a_known_reason(records):
    engine = SignalEngine(catalog(), CFG, DictStore(), clock=lambda: WALL)
    for rec in records:
        handled = engine.handle(rec.topic, rec.key, rec.value)
        _check(handled.error, handled.outcome)
        for output in handled.outputs:
            orjson.dumps(output.value)  # publishable
            if output.topic == TEAM_UPDATES and rec.topic in TEAM_INPUTS:
                assert set(output.value) <= {*TEAM_FIELDS[rec.topic], "kind"}
                assert len(orjson.dumps(output.value)) < 4_096  # declared fields only: bounded


@FUZZ
@given(st.lists(hostile_records(), max_size=12), st.sampled_from([None, WALL]))
def test_replay_over_a_hostile_log_never_raises(records, now):
    result = replay(records, catalog(), CFG, now=now, wall_clock=WALL, heatmap_at=now)
    assert all(error.reason in REASONS for _, error in result.invalid)
    assert sum(result.outcomes.values()) == len(records)
    for output in result.outputs:
        orjson.dumps(output.value)


# --- rejected records leave no trace -------------------------------------------------

#: One defect each record gets for sure, whatever else is wrong with it.
DEFECTS = ("key", "no_key", "bad_json", "missing", "too_long", "future", "no_offset", "not_object", "too_large")


@st.composite
def defective_records(draw: st.DrawFn) -> LogRecord:
    """A record that must be rejected: a valid value with one certain defect (and maybe
    hostile unknown fields on top)."""
    topic = draw(st.sampled_from(INPUTS))
    key_field = catalog()[topic].key
    doc: dict[str, Any] = {"event_id": f"h-{draw(st.integers(0, 10**6))}", "ts": T0, "customer_id": "C1",
                           **BASE_VALUES[topic]}  # fmt: skip
    doc.update(draw(st.dictionaries(st.sampled_from(["extra", "kind2", "ÿ", "pad"]), JSONISH, max_size=2)))
    key: bytes | None = str(doc[key_field]).encode()
    defect = draw(st.sampled_from(DEFECTS))
    if defect == "key":
        key = draw(st.sampled_from([b"C2", b"c1", b"C1 ", b"\xff", b""]))
    elif defect == "no_key":
        key = None
    elif defect == "missing":
        doc.pop(draw(st.sampled_from([f.name for f in catalog().schema(topic).fields if f.required])))
    elif defect == "too_long":
        field = draw(st.sampled_from([f for f in catalog().schema(topic).fields if f.max_length]))
        doc[field.name] = draw(st.sampled_from(["x", "\x01", "👍"])) * (field.max_length + 1)
    elif defect == "future":
        doc["ts"] = draw(st.sampled_from(["9999-12-30T00:00:00Z", MAX_MS, WALL + DEDUP_HORIZON_MS]))
    elif defect == "no_offset":
        doc["ts"] = "2026-11-26T09:30:00"
    payload = raw(doc)
    if defect == "bad_json":
        payload = payload[: draw(st.integers(0, len(payload) - 1))]
    elif defect == "not_object":
        payload = raw([doc])
    elif defect == "too_large":
        payload = payload[:-1] + b', "pad2": "' + b"p" * MAX_MESSAGE_BYTES + b'"}'
    return LogRecord(topic, key, payload)


@st.composite
def valid_team_records(draw: st.DrawFn) -> list[LogRecord]:
    """Valid team inputs with extreme but valid values."""
    out = []
    for i in range(draw(st.integers(0, 4))):
        ts = T0 + draw(st.integers(-40, 40)) * 86_400_000
        if draw(st.booleans()):
            doc = {"event_id": f"a{i}", "ts": ts, "customer_id": "C1", "opportunity_id": "O1", "team_id": "T1",
                   "action": draw(st.sampled_from(["demo", "call"])), "due_ts": ts + draw(st.integers(-2, 2)) * 3_600_000,
                   "done_ts": draw(st.sampled_from([None, ts, 0]))}  # fmt: skip
            out.append(LogRecord("sales-action", b"C1", raw(doc)))
        else:
            amount = st.sampled_from([5e-324, 1e-300, 1.0, 1e15, 1e308, 2**64])
            doc = {"event_id": f"f{i}", "ts": ts, "team_id": "T1", "period": f"20{draw(st.integers(10, 40))}-0{i + 1}",
                   "forecast_amount": draw(amount), "actual_amount": draw(st.sampled_from([0, 1e308]) | amount)}  # fmt: skip
            out.append(LogRecord("forecast-outcome", b"T1", raw(doc)))
    return out


def _summary(result: ReplayResult) -> tuple[Any, ...]:
    return (
        [d.to_record(0) for d in result.deltas],
        [(o.topic, o.key, o.value) for o in result.outputs],
    )


@FUZZ
@given(event_values(max_size=20), valid_team_records(), st.lists(defective_records(), max_size=8), st.data())
def test_valid_records_among_rejected_ones_give_exactly_their_own_results(pairs, team, defective, data):
    valid = to_records(pairs) + team
    mixed = list(valid)
    for rec in defective:
        mixed.insert(data.draw(st.integers(0, len(mixed))), rec)
    alone = replay(valid, catalog(), CFG, now=WALL, wall_clock=WALL)
    among = replay(mixed, catalog(), CFG, now=WALL, wall_clock=WALL)
    assert alone.invalid == []
    assert [rec for rec, _ in among.invalid] == [r for r in mixed if any(r is d for d in defective)]
    assert all(error.reason in REASONS for _, error in among.invalid)
    assert _summary(among) == _summary(alone)


@FUZZ
@given(event_values(max_size=20), valid_team_records(), st.data())
def test_unknown_fields_change_nothing(pairs, team, data):
    """SPEC keeps unknown fields on a valid record; nothing derived from it may differ."""
    valid = to_records(pairs) + team
    extras = st.dictionaries(st.sampled_from(["extra", "kind", "nested", "ip2"]), JSONISH, min_size=1, max_size=3)
    padded = []
    for rec in valid:
        doc = orjson.loads(rec.value)
        padded.append(LogRecord(rec.topic, rec.key, raw({**data.draw(extras), **doc})))
    assert _summary(replay(padded, catalog(), CFG, now=WALL, wall_clock=WALL)) == _summary(
        replay(valid, catalog(), CFG, now=WALL, wall_clock=WALL)
    )
