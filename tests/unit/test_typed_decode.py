"""The typed decoder (``RecordSchema.decode``'s fast path, :mod:`scoring.typed_decode`)
against the field-by-field reference (``RecordSchema.validate``) on generated raw
values, valid and bad: both accept with the same declared fields, of the same types
and values, or both reject with the same reason and detail. The fast path may only
ever hand a record over; it must never take one the reference refuses."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.schema import REASONS, FieldSpec, InvalidEvent, RecordSchema
from tests.unit.fixtures import T0, catalog
from tests.unit.test_schema_compiled_checks import INPUT_TOPICS, aware, timestamp_strings, values

PROPERTY = settings(max_examples=400, deadline=None, database=None)

#: the kinds topics.yaml has few or none of
SYNTHETIC = RecordSchema("synthetic", (
    FieldSpec("customer_id", "string", required=True, min_length=1, max_length=8),
    FieldSpec("e", "enum", values=frozenset({"a", "bc"}), min_length=2, max_length=3),
    FieldSpec("p", "string", pattern=re.compile("[a-z]{2}-[0-9]+", re.ASCII), lower=True, max_length=8),
    FieldSpec("m", "string", min_length=2, lower=True),
    FieldSpec("n", "number", minimum=0.5, exclusive_min=True),
    FieldSpec("f", "number"),
    FieldSpec("t", "timestamp", not_future=True),
))  # fmt: skip
SCHEMAS = [catalog().schema(topic) for topic in INPUT_TOPICS] + [SYNTHETIC]

#: JSON texts json.dumps would not write, several invalid
NUMBER_TEXTS = ["1e400", "-1e400", "1E2", "-0", "-0.0", "0.5", "1.0", "9223372036854775807", "9223372036854775808",
                "18446744073709551616", "1" + "0" * 400, "0." + "0" * 400 + "1", "01", "1.", ".5", "+1", "NaN",
                "Infinity", "-Infinity", "true", "false", "null", "tru"]
JUNK_TEXTS = ['"\\ud800"', '"\\ud83d\\ude00"', '"\\u00e9"', '"a\\u0000"', '"\\/"', "[1,]", '{"a":1}', "[" * 1100 + "]" * 1100,
              "[" * 300 + "]" * 300, '"\u00e9\u00e9"', '" "', '"   x"', "{}", "[]", '""']


def outcome(decode: Any, raw: bytes | None, latest: int | None) -> tuple[Any, ...]:
    try:
        doc = decode(raw, latest)
    except InvalidEvent as exc:
        assert exc.reason in REASONS
        return "rejected", exc.reason, exc.detail
    return "accepted", {name: (type(v), repr(v)) for name, v in doc.items()}


def reference(schema: RecordSchema) -> Any:
    """The reference's verdict, declared fields only (the decoder drops unknown ones)."""
    def decode(raw: bytes | None, latest: int | None) -> dict[str, Any]:
        return {name: v for name, v in schema.validate(raw, latest).items() if name in schema.names}
    return decode


def valid(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Values the field takes (mostly)."""
    if spec.pattern is not None:
        return st.from_regex(spec.pattern, fullmatch=True).map(lambda v: v.upper() if spec.lower else v)
    return {
        "timestamp": st.one_of(aware.map(lambda d: d.isoformat().replace("+00:00", "Z")),
                               st.integers(min_value=0, max_value=2**45)),
        "number": st.one_of(st.integers(min_value=1, max_value=10**6), st.floats(min_value=1, max_value=1e9)),
        "enum": st.sampled_from(sorted(spec.values) + [v.upper() for v in spec.values]),
        "string": st.from_regex(r"[A-Za-z0-9_-]{2,8}", fullmatch=True),
    }[spec.type]


def typical(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Values of the field's type at its edges (some valid)."""
    edges = {
        "timestamp": st.one_of(timestamp_strings, st.integers(min_value=-5, max_value=2**48)),
        "number": st.one_of(st.integers(min_value=-3, max_value=3), st.floats(min_value=-1, max_value=1)),
        "enum": st.sampled_from([" a", "x", "", " " + next(iter(spec.values), "")]),
        "string": st.one_of(st.text(max_size=140), st.sampled_from(["", " ", " \t", "x" * 64, "x" * 65, "É" * 128])),
    }[spec.type]
    return edges


def anything() -> st.SearchStrategy[str]:
    """The JSON text of any value at all, several of them invalid JSON."""
    return st.one_of(values.map(json.dumps), st.sampled_from(NUMBER_TEXTS), st.sampled_from(JUNK_TEXTS))


@st.composite
def raw_values(draw: st.DrawFn, schema: RecordSchema) -> bytes:
    """A JSON object text: a valid value with a few fields (or none) changed (to an edge of its type, anything,
    null, left out, repeated), maybe unknown fields, in any order; or bytes broken after."""
    optional = [spec for spec in schema.fields if not spec.required]
    given = [spec for spec in schema.fields if spec.required] + draw(st.lists(st.sampled_from(optional), unique=True))
    members = [(json.dumps(spec.name), json.dumps(draw(valid(spec)))) for spec in given]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
        spec = draw(st.sampled_from(schema.fields))
        change = draw(st.sampled_from(["edge", "anything", "null", "out", "again"]))
        text = {"edge": typical(spec).map(json.dumps), "anything": anything(), "null": st.just("null"),
                "again": valid(spec).map(json.dumps), "out": st.just("")}[change]
        members = [(k, v) for k, v in members if change == "again" or k != json.dumps(spec.name)]
        if change != "out":
            members.append((json.dumps(spec.name), draw(text)))
    extra = draw(st.sampled_from(["", "", "", "unknown", "escaped"]))
    if extra == "unknown":
        name = draw(st.one_of(st.text(max_size=6), st.sampled_from(["ts ", "TS"])))
        members.append((json.dumps(name), draw(anything())))
    elif extra == "escaped":  # an escaped key: the same name
        members.append(('"\\u0074s"', draw(valid(FieldSpec("ts", "timestamp")).map(json.dumps))))
    members = draw(st.permutations(members))
    space = draw(st.sampled_from(["", "", " ", "\n\t"]))
    text = "{" + ",".join(f"{space}{k}{space}:{space}{v}" for k, v in members) + space + "}"
    raw = text.encode("utf-8", "surrogatepass")  # lone surrogates from st.text: bad UTF-8
    broken = draw(st.sampled_from(["", "", "", "", "", "", "", "", "", "byte", "cut", "wrap", "bom", "trail"]))
    if broken == "byte" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\x00", b'"'])) + raw[at + 1:]
    elif broken == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif broken == "wrap":
        raw = b"[" + raw + b"]"
    elif broken == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif broken == "trail":
        raw += draw(st.sampled_from([b" ", b"\x00", b"{}", b" 1"]))
    return raw


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.topic)
@PROPERTY
@given(data=st.data())
def test_decode_agrees_with_validate(schema: RecordSchema, data: st.DataObject) -> None:
    raw = data.draw(raw_values(schema))
    latest = data.draw(st.sampled_from([None, T0, 2**62]))
    assert outcome(schema.decode, raw, latest) == outcome(reference(schema), raw, latest)


