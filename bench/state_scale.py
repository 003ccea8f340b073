"""Memory and recovery of one worker holding many customers: ``python -m bench.state_scale``.

1. **memory**: one ``credence worker`` (all partitions) processes ``--customers`` x
   ``--events-per-customer`` behaviour events of the benchmark's everyday mix
   (``bench/workload.py``), every customer equally likely (``--zipf-s 0``) so each holds
   realistic state; then the worker's RSS (``VmRSS``, and its peak ``VmHWM``), the size of
   its local RocksDB folder and the records in its changelogs are printed, with the RSS
   per customer and its linear extrapolation to 1 M customers (the goal: <= 2 GiB);
2. **recovery**: that worker is stopped and a new one started with an empty data folder,
   so it restores every table partition from its changelog before it processes input
   again. Timed from the first ``/metrics`` scrape at which the restore gauge
   ``credence_restore_remaining_records`` is above 0 to the first at which it is 0
   again (scraped every 50 ms), and from launch to the first processed probe event
   (compared with a fresh worker's launch to first progress: the start-up itself).
   The goal: >= 50 000 changelog records/s.

The defaults (20 000 customers, 4 events each) take a few minutes; ``--customers
1000000`` measures the goal itself (about 15 minutes on this 2-core machine, and a few GB
of broker memory on the embedded broker: prefer ``--broker kafka``). It prints figures
and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import promtext
from bench.kafka_io import produce_all, records_written
from bench.machine import fmt_int, log, machine_facts, now_ms, start_broker
from bench.pipeline import EVENTS_METRIC, start_deployment, wait_for_count
from bench.workload import BEHAVIOUR_TOPICS, THROUGHPUT, Workload, generate
from streams.settings import Settings, env_name
from tests.support.workers import Deployment, Worker

RESTORE_METRIC = "credence_restore_remaining_records"
CHUNK = 100_000  # events generated and produced at a time (the bench's own memory stays bounded)
GIB = 1024**3


def proc_status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass
class Fill:
    customers: int
    events: int
    seconds: float  # producing and processing, until the worker has counted every event
    startup_s: float  # launch -> "Worker ready", with empty tables
    baseline_kib: int  # RSS when ready, before any event
    rss_kib: int
    peak_kib: int
    anon_kib: int  # of the RSS: anonymous memory (heaps, RocksDB memtables and caches), the rest file pages
    data_bytes: int
    changelog_records: int


@dataclass
class Restore:
    records: int
    seconds: float  # restore gauge first > 0 -> 0
    remaining_at_first_scrape: float
    ready_s: float  # launch -> "Worker ready" (Faust: every table restored)
    launch_to_probe_s: float  # launch -> the probe event processed
    rss_kib: int


def fill(deployment: Deployment, args: argparse.Namespace) -> tuple[Worker, Fill]:
    workload = Workload(THROUGHPUT, customers=args.customers, zipf_s=args.zipf_s, seed=args.seed)
    total = args.customers * args.events_per_customer
    worker = deployment.start_worker("fill")
    launched = time.monotonic()
    worker.wait_ready(120)
    startup = time.monotonic() - launched
    assert worker.proc is not None
    baseline = proc_status_kib(worker.proc.pid, "VmRSS")
    began, end_ms = time.monotonic(), now_ms()
    for start in range(0, total, CHUNK):
        n = min(CHUNK, total - start)
        events = generate(workload, n, end_ms - (total - start - n))
        asyncio.run(produce_all(deployment.bootstrap, deployment.prefix, events))
        log(f"produced {fmt_int(start + n)} of {fmt_int(total)} events")
    wait_for_count([worker], total, 120 + total / 1000)
    seconds = time.monotonic() - began
    time.sleep(2.0)  # a flush interval or two: the write-back cache reaches the table
    rss, peak = proc_status_kib(worker.proc.pid, "VmRSS"), proc_status_kib(worker.proc.pid, "VmHWM")
    anon = proc_status_kib(worker.proc.pid, "RssAnon")
    worker.stop()
    data = folder_bytes(deployment.workdir / "data-fill")
    written = asyncio.run(records_written(deployment.bootstrap, deployment.prefix, BEHAVIOUR_TOPICS))
    changelog = sum(v for k, v in written.items() if "changelog" in k)
    return worker, Fill(args.customers, total, seconds, startup, baseline, rss, peak, anon, data, changelog)


def restore(deployment: Deployment, args: argparse.Namespace, records: int) -> Restore:
    """A worker with an empty data folder (a new name): every table partition from its changelog."""
    worker = deployment.start_worker("restore")
    launched = time.monotonic()
    workload = Workload(THROUGHPUT, customers=args.customers, zipf_s=args.zipf_s, seed=args.seed + 1)
    probe = generate(workload, 1, now_ms())
    asyncio.run(produce_all(deployment.bootstrap, deployment.prefix, probe))
    first: tuple[float, float] | None = None
    done_at = ready = None
    end = launched + 120 + records / 1000
    while time.monotonic() < end:
        if not worker.alive:
            raise RuntimeError(f"restoring worker exited:\n{worker.log_tail()}")
        if ready is None and "Worker ready" in worker.log_path.read_text(errors="replace"):
            ready = time.monotonic() - launched
        with contextlib.suppress(OSError):
            samples = promtext.scrape(worker.web_port)
            remaining = promtext.total(samples, RESTORE_METRIC)
            if first is None and remaining > 0:
                first = time.monotonic(), remaining
            elif first is not None and remaining == 0 and done_at is None:
                done_at = time.monotonic()
            if promtext.total(samples, EVENTS_METRIC) >= 1:
                break
        time.sleep(0.05)
    else:
        raise TimeoutError(f"the restoring worker processed nothing in time:\n{worker.log_tail()}")
    probed = time.monotonic() - launched
    assert worker.proc is not None
    rss = proc_status_kib(worker.proc.pid, "VmRSS")
    worker.stop()
    seconds = (done_at or time.monotonic()) - first[0] if first else float("nan")
    return Restore(records, seconds, first[1] if first else 0.0, ready or probed, probed, rss)


def report(args: argparse.Namespace, f: Fill, r: Restore | None) -> None:
    facts = machine_facts()
    per_customer = (f.rss_kib - f.baseline_kib) * 1024 / f.customers
    print(f"\n{'=' * 100}\nCredence state bench — {time.strftime('%Y-%m-%d %H:%M %Z')}\n{'=' * 100}")
    print(f"machine   nproc={facts['nproc']}  {facts['cpu']}  load average now {facts['load']}")
    cache = args.env.get(env_name("state_cache_customers"), Settings.state_cache_customers)
    print(f"worker    decoded customer states kept in memory (write-back cache bound): {cache}"
          + (f"; extra environment {args.env}" if args.env else ""))
    print(f"workload  {fmt_int(f.customers)} customers x {args.events_per_customer} events (Zipf s={args.zipf_s}), "
          f"{fmt_int(f.events)} events produced and processed by one worker in {f.seconds:.1f}s "
          f"({fmt_int(f.events / f.seconds)}/s)")
    at_1m = (f.baseline_kib * 1024 + per_customer * 1e6) / GIB
    print(f"memory    worker RSS {f.rss_kib / 1024:.0f} MiB (peak {f.peak_kib / 1024:.0f} MiB), "
          f"{f.baseline_kib / 1024:.0f} MiB when ready before any event: {per_customer:.0f} B per customer; "
          + (f"linear to 1 M customers {at_1m:.2f} GiB (goal <= 2 GiB; an overestimate: memory grows less than "
           "linearly, measure --customers 1000000)" if f.customers < 1_000_000 else "goal <= 2 GiB"))
    print(f"          of the RSS {f.anon_kib / 1024:.0f} MiB anonymous (heaps, RocksDB memtables and caches), "
          f"{(f.rss_kib - f.anon_kib) / 1024:.0f} MiB file pages")
    print(f"          local RocksDB folder {f.data_bytes / 1024**2:.0f} MiB "
          f"({f.data_bytes / f.customers:.0f} B per customer); changelog records {fmt_int(f.changelog_records)}")
    if r is None:
        return
    rate = r.records / r.seconds if r.seconds == r.seconds and r.seconds > 0 else float("nan")
    print(f"recovery  {fmt_int(r.records)} changelog records restored: gauge > 0 (first seen "
          f"{fmt_int(r.remaining_at_first_scrape)}) -> 0 in {r.seconds:.2f}s = {fmt_int(rate)} records/s "
          f"(goal >= 50 000/s)")
    print(f"          launch -> worker ready {r.ready_s:.1f}s, -> probe event processed {r.launch_to_probe_s:.1f}s; "
          f"a worker with empty changelogs was ready {f.startup_s:.1f}s after launch; RSS after restore "
          f"{r.rss_kib / 1024:.0f} MiB (the restored worker holds every customer, none in its write-back cache)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.state_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events-per-customer", type=int, default=4)
    parser.add_argument("--zipf-s", type=float, default=0.0, help="customer popularity (default 0: uniform)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-restore", action="store_true")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the workers, e.g. CREDENCE_STATE_CACHE_CUSTOMERS=10000")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (worker logs, state)")
    args = parser.parse_args(argv)
    args.bootstrap = None  # what start_broker and start_deployment read
    args.env = dict(item.split("=", 1) for item in args.worker_env)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="credence-state-bench-"))
        if not args.keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        broker = start_broker(args, stack)
        deployment = start_deployment(broker, workdir / "state", f"bench-st-{uuid.uuid4().hex[:8]}.", args, stack)
        _, filled = fill(deployment, args)
        log(f"filled: RSS {filled.rss_kib / 1024:.0f} MiB, {fmt_int(filled.changelog_records)} changelog records")
        restored = None if args.skip_restore else restore(deployment, args, filled.changelog_records)
        report(args, filled, restored)
    return 0


if __name__ == "__main__":
    sys.exit(main())
