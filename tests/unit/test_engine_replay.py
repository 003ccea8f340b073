"""The signal engine (``scoring.engine``) and offline replay (``scoring.replay``)."""

from __future__ import annotations

import io

import orjson
import pytest

from scoring.config import HOUR_MS
from scoring.customer import CustomerState, Outcome
from scoring.deltas import Owner
from scoring.engine import DictStore, SignalEngine
from scoring.replay import LogRecord, read_log, replay, write_deltas
from tests.unit.fixtures import (
    BytesStore,
    Tick,
    at,
    catalog,
    evidence_ids,
    raw,
    raw_record,
    record,
    rules_with,
    run_engine,
    value,
)

H = HOUR_MS
STALE = 48 * H


def small_log() -> list[LogRecord]:
    """One customer who triggers every signal, the risk one only once the clock passes
    ``at(hours=7) + 48 h``."""
    return [
        record("customer-directory", team_id="T1", region="east", rep_id="R1", event_id="dir"),
        record("document-open", event_id="q1", ts=at(hours=0), ip="10.0.0.1"),
        record("document-open", event_id="q2", ts=at(hours=1)),
        record("document-open", event_id="q3", ts=at(hours=2), opportunity_id="O1"),
        record("role-login", event_id="l1", ts=at(hours=3), role="Procurement"),
        record("role-login", event_id="l2", ts=at(hours=4), role="technical"),
        record("role-login", event_id="l3", ts=at(hours=5), role="legal"),
        record("rush-delivery", event_id="k1", ts=at(hours=6), contract_id="K-1"),
        record("stale-update", event_id="p1", ts=at(hours=7), opportunity_id="O1", kind="progress"),
        record(
            "stale-update",
            event_id="c1",
            ts=at(hours=8),
            opportunity_id="O1",
            kind="communication",
            outcome="reconsider",
        ),
    ]


EXPECTED = [
    ("high_intent", 8, at(hours=2), ("q1", "q2", "q3"), "O1"),
    ("decision_chain", 12, at(hours=5), ("l1", "l2", "l3"), None),
    ("urgency", 6, at(hours=6), ("k1",), None),
]
EXPECTED_RISK = ("risk", -5, at(hours=7) + STALE, ("p1", "c1"), "O1")


def brief(deltas):
    return [(d.signal, d.points, d.ts, evidence_ids(d), d.opportunity_id) for d in deltas]


@pytest.mark.parametrize(
    ["now", "expected"],
    [
        pytest.param(None, EXPECTED, id="no final clock"),
        pytest.param(at(hours=7) + STALE, EXPECTED, id="now at exactly 48 h"),
        pytest.param(at(hours=7) + STALE + 1, [*EXPECTED, EXPECTED_RISK], id="now past 48 h"),
        pytest.param(at(days=365), [*EXPECTED, EXPECTED_RISK], id="now far later"),
    ],
)
def test_replay_small_log(now, expected, cfg):
    result = replay(small_log(), catalog(), cfg, now=now)
    assert brief(result.deltas) == expected
    assert result.invalid == []
    assert result.outcomes == {"accepted": 10}
    assert {d.owner for d in result.deltas} == {Owner("T1", "east", "R1")}
    assert all(d.rule_version == cfg.rule(d.signal).version for d in result.deltas)


def test_a_later_event_moves_the_replay_clock(cfg):
    log = [*small_log(), record("role-login", key="C2", customer_id="C2", ts=at(hours=60))]
    assert brief(replay(log, catalog(), cfg).deltas) == [*EXPECTED, EXPECTED_RISK]


def test_directory_records_do_not_move_the_replay_clock(cfg):
    log = [*small_log(), record("customer-directory", key="C2", customer_id="C2", ts=at(days=9))]
    assert brief(replay(log, catalog(), cfg).deltas) == EXPECTED


def test_replay_is_deterministic(cfg):
    first = replay(small_log(), catalog(), cfg, now=at(days=30))
    second = replay(small_log(), catalog(), cfg, now=at(days=30))
    assert [d.delta_id for d in first.deltas] == [d.delta_id for d in second.deltas]
    assert len({d.delta_id for d in first.deltas}) == 4


