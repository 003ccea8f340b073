"""Consumer lag on /metrics: one series per owned input partition, 0 once caught up."""

from __future__ import annotations

import time

from tests.support.workers import Deployment

LAG = "credence_consumer_lag_records"
#: the signal processor's inputs, by logical name (no topic prefix); the team agent's have series too
INPUTS = {"document-open", "role-login", "rush-delivery", "stale-update", "customer-directory",
          "credence-risk-ticks"}


def test_consumer_lag_per_partition_drops_to_zero(deployment: Deployment) -> None:
    backlog = 1500
    now = int(time.time() * 1000)
    deployment.produce(
        ("document-open", f"c{i % 97}", {"event_id": f"e{i}", "ts": now - 60_000, "customer_id": f"c{i % 97}",
                                         "document_type": "brochure", "document_id": "d", "dwell_seconds": 5})
        for i in range(backlog)
    )
    worker = deployment.start_worker()

    wanted = {f"{t}/{p}" for t in INPUTS for p in range(6)}
    highest, samples = 0.0, {}
    end = time.monotonic() + 60
    while True:
        assert worker.alive, worker.log_tail()
        assert time.monotonic() < end, f"lag never settled at 0: {samples}\n{worker.log_tail()}"
        try:
            samples = {dict(k)["topic"] + "/" + dict(k)["partition"]: v
                       for k, v in worker.metric_samples(LAG).items()}
            accepted = worker.metric_value("credence_input_events_total", topic="document-open",
                                           outcome="accepted")
        except OSError:
            time.sleep(0.1)  # web server not up yet
            continue
        # the backlog's own topics: team updates the worker writes meanwhile have lag too
        highest = max(highest, sum(v for k, v in samples.items() if k.split("/")[0] in INPUTS))
        if wanted <= set(samples) and accepted >= backlog and sum(samples.values()) == 0:
            break
        time.sleep(0.1)

    # one series per partition of every input of the signal processor (the team agent's
    # have theirs too), labelled with the logical topic name
    assert wanted <= set(samples)
    assert not [s for s in samples if s.startswith(deployment.prefix)]
    # the backlog showed before it was worked off (a refresh runs right after the rebalance,
    # before the first commit)
    assert 0 < highest <= backlog
    # the gauge agrees with the group's offsets on the broker
    assert set(deployment.committed_lag(sorted(INPUTS)).values()) == {0}
