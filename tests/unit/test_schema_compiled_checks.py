"""The compiled field checks (``FieldSpec.compile``, the decoder's fast path) against the
generic ``FieldSpec.coerce`` (the reference, which every bad value still reaches): on
generated values, valid and bad, both give the same value or both reject it with the
same reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.schema import FieldSpec, InvalidEvent
from tests.unit.fixtures import catalog

INPUT_TOPICS = ("document-open", "role-login", "rush-delivery", "stale-update", "customer-directory",
                "sales-action", "forecast-outcome")
PROPERTY = settings(max_examples=300, deadline=None, database=None)

#: every field of every input schema in topics.yaml, plus kinds topics.yaml has few or none of
FIELDS = [spec for topic in INPUT_TOPICS for spec in catalog().schema(topic).fields] + [
    FieldSpec("e", "enum", values=frozenset({"a", "bc"}), min_length=2, max_length=3),
    FieldSpec("p", "string", pattern=re.compile("[a-z]{2}-[0-9]+", re.ASCII), lower=True, max_length=8),
    FieldSpec("m", "string", min_length=2, lower=True),
    FieldSpec("n", "number", minimum=0, exclusive_min=True),
]


def outcome(check: Any, value: Any) -> tuple[str, Any]:
    try:
        result = check(value)
    except InvalidEvent as exc:
        return "rejected", exc.reason
    return "accepted", (type(result), result)


aware = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]))
timestamp_strings = st.one_of(
    aware.map(lambda d: d.isoformat(timespec="milliseconds" if d.microsecond else "seconds")),
    aware.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.datetimes().map(datetime.isoformat),  # no offset
    aware.map(lambda d: d.isoformat() + " " * 60),  # too long
    st.from_regex(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})?", fullmatch=True),
)
enum_like = st.sampled_from(["procurement", "Technical", " legal ", "LEGAL", "progress", "Communication",
                             "quote", "a", "BC", " a", "bc ", "", "  ", "x" * 40])
values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=80), timestamp_strings, enum_like,
    st.from_regex(r"[A-Za-z]{2}-[0-9]{1,6}", fullmatch=True), st.from_regex(r"\d{4}-\d{2}", fullmatch=True),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@pytest.mark.parametrize("spec", FIELDS, ids=lambda s: f"{s.name}:{s.type}")
@PROPERTY
@given(value=values)
def test_compiled_check_agrees_with_coerce(spec: FieldSpec, value: Any) -> None:
    assert outcome(spec.compile(), value) == outcome(spec.coerce, value)


@pytest.mark.parametrize("given_value, expected", [
    ("2026-11-26T09:30:00.123+08:00", 1_795_656_600_123),
    ("2026-11-26T01:30:00Z", 1_795_656_600_000),
    ("1970-01-01T00:00:00.000999Z", 0),
])
def test_timestamp_check_gives_epoch_ms(given_value: str, expected: int) -> None:
    ts = next(s for s in FIELDS if s.type == "timestamp")
    assert ts.compile()(given_value) == expected


@pytest.mark.parametrize("given_value, reason", [
    ("2026-11-26T09:30:00", "bad_timestamp"),  # no offset
    ("1969-12-31T23:59:59Z", "bad_timestamp"),  # before epoch
    ("yesterday", "bad_timestamp"),
    (True, "bad_timestamp"),
])
def test_timestamp_check_rejects_what_coerce_rejects(given_value: Any, reason: str) -> None:
    ts = next(s for s in FIELDS if s.type == "timestamp")
    assert outcome(ts.compile(), given_value) == ("rejected", reason)