@pytest.mark.parametrize(
    ["rec", "reason"],
    [
        pytest.param(raw_record("document-open", b"{oops"), "invalid_json", id="invalid json"),
        pytest.param(raw_record("role-login", b"[]"), "not_an_object", id="not an object"),
        pytest.param(raw_record("role-login", None), "missing_value", id="no value"),
        pytest.param(
            raw_record("customer-directory", None, key=None), "key_mismatch", id="keyless tombstone"
        ),
        pytest.param(
            record("role-login", role=None), "missing_field", id="missing field"
        ),
        pytest.param(
            record("document-open", dwell_seconds="long"), "wrong_type", id="wrong type"
        ),
        pytest.param(
            record("rush-delivery", ts="2026-11-26T09:30:00"), "bad_timestamp", id="no offset"
        ),
        pytest.param(
            record("rush-delivery", note="n" * 4097), "field_too_long", id="note too long"
        ),
        pytest.param(
            record("stale-update", kind="update"), "bad_value", id="unknown kind"
        ),
        pytest.param(
            record("rush-delivery", pad="x" * 70_000), "too_large", id="over 64 KiB"
        ),
    ],
)  # fmt: skip
def test_bad_records_end_up_in_invalid(rec, reason, cfg):
    log = [*small_log(), rec]
    result = replay(log, catalog(), cfg)
    assert [(r, e.reason) for r, e in result.invalid] == [(rec, reason)]
    assert result.outcomes == {"accepted": 10, "invalid": 1}
    assert brief(result.deltas) == EXPECTED


def test_outcomes_are_counted(cfg):
    log = small_log()
    log += [log[1], log[2]]  # duplicates
    log.append(record("document-open", ts=at(days=20)))
    log.append(record("document-open", ts=at(days=1)))  # 19 days behind: late
    log.append(raw_record("document-open", b"nope"))
    result = replay(log, catalog(), cfg, wall_clock=at(days=20))
    assert result.outcomes == {"accepted": 11, "duplicate": 2, "late": 1, "invalid": 1}


def test_output_topics_in_a_log_are_skipped(cfg):
    log = [raw_record("signal-deltas", b"{}"), raw_record("team-credibility", b"garbage")]
    result = replay(log, catalog(), cfg)
    assert (result.deltas, result.invalid, result.outcomes) == ([], [], {})


def test_team_inputs_are_validated_but_fire_no_signal(cfg):
    log = [
        record("sales-action"),
        record("forecast-outcome", key="T1"),
        raw_record("sales-action", b"garbage"),
    ]
    result = replay(log, catalog(), cfg)
    assert result.deltas == []
    assert [e.reason for _, e in result.invalid] == ["invalid_json"]
    assert result.outcomes == {"accepted": 2, "invalid": 1}


def test_replay_of_nothing(cfg):
    result = replay([], catalog(), cfg, now=at())
    assert (result.deltas, result.invalid, result.outcomes) == ([], [], {})


def test_directory_tombstone_clears_the_owner(cfg):
    log = [*small_log()[:1], LogRecord("customer-directory", b"C1", None), *small_log()[1:]]
    result = replay(log, catalog(), cfg)
    assert {d.owner for d in result.deltas} == {Owner()}


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(record("role-login", key="C2", customer_id="C2", ts=at(hours=100)),
                     id="another customer moved the clock"),
        pytest.param(record("role-login", ts=at(hours=100)), id="the same customer moved the clock"),
    ],
)  # fmt: skip
def test_replay_fires_risks_already_due_at_the_clock(first, cfg):
    log = [
        first,
        record("stale-update", event_id="p", ts=at(), kind="progress"),
        record("stale-update", event_id="r", ts=at(hours=1), kind="communication",
               outcome="reconsider"),
    ]  # fmt: skip
    risks = [d for d in replay(log, catalog(), cfg).deltas if d.signal == "risk"]
    assert brief(risks) == [("risk", -5, at() + STALE, ("p", "r"), "O1")]


# --- the log format ------------------------------------------------------------


@pytest.mark.parametrize(
    ["line", "expected"],
    [
        pytest.param(
            '{"topic": "role-login", "key": "C1", "value": {"a": 1}}',
            LogRecord("role-login", b"C1", b'{"a":1}'),
            id="json value",
        ),
        pytest.param(
            '{"topic": "role-login", "key": "C1", "value": "{raw"}',
            LogRecord("role-login", b"C1", b"{raw"),
            id="raw string value",
        ),
        pytest.param(
            '{"topic": "customer-directory", "key": "C1", "value": null}',
            LogRecord("customer-directory", b"C1", None),
            id="tombstone",
        ),
        pytest.param(
            '{"topic": "role-login"}', LogRecord("role-login", None, None), id="no key or value"
        ),
        pytest.param(
            '{"topic": "forecast-outcome", "key": 42, "value": []}',
            LogRecord("forecast-outcome", b"42", b"[]"),
            id="non-string key",
        ),
        pytest.param(
            b'{"topic": "role-login", "key": "C1", "value": "x"}',
            LogRecord("role-login", b"C1", b"x"),
            id="bytes line",
        ),
    ],
)
def test_read_log(line, expected):
    assert list(read_log([line])) == [expected]


@pytest.mark.parametrize("line", ["", "   ", "\n", b"\n"])
def test_read_log_skips_blank_lines(line):
    assert list(read_log([line])) == []


