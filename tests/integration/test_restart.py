"""A worker stopped and started again with the same data dir, on both brokers."""

from __future__ import annotations

import time

from tests.support.workers import Deployment, Record


def quote_open(customer: str, n: int, ts: int) -> Record:
    return "document-open", customer, {
        "event_id": f"{customer}-{n}", "ts": ts, "customer_id": customer, "ip": "198.51.100.7",
        "document_type": "quote", "document_id": f"Q-{customer}", "dwell_seconds": 200,
    }


def test_a_worker_restarted_with_its_data_dir_resumes_with_its_state(deployment: Deployment) -> None:
    """SIGTERM and a restart with the same data dir. On Tansu its stored changelog offsets
    were past what ListOffsets reports for changelogs written in record batches, which
    Faust's recovery took for an inconsistency (ConsistencyError) until the consumer
    learned the true end offsets from a fetch (``streams.faust_ext.transport``)."""
    hour = 3_600_000
    now = int(time.time() * 1000)
    customers = [f"c{i:02d}" for i in range(20)]
    worker = deployment.start_worker()
    deployment.produce(("customer-directory", c, {"customer_id": c, "team_id": "team-a", "region": "east",
                                                  "rep_id": "r1"}) for c in customers)
    worker.wait_for_metric("credence_input_events_total", len(customers), topic="customer-directory",
                           outcome="accepted")
    # two long quote opens each: half a high_intent pattern, in the table and its changelog
    deployment.produce(quote_open(c, n, now - (3 - n) * hour) for n in range(2) for c in customers)
    worker.wait_for_metric("credence_input_events_total", 2 * len(customers), topic="document-open",
                           outcome="accepted")
    worker.stop()  # SIGTERM
    worker.start()  # same data dir, same broker
    deployment.produce(quote_open(c, 2, now - hour) for c in customers)
    # a fresh process counts from 0; a crashed one fails here, with its log
    worker.wait_for_metric("credence_input_events_total", len(customers), deadline_s=60,
                           topic="document-open", outcome="accepted")
    deltas = deployment.consume_until(
        ["signal-deltas"], lambda records: len(records) >= len(customers), deadline_s=60
    )
    assert worker.alive, worker.log_tail()
    assert "ConsistencyError" not in worker.log_path.read_text(errors="replace")
    # the pattern begun before the restart was completed after it: the state came back
    assert sorted((r["customer_id"], r["signal"], [e["event_id"] for e in r["evidence"]]) for _, r in deltas) == [
        (c, "high_intent", [f"{c}-0", f"{c}-1", f"{c}-2"]) for c in customers
    ]
