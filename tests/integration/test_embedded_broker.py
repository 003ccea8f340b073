"""The embedded broker leaves nothing behind, says why when it cannot start, and a worker
restarted against it resumes with its state."""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

import pytest

from streams.embedded_broker import EmbeddedBroker
from tests.support.workers import Deployment, Record

pytestmark = pytest.mark.tansu


def tansu_leftovers() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("tansu-*"))


def test_stopping_removes_its_log() -> None:
    before = tansu_leftovers()
    with EmbeddedBroker() as broker:
        assert broker._log_path.exists()
    assert tansu_leftovers() == before


def test_a_broker_that_cannot_listen_raises_with_its_log() -> None:
    before = tansu_leftovers()
    with socket.socket() as taken:  # bound, not listening: Tansu's bind fails
        taken.bind(("127.0.0.1", 0))
        broker = EmbeddedBroker(port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="Tansu did not start") as failure:
            broker.start()
    assert "exited" in str(failure.value)
    assert len(str(failure.value).splitlines()) > 1, "the log's end is part of the message"
    assert tansu_leftovers() == before


def quote_open(customer: str, n: int, ts: int) -> Record:
    return "document-open", customer, {
        "event_id": f"{customer}-{n}", "ts": ts, "customer_id": customer, "ip": "198.51.100.7",
        "document_type": "quote", "document_id": f"Q-{customer}", "dwell_seconds": 200,
    }


def test_a_worker_restarted_against_the_same_broker_resumes_with_its_state(tansu: str, tmp_path: Path) -> None:
    """SIGTERM and a restart with the same data dir: its stored changelog offsets are past
    what Tansu's ListOffsets reports for changelogs written in record batches, which
    Faust's recovery took for an inconsistency (ConsistencyError) until the consumer
    learned the true end offsets from a fetch (``streams.transport``)."""
    hour = 3_600_000
    now = int(time.time() * 1000)
    customers = [f"c{i:02d}" for i in range(20)]
    d = Deployment(tansu, tmp_path)
    d.apply_topics()
    try:
        worker = d.start_worker()
        d.produce(("customer-directory", c, {"customer_id": c, "team_id": "team-a", "region": "east",
                                             "rep_id": "r1"}) for c in customers)
        worker.wait_for_metric("credence_input_events_total", len(customers), topic="customer-directory",
                               outcome="accepted")
        # two long quote opens each: half a high_intent pattern, in the table and its changelog
        d.produce(quote_open(c, n, now - (3 - n) * hour) for n in range(2) for c in customers)
        worker.wait_for_metric("credence_input_events_total", 2 * len(customers), topic="document-open",
                               outcome="accepted")
        worker.stop()
        worker.start()  # same data dir, same broker
        d.produce(quote_open(c, 2, now - hour) for c in customers)
        deltas = d.consume_until(
            ["signal-deltas"], lambda records: len(records) >= len(customers), deadline_s=60
        )
        assert worker.alive, worker.log_tail()
    finally:
        d.stop()
    assert "ConsistencyError" not in worker.log_path.read_text(errors="replace")
    # the pattern begun before the restart was completed after it: the state came back
    assert sorted((r["customer_id"], r["signal"], [e["event_id"] for e in r["evidence"]]) for _, r in deltas) == [
        (c, "high_intent", [f"{c}-0", f"{c}-1", f"{c}-2"]) for c in customers
    ]
