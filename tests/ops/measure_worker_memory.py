"""The resident memory of one worker, for sizing deploy/k8s (not a test).

    .venv/bin/python -m tests.ops.measure_worker_memory --events 100000 --customers 20000 --teams 40

Starts the embedded broker and one ``credence worker`` (tests/support/workers.py),
runs the integration scenario, then feeds long quote opens from ``--customers``
customers (owned by ``--teams`` teams through customer-directory records; 0: none)
and prints the worker's VmRSS/VmHWM as it goes. Stops everything it started.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from streams.kafka.embedded_broker import EmbeddedBroker
from tests.integration.scenario import build
from tests.support.workers import Deployment, Record


def memory_mib(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM")}


def bulk(events: int, customers: int, teams: int, now: int) -> list[Record]:
    records: list[Record] = []
    if teams:
        records += [
            ("customer-directory", f"bulk-{c}", {"customer_id": f"bulk-{c}", "team_id": f"team-{c % teams}",
                                                 "region": f"region-{c % 4}", "rep_id": f"rep-{c % 200}"})
            for c in range(customers)
        ]
    for i in range(events):
        customer = f"bulk-{i % customers}"
        records.append(("document-open", customer, {
            "event_id": f"b{i}", "ts": now - (events - i) * 10, "customer_id": customer, "ip": "198.51.100.7",
            "document_type": "quote", "document_id": "q", "dwell_seconds": 200,
        }))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--teams", type=int, default=40)
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds to wait for the bulk load")
    args = parser.parse_args()

    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        deployment = Deployment(broker.bootstrap, Path(tmp))
        deployment.apply_topics()
        worker = deployment.start_worker()
        try:
            assert worker.proc is not None
            scenario = build(int(time.time() * 1000))
            deployment.produce(scenario.directory)
            worker.wait_for_metric("credence_input_events_total", len(scenario.directory),
                                   topic="customer-directory", outcome="accepted")
            print("idle", memory_mib(worker.proc.pid), flush=True)
            deployment.produce(scenario.bad + scenario.good)
            worker.wait_for_metric("credence_signal_deltas_total", 2, signal="risk")
            print("after the integration scenario", memory_mib(worker.proc.pid), flush=True)

            start = time.monotonic()
            deployment.produce(bulk(args.events, args.customers, args.teams, int(time.time() * 1000)))
            done, reported = 0.0, 0.0
            while done < args.events and time.monotonic() - start < args.deadline:
                done = worker.metric_value("credence_input_events_total", topic="document-open", outcome="accepted")
                if time.monotonic() - reported >= 15:
                    print(f"  {time.monotonic() - start:5.0f} s  {done:8.0f} events", memory_mib(worker.proc.pid), flush=True)
                    reported = time.monotonic()
                time.sleep(1)
            print(f"after {done:.0f} of {args.events} events from {args.customers} customers in "
                  f"{args.teams} teams, {time.monotonic() - start:.0f} s", memory_mib(worker.proc.pid), flush=True)
        finally:
            deployment.stop()


if __name__ == "__main__":
    main()
