"""Dead letters stay below the ``dead-letter`` topic's limit whatever the input, and keep
inputs that fit exactly as they came."""

from __future__ import annotations

import base64
import hashlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.catalog import load_catalog
from scoring.dead_letters import KEY_BYTES, dead_letter

LIMIT = load_catalog()["dead-letter"].max_message_bytes
BUDGET = load_catalog()["dead-letter"].value_budget
NOW = 1_764_000_000_000


def letter(payload: bytes | None, key: bytes | None = b"c1", detail: str = "expected a string"):
    return dead_letter("document-open", 3, 42, key, payload, "wrong_type", detail, NOW, BUDGET)


def test_the_budget_leaves_room_for_the_key_and_kafkas_overhead():
    assert BUDGET + KEY_BYTES + 1024 < LIMIT


@pytest.mark.parametrize(
    ("payload", "text", "encoding"),
    [
        (b'{"event_id": "e1"}', '{"event_id": "e1"}', "utf-8"),
        (b"", "", "utf-8"),
        (None, None, "utf-8"),
        (b"\xff\xfe", base64.b64encode(b"\xff\xfe").decode(), "base64"),
        (b"\x01" * 1000, "\x01" * 1000, "utf-8"),
    ],
)
def test_a_payload_that_fits_is_kept_whole_as_before(payload, text, encoding):
    key, value = letter(payload)
    assert key == b"c1"
    assert value == {
        "topic": "document-open", "partition": 3, "offset": 42, "key": "c1", "payload": text,
        "payload_encoding": encoding, "reason": "wrong_type", "detail": "expected a string",
        "dead_lettered_at": "2025-11-24T16:00:00.000Z",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "encoding"),
    [
        (b"\x01" * 1_430_000, "utf-8"),  # x6 once escaped: the reported 8.6 MB dead letter
        (b"\x01" * 200 * 1024, "utf-8"),  # over 1 MiB escaped: the dead letter Apache Kafka refused
        (b"\xff" * (1024 * 1024), "base64"),
        ("\U0001f600".encode() * 300_000, "utf-8"),
        (b"a" * (2 * 1024 * 1024), "utf-8"),
    ],
)
def test_a_payload_too_large_is_cut_with_its_size_and_hash(payload, encoding):
    _key, value = letter(payload)
    size = len(orjson.dumps(value))
    assert size <= BUDGET
    assert size > BUDGET - 64 * 1024  # most of the room is used, not a token prefix
    assert value["payload_encoding"] == encoding
    assert (value["payload_bytes"], value["payload_sha256"], value["payload_truncated"]) == (
        len(payload), hashlib.sha256(payload).hexdigest(), True,
    )
    kept = value["payload"].encode() if encoding == "utf-8" else base64.b64decode(value["payload"])
    assert payload.startswith(kept)


def test_a_huge_key_and_detail_are_cut_too():
    huge = b"k" * (1024 * 1024 - 100)
    key, value = dead_letter("role-login", 0, 7, huge, b"{}", "key_mismatch", "\x00" * 100_000, NOW, BUDGET)
    assert key == huge[:KEY_BYTES]
    assert len(orjson.dumps(value)) <= BUDGET
    assert (value["key_bytes"], value["key_sha256"], value["key_truncated"]) == (
        len(huge), hashlib.sha256(huge).hexdigest(), True,
    )
    assert huge.decode().startswith(value["key"]) and value["key"]
    assert value["detail_truncated"] is True and value["detail_bytes"] == 100_000
    assert value["payload"] == "{}"


@settings(max_examples=60, deadline=None)
@given(
    payload=st.one_of(
        st.none(),
        st.binary(max_size=3 * 1024 * 1024),
        st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(0, 600_000)),
        st.text(max_size=200_000).map(str.encode),
    ),
    key=st.one_of(st.none(), st.binary(max_size=4 * KEY_BYTES), st.text(max_size=3000).map(str.encode)),
    detail=st.text(max_size=5000),
)
def test_any_input_gives_a_dead_letter_below_the_budget(payload, key, detail):
    cut_key, value = dead_letter("stale-update", 5, 2**62, key, payload, "invalid_json", detail, NOW, BUDGET)
    assert len(orjson.dumps(value)) <= BUDGET
    assert cut_key is None or len(cut_key) <= KEY_BYTES
    if payload is not None and not value.get("payload_truncated"):
        whole = value["payload"].encode() if value["payload_encoding"] == "utf-8" else base64.b64decode(value["payload"])
        assert whole == payload
