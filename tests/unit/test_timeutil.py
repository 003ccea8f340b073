"""Event-time parsing and formatting (``scoring.timeutil``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.timeutil import TimestampError, format_ts, parse_ts
from tests.unit.fixtures import T0

MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


@pytest.mark.parametrize(
    ["value", "expected"],
    [
        ("2026-11-26T09:30:00Z", T0),
        ("2026-11-26T09:30:00+00:00", T0),
        ("2026-11-26T09:30:00-00:00", T0),
        ("2026-11-26T17:30:00+08:00", T0),
        ("2026-11-26T04:30:00-05:00", T0),
        ("2026-11-26T15:00:00+05:30", T0),
        ("2026-11-26T10:30:00+0100", T0),
        ("2026-11-26T09:30:00.123Z", T0 + 123),
        ("2026-11-26T09:30:00.1+00:00", T0 + 100),
        ("2026-11-26T09:30:00.123456+00:00", T0 + 123),
        ("2026-11-26T09:30:00.999999Z", T0 + 999),  # sub-millisecond part is truncated
        ("2026-11-27T01:30:00.500+16:00", T0 + 500),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T01:00:00+01:00", 0),
        ("9999-12-31T23:59:59.999Z", MAX_MS),
        (T0, T0),
        (0, 0),
        (1, 1),
        (MAX_MS, MAX_MS),
    ],
    ids=repr,
)
def test_parse_ts_accepts(value, expected):
    assert parse_ts(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        float(T0),
        1.5,
        0.0,
        "",
        " ",
        "garbage",
        "2026-11-26T09:30:00",  # no offset
        "2026-11-26T09:30:00.123",  # no offset, fractional
        "2026-11-26",  # a date has no offset
        "2026-11-26 09:30",
        str(T0),  # epoch ms must be an integer, not a string
        "2026-13-01T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T09:30:00+25:00",
        " 2026-11-26T09:30:00Z",
        "2026-11-26T09:30:00Z\n",
        "2026-11-26T09:30:00Z" + " " * 60,  # over 64 characters
        -1,
        MAX_MS + 1,
        10**30,
        "1969-12-31T23:59:59.999Z",
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
        [],
        {},
        [T0],
        b"2026-11-26T09:30:00Z",
    ],
    ids=repr,
)
def test_parse_ts_rejects(value):
    with pytest.raises(TimestampError):
        parse_ts(value)


def test_timestamp_error_is_a_value_error():
    assert issubclass(TimestampError, ValueError)


@pytest.mark.parametrize(
    ["ms", "expected"],
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (999, "1970-01-01T00:00:00.999Z"),
        (86_399_999, "1970-01-01T23:59:59.999Z"),
        (T0, "2026-11-26T09:30:00.000Z"),
        (T0 + 123, "2026-11-26T09:30:00.123Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (MAX_MS, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_format_ts(ms, expected):
    assert format_ts(ms) == expected


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(0, MAX_MS))
def test_format_then_parse_round_trips(ms):
    text = format_ts(ms)
    assert text.endswith("Z") and len(text) == 24
    assert parse_ts(text) == ms
