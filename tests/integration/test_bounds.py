"""Hostile input as large as the broker accepts never stops a worker: it goes to
``dead-letter`` in a record below the topic's limit, and the next event still counts."""

from __future__ import annotations

import base64
import hashlib
import time

import orjson
import pytest

from scoring.catalog import load_catalog
from tests.support.workers import Deployment

#: what each broker accepts on an input topic: Apache Kafka enforces the topic's 1 MiB
#: ``max.message.bytes`` (key, value and batch overhead); Tansu took the reported 1.43 MB
LARGEST_VALUE = {"tansu": 1_430_000, "apache_kafka": 1024 * 1024 - 4096}


def test_the_largest_hostile_records_are_dead_lettered_bounded(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    size = LARGEST_VALUE[request.node.callspec.params["bootstrap"]]
    control = b"\x01" * size  # x6 once JSON-escaped
    not_utf8 = b"\xff" * size  # x4/3 as base64
    huge_key = b"k" * (size - 64)
    now = int(time.time() * 1000)
    worker = deployment.start_worker()
    deployment.produce(
        [("document-open", "c-ctl", control), ("role-login", "c-bin", not_utf8), ("rush-delivery", huge_key, b"{")],
        max_request_size=2 * 1024 * 1024,
    )
    deployment.produce([
        ("document-open", "c-after", {"event_id": f"q{i}", "ts": now - (3 - i) * 60_000, "customer_id": "c-after",
                                      "document_type": "quote", "document_id": "d", "dwell_seconds": 300})
        for i in range(3)
    ])  # fmt: skip
    out = deployment.consume_until(
        ["dead-letter", "signal-deltas"],
        lambda rs: sum(t == "dead-letter" for t, _ in rs) >= 3 and any(t == "signal-deltas" for t, _ in rs),
    )
    assert worker.alive, worker.log_tail()
    budget = load_catalog()["dead-letter"].value_budget
    letters = {r["topic"]: r for t, r in out if t == "dead-letter"}
    assert all(len(orjson.dumps(r)) <= budget for r in letters.values())

    ctl, binary, keyed = letters["document-open"], letters["role-login"], letters["rush-delivery"]
    assert (ctl["reason"], ctl["key"], ctl["payload_encoding"]) == ("too_large", "c-ctl", "utf-8")
    assert (ctl["payload_bytes"], ctl["payload_sha256"], ctl["payload_truncated"]) == (
        size, hashlib.sha256(control).hexdigest(), True,
    )
    assert control.startswith(ctl["payload"].encode()) and len(ctl["payload"]) > budget // 7
    assert (binary["reason"], binary["payload_encoding"], binary["payload_bytes"]) == ("too_large", "base64", size)
    assert not_utf8.startswith(base64.b64decode(binary["payload"])) and binary["payload_truncated"]
    assert (keyed["reason"], keyed["payload"], keyed["key_bytes"], keyed["key_truncated"]) == (
        "invalid_json", "{", len(huge_key), True,
    )
    assert huge_key.decode().startswith(keyed["key"])

    (delta,) = [r for t, r in out if t == "signal-deltas"]
    assert (delta["customer_id"], delta["signal"]) == ("c-after", "high_intent")
    worker.wait_for_metric("credence_dead_letters_total", 1, topic="rush-delivery", reason="invalid_json")