#: one field's JSON text at the edges of every type: each reason a field can be refused for, and what is near it
EDGE_TEXTS = [json.dumps(v) for v in [
    None, True, False, 0, -1, 1, 0.5, -0.0, 1.5, 2**63, -(2**63) - 1, 253_402_300_799_999, 253_402_300_800_000,
    "", " ", " \t", "\u00a0", "x", " a", "a", "A", "BC", " bc", "Progress", "COMMUNICATION", " progress",
    "x" * 7, "x" * 8, "x" * 9, "x" * 64, "x" * 65, "x" * 128, "x" * 129, "\u00c9" * 128, "\u00c9" * 129,
    "ab-1", "AB-12", "ab-", "2026-01", "2026-13", "2026-1", "\u0662026-01", "\u0130" * 64,
    "2026-11-26T09:30:00Z", "2026-11-26T09:30:00.123+08:00", "2026-11-26T09:30:00", "1969-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00", "2026-11-26", "yesterday", "2026-11-26T09:30:00Z" + " " * 50, [], {}, [1], {"a": 1},
]] + NUMBER_TEXTS + JUNK_TEXTS


def base_value(schema: RecordSchema) -> dict[str, str]:
    """Every field of ``schema`` with a valid value, as JSON text."""
    sample = {"timestamp": "1795685400000", "number": "7", "string": '"ab-12"'}
    return {spec.name: json.dumps(sorted(spec.values)[-1]) if spec.type == "enum" else
            '"2026-11"' if spec.name == "period" else sample[spec.type] for spec in schema.fields}


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.topic)
def test_every_field_at_every_edge_agrees(schema: RecordSchema) -> None:
    """Deterministic, beside the property: each field of a valid value given each edge text, or left out."""
    base = base_value(schema)
    assert outcome(schema.decode, raw_of(base), None)[0] == "accepted"
    for spec in schema.fields:
        for text in [*EDGE_TEXTS, None]:
            fields = {**base, spec.name: text}
            raw = raw_of({k: v for k, v in fields.items() if v is not None})
            for latest in (None, T0):
                assert outcome(schema.decode, raw, latest) == outcome(reference(schema), raw, latest), raw


def raw_of(fields: dict[str, str]) -> bytes:
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}").encode()


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.topic)
@pytest.mark.parametrize("raw", [None, b"", b"null", b"[]", b"1", b'"x"', b"{", b"\xff", b"{}", b" " * 70_000],
                         ids=repr)
def test_values_that_are_no_object_agree(schema: RecordSchema, raw: bytes | None) -> None:
    assert outcome(schema.decode, raw, None) == outcome(reference(schema), raw, None)


def test_typical_values_take_the_fast_path() -> None:
    """The fast path is taken (the property above would pass with it always refusing)."""
    value = (b'{"event_id":"e1","ts":"2026-11-26T09:30:00.000+08:00","customer_id":"C1","ip":null,'
             b'"document_type":"Quote","document_id":"d1","dwell_seconds":12.5}')
    fast = catalog().schema("document-open")._typed.decode(value)
    assert fast == {"event_id": "e1", "ts": 1_795_656_600_000, "customer_id": "C1", "document_type": "quote",
                    "document_id": "d1", "dwell_seconds": 12.5}
    assert catalog().schema("document-open")._typed.decode(value[:-1] + b',"x":1}') is None  # validate decides
