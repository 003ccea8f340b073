"""Record validation built from ``topics.yaml`` (``scoring.schema``, ``scoring.catalog``,
``scoring.events.decode_event``): SPEC "Input topics" and "Bad input"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from scoring.catalog import BEHAVIOUR_TOPICS, DIRECTORY_TOPIC
from scoring.events import decode_event
from scoring.schema import MAX_MESSAGE_BYTES, REASONS, FieldSpec, InvalidEvent, RecordSchema
from scoring.timeutil import parse_ts
from tests.unit.fixtures import BASE_VALUES, OMIT, T0, catalog, raw, value

INPUT_TOPICS = (
    "document-open",
    "role-login",
    "rush-delivery",
    "stale-update",
    "customer-directory",
    "sales-action",
    "forecast-outcome",
)

#: Required fields per input topic, as SPEC "Input topics" and topics.yaml declare them.
REQUIRED = {
    "document-open": {"event_id", "ts", "customer_id", "document_type", "document_id", "dwell_seconds"},
    "role-login": {"event_id", "ts", "customer_id", "user_id", "role"},
    "rush-delivery": {"event_id", "ts", "customer_id"},
    "stale-update": {"event_id", "ts", "customer_id", "opportunity_id", "kind"},
    # compacted reference data: topics.yaml relaxes event_id and ts
    "customer-directory": {"customer_id", "team_id", "region", "rep_id"},
    "sales-action": {"event_id", "ts", "customer_id", "opportunity_id", "team_id", "action", "due_ts"},
    "forecast-outcome": {"event_id", "ts", "team_id", "period", "forecast_amount", "actual_amount"},
}  # fmt: skip

COMMON_OPTIONAL = {"ip", "source", "team_id", "region", "rep_id"}


def schema(topic: str) -> RecordSchema:
    return catalog().schema(topic)


def reason_of(topic: str, payload: bytes | None) -> str:
    with pytest.raises(InvalidEvent) as info:
        schema(topic).decode(payload)
    return info.value.reason


def fields_of(predicate) -> list[tuple[str, FieldSpec]]:
    return [
        (topic, spec)
        for topic in INPUT_TOPICS
        for spec in schema(topic).fields
        if predicate(spec)
    ]


def padded_to(topic: str, size: int) -> bytes:
    """A valid value of ``topic`` padded with an unknown field to exactly ``size`` bytes."""
    doc = value(topic, pad="")
    doc["pad"] = "x" * (size - len(raw(doc)))
    payload = raw(doc)
    assert len(payload) == size
    return payload


# --- the catalog ---------------------------------------------------------------


def test_catalog_declares_every_spec_input_topic():
    assert sorted(t.name for t in catalog().inputs) == sorted(INPUT_TOPICS)
    assert set(BEHAVIOUR_TOPICS) | {DIRECTORY_TOPIC} <= set(INPUT_TOPICS)


@pytest.mark.parametrize("topic", INPUT_TOPICS)
def test_required_fields_match_spec(topic):
    declared = {f.name for f in schema(topic).fields if f.required}
    assert declared == REQUIRED[topic]
    assert {f.name for f in schema(topic).fields} >= COMMON_OPTIONAL


@pytest.mark.parametrize(
    ["topic", "key", "compacted"],
    [
        ("document-open", "customer_id", False),
        ("customer-directory", "customer_id", True),
        ("forecast-outcome", "team_id", False),
        ("customer-scores", "customer_id", True),
        ("dead-letter", "original key", False),
    ],
)
def test_catalog_topic_keys_and_compaction(topic, key, compacted):
    spec = catalog()[topic]
    assert (spec.key, spec.compacted) == (key, compacted)


def test_output_topic_has_no_input_schema():
    with pytest.raises(KeyError):
        catalog().schema("signal-deltas")


@pytest.mark.parametrize(
    ["spec", "error"],
    [
        ({"type": "blob"}, ValueError),
        ({}, KeyError),
    ],
)
def test_field_spec_rejects_unknown_types(spec, error):
    with pytest.raises(error):
        FieldSpec.from_yaml("f", spec)


# --- valid values --------------------------------------------------------------


@pytest.mark.parametrize("topic", INPUT_TOPICS)
def test_valid_value_of_every_topic_decodes(topic):
    doc = value(topic)
    decoded = schema(topic).decode(raw(doc))
    assert decoded["event_id"] == doc["event_id"]
    assert decoded["ts"] == T0


@pytest.mark.parametrize(
    ["ts", "expected"],
    [
        (T0, T0),
        ("2026-11-26T09:30:00Z", T0),
        ("2026-11-26T17:30:00.250+08:00", T0 + 250),
        (0, 0),
    ],
)
def test_timestamp_fields_become_epoch_ms(ts, expected):
    decoded = schema("sales-action").decode(raw(value("sales-action", ts=ts, due_ts=ts, done_ts=ts)))
    assert (decoded["ts"], decoded["due_ts"], decoded["done_ts"]) == (expected,) * 3


def test_unknown_fields_are_kept():
    decoded = schema("role-login").decode(raw(value("role-login", extra={"a": 1})))
    assert decoded["extra"] == {"a": 1}


@pytest.mark.parametrize(
    ["topic", "field"],
    [(t, f.name) for t, f in fields_of(lambda f: not f.required)],
)
@pytest.mark.parametrize("absent", [OMIT, None], ids=["omitted", "null"])
def test_optional_field_may_be_absent_or_null(topic, field, absent):
    decoded = schema(topic).decode(raw(value(topic, **{field: absent})))
    assert field not in decoded


@pytest.mark.parametrize(
    ["topic", "field", "given", "expected"],
    [
        ("role-login", "role", "Procurement", "procurement"),
        ("role-login", "role", "LEGAL", "legal"),
        ("role-login", "role", "tEcHnIcAl", "technical"),
        ("role-login", "role", "Finance", "finance"),  # other roles are allowed
        ("role-login", "role", "", ""),
        ("document-open", "document_type", "Quote", "quote"),
        ("document-open", "document_type", "QUOTE", "quote"),
        ("document-open", "document_type", "quote", "quote"),
        ("stale-update", "outcome", "Reconsider", "reconsider"),
        ("stale-update", "outcome", "NO_REPLY", "no_reply"),
        ("stale-update", "kind", "PROGRESS", "progress"),
        ("stale-update", "kind", "Communication", "communication"),
        # identifiers keep their case
        ("document-open", "document_id", "Q-AbC", "Q-AbC"),
        ("rush-delivery", "contract_id", "K-AbC", "K-AbC"),
        ("role-login", "customer_id", "Cust-A", "Cust-A"),
    ],
)
def test_case_normalisation(topic, field, given, expected):
    assert schema(topic).decode(raw(value(topic, **{field: given})))[field] == expected


@pytest.mark.parametrize(
    ["topic", "field", "given"],
    [
        ("document-open", "dwell_seconds", 0),
        ("document-open", "dwell_seconds", 0.0),
        ("document-open", "dwell_seconds", 120.5),
        ("document-open", "dwell_seconds", 10**12),
        ("forecast-outcome", "forecast_amount", 0.01),
        ("forecast-outcome", "actual_amount", 0),
    ],
)
def test_number_bounds_accept(topic, field, given):
    assert schema(topic).decode(raw(value(topic, **{field: given})))[field] == given


# --- reason codes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ["payload", "reason"],
    [
        (None, "missing_value"),
        (b"", "invalid_json"),
        (b" ", "invalid_json"),
        (b"{", "invalid_json"),
        (b"{'event_id': 'x'}", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'\xef\xbb\xbf{"a": 1}', "invalid_json"),  # byte order mark
        (b"NaN", "invalid_json"),
        (b'{"dwell_seconds": 1e400}', "invalid_json"),
        (b'{"a": "\\ud800"}', "invalid_json"),  # lone surrogate
        (b"null", "not_an_object"),
        (b"[]", "not_an_object"),
        (b"[{}]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b"1", "not_an_object"),
        (b"true", "not_an_object"),
        (b"{}", "missing_field"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), "too_large"),  # size is checked before parsing
    ],
    ids=repr,
)
def test_undecodable_payloads(payload, reason):
    assert reason_of("document-open", payload) == reason


@pytest.mark.parametrize("topic", INPUT_TOPICS)
@pytest.mark.parametrize(
    ["size", "reason"],
    [
        (MAX_MESSAGE_BYTES - 1, None),
        (MAX_MESSAGE_BYTES, None),  # exactly 64 KiB is allowed
        (MAX_MESSAGE_BYTES + 1, "too_large"),
        (2 * MAX_MESSAGE_BYTES, "too_large"),
    ],
)
def test_message_size_limit(topic, size, reason):
    assert MAX_MESSAGE_BYTES == 65_536
    payload = padded_to(topic, size)
    if reason is None:
        assert schema(topic).decode(payload)["pad"]
    else:
        assert reason_of(topic, payload) == reason


@pytest.mark.parametrize(
    ["topic", "field"], [(t, f) for t in INPUT_TOPICS for f in sorted(REQUIRED[t])]
)
@pytest.mark.parametrize("absent", [OMIT, None], ids=["omitted", "null"])
def test_missing_required_field(topic, field, absent):
    payload = raw(value(topic, **{field: absent}))
    assert reason_of(topic, payload) == "missing_field"


def _wrong_values(spec: FieldSpec) -> list[tuple[Any, str]]:
    if spec.type == "timestamp":
        return [
            ("2026-11-26T09:30:00", "bad_timestamp"),
            ("garbage", "bad_timestamp"),
            (True, "bad_timestamp"),
            (float(T0), "bad_timestamp"),
            (-1, "bad_timestamp"),
            (10**30, "bad_timestamp"),
            ({}, "bad_timestamp"),
        ]
    if spec.type == "number":
        return [("1", "wrong_type"), (True, "wrong_type"), ([1], "wrong_type"), ({}, "wrong_type")]
    if spec.type == "enum":
        return [(1, "wrong_type"), (["progress"], "wrong_type"), ("bogus", "bad_value"), ("", "bad_value")]
    return [(1, "wrong_type"), (1.5, "wrong_type"), (False, "wrong_type"), (["a"], "wrong_type"), ({}, "wrong_type")]


@pytest.mark.parametrize(
    ["topic", "field", "given", "reason"],
    [(t, f.name, v, r) for t, f in fields_of(lambda f: True) for v, r in _wrong_values(f)],
    ids=lambda x: repr(x)[:30],
)
def test_mistyped_field(topic, field, given, reason):
    assert reason_of(topic, raw(value(topic, **{field: given}))) == reason


@pytest.mark.parametrize(
    ["topic", "field", "max_length"],
    [(t, f.name, f.max_length) for t, f in fields_of(lambda f: f.max_length is not None and f.pattern is None)],
)
@pytest.mark.parametrize("excess", [0, 1], ids=["at_limit", "over_limit"])
def test_string_length_limit(topic, field, max_length, excess):
    text = "A" * (max_length + excess)
    payload = raw(value(topic, **{field: text}))
    if excess:
        assert reason_of(topic, payload) == "field_too_long"
    else:
        decoded = schema(topic).decode(payload)
        assert len(decoded[field]) == max_length


@pytest.mark.parametrize(
    ["topic", "field", "max_length"],
    [
        ("document-open", "event_id", 128),
        ("document-open", "customer_id", 128),
        ("document-open", "ip", 64),
        ("document-open", "document_type", 64),
        ("role-login", "role", 64),
        ("rush-delivery", "note", 4096),
        ("rush-delivery", "contract_id", 128),
        ("stale-update", "outcome", 64),
        ("forecast-outcome", "period", 7),
        ("sales-action", "action_id", 128),
        ("sales-action", "owner", 64),
    ],
)
def test_declared_size_limits(topic, field, max_length):
    (spec,) = [f for f in schema(topic).fields if f.name == field]
    assert spec.max_length == max_length


@pytest.mark.parametrize(["topic", "field"], [(t, f.name) for t, f in fields_of(lambda f: f.type == "string")])
def test_every_string_field_is_bounded(topic, field):
    """What Credence derives from an input (team updates, deltas) is bounded by construction."""
    assert schema(topic).spec(field).max_length is not None


@pytest.mark.parametrize(
    ["period", "reason"],
    [
        ("2026-10", None),
        ("2026-01", None),
        ("2026-12", None),
        ("1999-09", None),
        ("2026-²", "bad_value"),  # the reproduction: int("²") raised in the team roll-up
        ("²", "bad_value"),
        ("2026-13", "bad_value"),
        ("2026-00", "bad_value"),
        ("2026-1", "bad_value"),
        ("2026-9", "bad_value"),
        ("２０２６-10", "bad_value"),  # full-width digits
        ("٢٠٢٦-١٠", "bad_value"),  # Arabic-Indic digits
        ("2026-10 ", "field_too_long"),
        ("2026-10\n", "field_too_long"),
        ("2026-Q4", "bad_value"),
        ("10-2026", "bad_value"),
        ("2026/10", "bad_value"),
        ("", "bad_value"),
        (" ", "bad_value"),
        (202610, "wrong_type"),
        ("2026-10" * 5, "field_too_long"),
    ],
    ids=repr,
)
def test_period_is_year_dash_month(period, reason):
    payload = raw(value("forecast-outcome", period=period))
    if reason is None:
        assert schema("forecast-outcome").decode(payload)["period"] == period
    else:
        assert reason_of("forecast-outcome", payload) == reason


# --- event times and the wall clock ------------------------------------------------


def test_event_times_that_move_a_clock_are_bounded_by_the_wall_clock():
    """``ts`` of every input and ``done_ts`` may not lie ahead; ``due_ts`` may."""
    bounded = {(t, f.name) for t, f in fields_of(lambda f: f.not_future)}
    assert bounded == {(t, "ts") for t in INPUT_TOPICS} | {("sales-action", "done_ts")}
    assert {(t, f.name) for t, f in fields_of(lambda f: f.type == "timestamp")} == bounded | {
        ("sales-action", "due_ts")
    }


@pytest.mark.parametrize("topic", INPUT_TOPICS)
@pytest.mark.parametrize(
    ["ts", "reason"],
    [
        (T0 - 1, None),
        (T0, None),  # exactly at the limit
        (T0 + 1, "future_event"),
        ("2026-11-26T09:30:00.001Z", "future_event"),
        ("9999-12-30T00:00:00Z", "future_event"),  # the reproduction
        (253_402_300_799_999, "future_event"),
    ],
)
def test_an_event_time_after_the_limit_is_a_future_event(topic, ts, reason):
    payload = raw(value(topic, ts=ts, **({"done_ts": T0 - 1} if topic == "sales-action" else {})))
    if reason is None:
        assert schema(topic).decode(payload, latest=T0)["ts"] == parse_ts(ts)
    else:
        with pytest.raises(InvalidEvent) as info:
            schema(topic).decode(payload, latest=T0)
        assert info.value.reason == reason and "ts" in info.value.detail


@pytest.mark.parametrize(
    ["fields", "reason"],
    [
        ({"due_ts": T0 + 365 * 86_400_000}, None),  # a due date ahead is what a plan is
        ({"due_ts": T0 + 1, "done_ts": T0}, None),
        ({"done_ts": T0 + 1}, "future_event"),  # work not done yet cannot be done on time
        ({"done_ts": "9999-12-30T00:00:00Z"}, "future_event"),
    ],
)
def test_sales_action_done_ts_is_bounded_due_ts_is_not(fields, reason):
    payload = raw(value("sales-action", ts=T0 - 1, **fields))
    if reason is None:
        schema("sales-action").decode(payload, latest=T0)
    else:
        with pytest.raises(InvalidEvent) as info:
            schema("sales-action").decode(payload, latest=T0)
        assert info.value.reason == reason and "done_ts" in info.value.detail


def test_without_a_limit_event_times_are_not_bounded():
    assert schema("role-login").decode(raw(value("role-login", ts="9999-12-30T00:00:00Z")))["ts"] > T0


def test_every_reason_is_documented():
    root = Path(__file__).resolve().parents[2]
    docs = "".join(p.read_text() for p in [root / "README.md", *root.glob("docs/*.md")])
    assert sorted(r for r in REASONS if f"`{r}`" not in docs) == []


@pytest.mark.parametrize(
    ["topic", "field", "given"],
    [
        ("document-open", "dwell_seconds", -1),
        ("document-open", "dwell_seconds", -0.001),
        ("forecast-outcome", "forecast_amount", 0),
        ("forecast-outcome", "forecast_amount", 0.0),
        ("forecast-outcome", "forecast_amount", -5),
        ("forecast-outcome", "actual_amount", -0.01),
        ("stale-update", "kind", "other"),
        ("stale-update", "kind", "progress "),
    ],
)
def test_out_of_range_values(topic, field, given):
    assert reason_of(topic, raw(value(topic, **{field: given}))) == "bad_value"


def test_invalid_event_carries_reason_and_detail():
    with pytest.raises(InvalidEvent) as info:
        schema("document-open").decode(raw(value("document-open", dwell_seconds="1")))
    assert info.value.reason == "wrong_type"
    assert "dwell_seconds" in info.value.detail
    assert str(info.value).startswith("wrong_type: ")
    assert isinstance(info.value, ValueError)


# --- decode_event ----------------------------------------------------------------


def test_decode_event_splits_common_fields():
    doc = value("document-open", event_id="ev-1", ip="10.0.0.1", document_type="Quote")
    ev = decode_event(schema("document-open"), raw(doc))
    assert (ev.topic, ev.event_id, ev.ts, ev.customer_id) == ("document-open", "ev-1", T0, "C1")
    assert ev.get("document_type") == "quote"
    assert ev.get("missing") is None
    assert "event_id" not in ev.fields and "ts" not in ev.fields
    assert (ev.evidence.event_id, ev.evidence.topic, ev.evidence.ts, ev.evidence.ip) == (
        "ev-1",
        "document-open",
        T0,
        "10.0.0.1",
    )


def test_decode_event_directory_without_event_id_or_ts():
    ev = decode_event(schema(DIRECTORY_TOPIC), raw(value(DIRECTORY_TOPIC, event_id=OMIT, ts=OMIT)))
    assert (ev.event_id, ev.ts, ev.get("team_id")) == ("", 0, "T1")


def test_decode_event_needs_customer_id():
    payload = orjson.dumps(value("forecast-outcome", customer_id=OMIT))
    assert schema("forecast-outcome").decode(payload)["team_id"] == "T1"  # fine for the topic
    with pytest.raises(InvalidEvent) as info:
        decode_event(schema("forecast-outcome"), payload)
    assert info.value.reason == "missing_field"


def test_base_values_cover_every_input_topic():
    assert set(BASE_VALUES) == set(INPUT_TOPICS)