@pytest.mark.parametrize(
    "line",
    ["not json", "[]", '"text"', "{}", '{"key": "C1", "value": {}}', "null"],
)
def test_read_log_rejects_malformed_lines(line):
    with pytest.raises(ValueError, match="log line 2"):
        list(read_log(['{"topic": "role-login"}', line]))


def test_replay_from_log_lines(cfg):
    lines = [
        orjson.dumps({"topic": r.topic, "key": r.key.decode(), "value": orjson.loads(r.value)})
        for r in small_log()
    ]
    result = replay(read_log(lines), catalog(), cfg, now=at(days=30))
    assert brief(result.deltas) == [*EXPECTED, EXPECTED_RISK]


def test_write_deltas_writes_one_record_per_line(cfg):
    deltas = replay(small_log(), catalog(), cfg).deltas
    out = io.BytesIO()
    write_deltas(deltas, out, detected_at=at(days=1))
    rows = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [r["delta_id"] for r in rows] == [d.delta_id for d in deltas]
    assert {r["detected_at"] for r in rows} == {"2026-11-27T09:30:00.000Z"}


# --- the engine ------------------------------------------------------------------


def test_handle_outcomes(engine):
    rec = record("role-login")
    assert engine.handle(rec.topic, rec.key, rec.value).outcome is Outcome.ACCEPTED
    assert engine.handle(rec.topic, rec.key, rec.value).outcome is Outcome.DUPLICATE
    bad = engine.handle("role-login", b"C1", b"{")
    assert (bad.outcome, bad.event, bad.deltas, bad.error.reason) == (
        Outcome.INVALID,
        None,
        [],
        "invalid_json",
    )


def test_handle_arms_the_risk_timer(engine):
    run_engine(
        engine,
        [
            record("stale-update", event_id="p", ts=at(), kind="progress"),
            record("stale-update", event_id="r", ts=at(hours=1), kind="communication",
                   outcome="reconsider"),
        ],
    )  # fmt: skip
    assert len(engine.deadlines) == 1
    assert engine.fire_due(at() + STALE).deltas == []
    assert brief(engine.fire_due(at() + STALE + 1).deltas) == [
        ("risk", -5, at() + STALE, ("p", "r"), "O1")
    ]
    assert engine.fire_due(at(days=30)).deltas == []


def test_fire_customer_without_state(engine):
    assert engine.fire_customer("nobody", at()).deltas == []


def test_index_state_rearms_a_recovered_customer(cfg):
    first = SignalEngine(catalog(), cfg, DictStore())
    run_engine(
        first,
        [
            record("stale-update", event_id="p", ts=at(), kind="progress"),
            record("stale-update", event_id="r", ts=at(hours=1), kind="communication",
                   outcome="reconsider"),
        ],
    )  # fmt: skip
    recovered = SignalEngine(catalog(), cfg, first.store)
    assert recovered.fire_due(at(days=30)).deltas == []  # a new worker has an empty index
    recovered.index_state(first.store.states["C1"], partition=3)
    assert brief(recovered.fire_due(at(days=30)).deltas) == [("risk", -5, at() + STALE, ("p", "r"), "O1")]


def test_engine_over_serialised_state_matches_dict_state(cfg):
    steps = [*small_log(), Tick(at(hours=7) + STALE + 1)]
    plain = run_engine(SignalEngine(catalog(), cfg, DictStore()), steps)
    store = BytesStore()
    serialised = run_engine(SignalEngine(catalog(), cfg, store), steps)
    assert brief(serialised) == brief(plain) == [*EXPECTED, EXPECTED_RISK]
    assert [d.owner for d in serialised] == [d.owner for d in plain]
    assert CustomerState.from_bytes(store.raw["C1"]).owner == Owner("T1", "east", "R1")


def test_engine_tombstone_for_unknown_customer(engine):
    handled = engine.handle("customer-directory", b"new", None)
    assert (handled.outcome, handled.outputs) == (Outcome.ACCEPTED, [])
    assert engine.store.load("new") is None  # nothing to forget: no state is made for it


def test_engine_rejects_a_key_other_than_the_payload_customer(engine):
    rec = LogRecord("rush-delivery", b"key-differs", raw(value("rush-delivery", customer_id="C7")))
    handled = engine.handle(rec.topic, rec.key, rec.value)
    assert (handled.outcome, handled.error.reason, handled.deltas) == (Outcome.INVALID, "key_mismatch", [])
    assert engine.store.load("C7") is None and engine.store.load("key-differs") is None


def test_custom_config_flows_through_replay():
    cfg = rules_with(urgency={"points": 1})
    (delta,) = replay([record("rush-delivery")], catalog(), cfg).deltas
    assert (delta.points, delta.rule_version) == (1, cfg.rule("urgency").version)
