"""Throughput and latency of the Credence worker: ``python -m bench.throughput``.

One run (about two minutes with the defaults on the embedded broker):

1. starts a broker: embedded Tansu (default), Apache Kafka (``--broker kafka``), or uses
   ``--bootstrap HOST:PORT``;
2. generates ``--events`` behaviour events (Zipf-popular customers, see ``bench/workload.py``)
   and produces them to topics with a unique prefix (a copy per further ``--workers`` count);
3. **raw**: a plain aiokafka consumer (no group) reads them all and decodes each value
   with orjson;
4. **pipeline**: ``credence worker`` processes of one group on the same events, once per
   ``--workers`` count (default 1, then 2: one per core of the reference machine; each
   run on its own copy of the topics); timed from the first ``/metrics`` scrape at which
   every worker shows progress to the first whose total counts all events;
5. prints both rates, their ratio and the goal;
6. **latency**: fresh topics and worker, a steady ``--latency-rate`` events/s for
   ``--latency-seconds`` with event time = send time; event-to-delta percentiles from
   the ``signal-deltas`` records (the goal is judged after ``--latency-warmup-seconds``,
   a fresh worker's first seconds, which are shown apart) and from the worker's histogram;
7. stops everything it started.

It also runs the pure scoring core in process over the same events (no Kafka; ``--profile``
adds a cProfile of it), and ``--sample-worker`` shows where the worker's threads spend the
pipeline interval. It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench import peer_quix, promtext, sampler
from bench.core import CoreResult, profile_core, run_core
from bench.machine import BrokerInfo, Usage, UsageMeter, fmt_int, log, machine_facts, now_ms, start_broker
from bench.workload import BEHAVIOUR_TOPICS, LATENCY, THROUGHPUT, Workload, generate
from scoring.timeutil import parse_ts
from streams.faust_ext.access import refresh_metadata
from tests.support.workers import Deployment, Worker

EVENTS_METRIC = "credence_input_events_total"
DELTAS_METRIC = "credence_signal_deltas_total"
LATENCY_METRIC = "credence_event_to_delta_seconds"
BATCH_METRIC = "credence_batch_processing_seconds"
REPO_ROOT = Path(__file__).resolve().parents[1]
RATIO_GOAL = 0.10
P99_GOAL_MS = 100.0
POLL_S = 0.2  # /metrics scrape period while the rate is not known yet (a scrape costs the worker ~2-4 ms)
MIN_POLL_S, MAX_POLL_S = 0.05, 1.0  # ... then about a tenth of the expected remaining time, within these
FIRST_POLL_S = 0.02  # ... and while waiting for its first progress



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
    by_partition: dict[int, int]  # events per partition number, over the four topics

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def raw_consume(bootstrap: str, prefix: str, n: int, deadline_s: float) -> RawResult:
    """A plain aiokafka consumer without a group: read the ``n`` records of the four
    behaviour topics from the beginning and orjson-decode each value.

    Timed from the moment its partitions are assigned and positioned at their start
    offsets (connected, metadata and offsets known: the analogue of a worker that has
    joined its group) until the ``n``-th value is decoded."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(prefix + t, p)
            for t in BEHAVIOUR_TOPICS
            for p in sorted(consumer.partitions_for_topic(prefix + t) or await _partitions(consumer, prefix + t))
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for tp in tps:
            await consumer.position(tp)
        began = time.perf_counter()
        count = size = 0
        first = math.nan
        by_partition: dict[int, int] = defaultdict(int)
        while count < n:
            if time.perf_counter() - began > deadline_s:
                raise TimeoutError(f"raw consumer read {count} of {n} records in {deadline_s}s")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for m in messages:
                    orjson.loads(m.value)
                    size += len(m.value)
                count += len(messages)
                by_partition[tp.partition] += len(messages)
            if count and math.isnan(first):
                first = time.perf_counter() - began
        return RawResult(count, time.perf_counter() - began, first, size, dict(by_partition))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        await refresh_metadata(consumer)  # aiokafka knows only subscribed topics
        if parts := consumer.partitions_for_topic(topic):
            return set(parts)
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no metadata for {topic}")


async def records_written(bootstrap: str, prefix: str, exclude: tuple[str, ...]) -> dict[str, int]:
    """Records in every topic of a deployment (its prefix, or its Faust app id for the
    changelogs) but ``exclude``, by name without the prefix. End offsets are taken as the
    larger of ListOffsets and a fetch's high watermark (the embedded broker's ListOffsets
    can fall short of the last batch's end)."""
    app_id = f"credence-{prefix.rstrip('.')}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="credence-bench")
    await admin.start()
    try:
        names = [t for t in await admin.list_topics()
                 if t.startswith((prefix, app_id)) and t not in {prefix + e for e in exclude}]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in names for p in sorted(await _partitions(consumer, t))]
        listed = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = time.monotonic() + 10
        while any(consumer.highwater(tp) is None for tp in tps) and time.monotonic() < end:
            await consumer.getmany(timeout_ms=100, max_records=1)
        counts: dict[str, int] = {}
        for tp in tps:
            name = tp.topic[len(prefix):] if tp.topic.startswith(prefix) else tp.topic[len(app_id) + 1:]
            counts[name] = counts.get(name, 0) + max(listed[tp], consumer.highwater(tp) or 0) - starts[tp]
        return counts
    finally:
        await consumer.stop()


# -- the pipeline --------------------------------------------------------------------------


def scrape_or_none(worker: Worker) -> list[promtext.Sample] | None:
    try:
        return promtext.scrape(worker.web_port)
    except OSError:
        return None  # web server not up yet


class WorkerWatch:
    """Fails fast when the worker dies, an agent crashes (Faust restarts it and the
    process lives on) or the count stops moving."""

    STALL_S = 30.0

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._offset = 0
        self._last_change = time.monotonic()
        self._last_value = -1.0

    def check(self, value: float | None = None) -> None:
        w = self.worker
        if not w.alive:
            raise RuntimeError(f"worker {w.name} exited:\n{w.log_tail()}")
        with contextlib.suppress(OSError), open(w.log_path, "rb") as f:
            f.seek(self._offset)
            new = f.read()
            self._offset += len(new)
            if b"Crashed reason=" in new:
                raise RuntimeError(f"an agent of worker {w.name} crashed:\n{w.log_tail(60)}")
        now = time.monotonic()
        if value is not None and value != self._last_value:
            self._last_value, self._last_change = value, now
        elif value is not None and now - self._last_change > self.STALL_S:
            raise TimeoutError(f"worker {w.name} stalled at {value:.0f} for {self.STALL_S:.0f}s:\n{w.log_tail()}")


def wait_for_progress(worker: Worker, deadline_s: float) -> tuple[float, float]:
    """Poll every FIRST_POLL_S until the worker has counted an input event;
    returns (monotonic time of that scrape, events counted by then)."""
    watch = WorkerWatch(worker)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        watch.check()
        samples = scrape_or_none(worker)
        if samples is not None and (count := promtext.total(samples, EVENTS_METRIC)) > 0:
            return time.monotonic(), count
        time.sleep(FIRST_POLL_S)
    raise TimeoutError(f"worker {worker.name} made no progress in {deadline_s}s:\n{worker.log_tail()}")


def scrape_all(workers: list[Worker]) -> list[promtext.Sample] | None:
    """Every worker's samples, concatenated (totals then add up); None if one is not up."""
    merged: list[promtext.Sample] = []
    for worker in workers:
        samples = scrape_or_none(worker)
        if samples is None:
            return None
        merged += samples
    return merged


def wait_for_count(
    workers: list[Worker], target: float, deadline_s: float,
    trace: list[tuple[float, float]] | None = None, **labels: str,
) -> tuple[float, list[promtext.Sample]]:
    """Poll until ``EVENTS_METRIC{labels}`` summed over ``workers`` reaches ``target``:
    rarely while far from it (scrapes cost the workers CPU), often near it (the end time
    is the first scrape at or past it). See :func:`next_poll_s`."""
    watches = [WorkerWatch(w) for w in workers]
    end = time.monotonic() + deadline_s
    last = 0.0
    seen: list[tuple[float, float]] = []
    while time.monotonic() < end:
        samples = scrape_all(workers)
        if samples is not None:
            at = time.monotonic()
            last = promtext.total(samples, EVENTS_METRIC, **labels)
            seen.append((at, last))
            if trace is not None:
                trace.append((at, last))
            if last >= target:
                return at, samples
        for watch in watches:
            watch.check(last if samples is not None else None)
        time.sleep(next_poll_s(seen, target))
    tails = "\n".join(w.log_tail() for w in workers)
    raise TimeoutError(f"workers counted {last:.0f} of {target:.0f} in {deadline_s}s:\n{tails}")


def next_poll_s(seen: list[tuple[float, float]], target: float) -> float:
    """About a tenth of the time the count needs to reach ``target`` at its rate since the
    first scrape, within MIN_POLL_S..MAX_POLL_S; POLL_S until there is a rate."""
    if len(seen) < 2 or seen[-1][1] <= seen[0][1]:
        return POLL_S
    (t0, c0), (t1, c1) = seen[0], seen[-1]
    remaining_s = (target - c1) / ((c1 - c0) / (t1 - t0))
    return min(MAX_POLL_S, max(MIN_POLL_S, remaining_s / 10))


def crossing(trace: list[tuple[float, float]], level: float) -> float:
    """When the count first reached ``level``, interpolated between scrapes."""
    for (t0, c0), (t1, c1) in itertools.pairwise(trace):
        if c1 >= level:
            return t0 if c1 == c0 else t0 + (t1 - t0) * (level - c0) / (c1 - c0)
    return trace[-1][0]


@dataclass
class PipelineResult:
    workers: int
    events: int
    seconds: float
    counted_at_start: float
    startup_s: float
    steady_rate: float
    tenths: list[float]  # seconds taken by each tenth of the events
    deltas: dict[str, float]
    outcomes: dict[str, float]
    dead_letters: float
    usage: Usage
    written: dict[str, int]
    batch_seconds: float
    batches: float
    samples: str = ""

    @property
    def timed_events(self) -> float:
        """Events counted between the first and the last scrape (a fetch can be big)."""
        return self.events - self.counted_at_start

    @property
    def rate(self) -> float:
        return self.timed_events / self.seconds


def start_deployment(
    broker: BrokerInfo, workdir: Path, prefix: str, args: argparse.Namespace, stack: ExitStack
) -> Deployment:
    """A deployment with its own topics (created) and work folder; stopped with ``stack``."""
    deployment = Deployment(broker.bootstrap, workdir, prefix=prefix, env_extra=dict(args.env))
    deployment.workdir.mkdir(parents=True)
    stack.callback(deployment.stop)
    deployment.apply_topics()
    return deployment


def run_pipeline(
    deployment: Deployment, n: int, broker: BrokerInfo, sample_path: Path | None, workers: int = 1
) -> PipelineResult:
    """``workers`` worker processes of one group over the produced events.

    Timed from the moment every worker has counted an event (all hold partitions) to
    the first scrape whose total over the workers reaches ``n``; events counted before
    that are left out of the rate. A rebalance after that point is part of the timing."""
    if sample_path is not None:
        # the worker imports bench.sampler at start-up through a sitecustomize module
        hook = sample_path.parent / "sampler-hook"
        hook.mkdir(exist_ok=True)
        (hook / "sitecustomize.py").write_text("import bench.sampler  # noqa: F401\n")
        path = [str(hook), str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        deployment.env_extra.update(CREDENCE_BENCH_SAMPLE=str(sample_path), PYTHONPATH=os.pathsep.join(path))
    started = [deployment.start_worker(f"pipeline-{workers}-{i}") for i in range(workers)]
    launched = time.monotonic()
    for worker in started:
        wait_for_progress(worker, deadline_s=120)
    t0 = time.monotonic()
    c0 = promtext.total(scrape_all(started) or [], EVENTS_METRIC)
    if sample_path is not None:
        sample_path.with_suffix(".start").touch()
    meter = UsageMeter([w.proc.pid if w.proc else None for w in started], broker.pid)
    log(f"{workers} worker(s) progressing {t0 - launched:.1f}s after launch ({c0:.0f} events already counted); timing")
    trace: list[tuple[float, float]] = [(t0, c0)]
    t1, samples = wait_for_count(started, n, deadline_s=60 + n / 100, trace=trace)
    usage = meter.stop()
    sampled = ""
    if sample_path is not None:
        sample_path.with_suffix(".stop").touch()
        end = time.monotonic() + 10
        while not sample_path.exists() and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(0.2)  # let the write finish
        sampled = sampler.summarise(sample_path) if sample_path.exists() else "(no samples written)"
    batch_s = promtext.total(samples, BATCH_METRIC + "_sum")
    batches = promtext.total(samples, BATCH_METRIC + "_count")
    elapsed = t1 - t0
    lo, hi = crossing(trace, 0.1 * n), crossing(trace, 0.9 * n)
    steady = 0.8 * n / (hi - lo) if hi > lo else math.nan
    marks = [t0] + [crossing(trace, n * k / 10) for k in range(1, 11)]
    tenths = [b - a for a, b in itertools.pairwise(marks)]
    log(f"all {n} events counted after {elapsed:.2f}s; waiting 2 s for timer-fired deltas")
    time.sleep(2.0)  # risk deltas fired by the 1 s timer after the last event
    final = scrape_all(started) or []
    for worker in started:
        worker.stop()
    written = asyncio.run(records_written(deployment.bootstrap, deployment.prefix, (*BEHAVIOUR_TOPICS, peer_quix.TOPIC)))
    return PipelineResult(
        workers=workers,
        events=n,
        seconds=elapsed,
        counted_at_start=c0,
        startup_s=t0 - launched,
        steady_rate=steady,
        tenths=tenths,
        deltas=promtext.by_label(final, DELTAS_METRIC, "signal"),
        outcomes=promtext.by_label(final, EVENTS_METRIC, "outcome"),
        dead_letters=promtext.total(final, "credence_dead_letters_total"),
        usage=usage,
        written=written,
        batch_seconds=batch_s,
        batches=batches,
        samples=sampled,
    )


# -- latency -------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
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
    #: the same after the first --latency-warmup-seconds of sending (a fresh worker's first seconds)
    steady_detected_ms: list[float] = field(default_factory=list)
    warmup_s: float = 0.0
    received_ms: list[float] = field(default_factory=list)
    timer_detected_ms: list[float] = field(default_factory=list)  # timer-fired (risk)
    by_signal: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    histogram: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    worker_deltas: float = 0.0
    catch_up_s: float = 0.0
    usage: Usage | None = None
    wall_s: float = 0.0  # production start to worker caught up (the usage interval)
    points: list[tuple[int, int, str]] = field(default_factory=list)  # (send ms, detected - send ms, signal)


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
    deployment: Deployment, worker: Worker, workload: Workload, rate: float, seconds: float, warmup_s: float
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
        watch = WorkerWatch(worker)
        while time.monotonic() < end:
            scraped = await asyncio.to_thread(scrape_or_none, worker)
            samples = scraped or []
            counted = sum(promtext.total(samples, EVENTS_METRIC, topic=t) for t in BEHAVIOUR_TOPICS)
            if counted >= produced:
                behaviour_done = True
                break
            watch.check(counted)
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
    result = LatencyResult(seconds=took, rate=produced / took, produced=produced, worker_deltas=emitted,
                           catch_up_s=catch_up, warmup_s=warmup_s)
    first_send = min((at for at, _ in sent.values()), default=0)
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
        result.points.append((completing_send, detected, record["signal"]))
        if parse_ts(record["ts"]) == completing_ts:  # fired on arrival of its last event
            result.detected_ms.append(detected)
            if completing_send - first_send >= warmup_s * 1000:
                result.steady_detected_ms.append(detected)
            result.received_ms.append(received_at - completing_send)
            result.by_signal[record["signal"]].append(detected)
        else:  # fired later by the risk timer
            result.timer_detected_ms.append(detected)
    for values in (result.detected_ms, result.steady_detected_ms, result.received_ms, result.timer_detected_ms,
                   *result.by_signal.values()):
        values.sort()
    result.points.sort()
    return result


def run_latency(
    broker: BrokerInfo, workdir: Path, prefix: str, args: argparse.Namespace, stack: ExitStack
) -> LatencyResult:
    deployment = start_deployment(broker, workdir / "latency", prefix, args, stack)
    workload = Workload(LATENCY, customers=args.customers, zipf_s=args.zipf_s, seed=args.seed + 1)
    worker = deployment.start_worker("latency")
    # warm-up: the directory (one record per customer) also proves the worker has joined
    directory = workload.directory()
    deployment.produce(directory)
    wait_for_count([worker], len(directory), 120, topic="customer-directory")
    log(f"latency worker has processed the directory ({len(directory)} records); "
        f"producing {args.latency_rate:.0f} events/s for {args.latency_seconds:.0f}s")
    meter, began = UsageMeter([worker.proc.pid if worker.proc else None], broker.pid), time.monotonic()
    result = asyncio.run(_latency_run(
        deployment, worker, workload, args.latency_rate, args.latency_seconds, args.latency_warmup_seconds
    ))
    result.usage, result.wall_s = meter.stop(), time.monotonic() - began
    worker.stop()
    (deployment.workdir / "latency-points.json").write_bytes(orjson.dumps(result.points))  # kept with --keep
    return result


# -- cleanup on an existing cluster ----------------------------------------------------------------


def cleanup_topics(bootstrap: str, prefixes: list[str]) -> None:
    """Delete the topics of our deployments (prefixed, Faust's under the app ids, Quix's changelogs)."""
    owned = [p for prefix in prefixes for p in (prefix, f"credence-{prefix.rstrip('.')}", f"changelog__{prefix}")]
    deleted = asyncio.run(delete_topics(bootstrap, owned))
    log(f"deleted {len(deleted)} topics of this run: {', '.join(deleted) or '-'}")


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
    """Percentiles of a Prometheus histogram as the upper bound of their bucket."""
    bounds = [promtext.bucket_bound(p, cumulative) * 1000 for p in (.5, .95, .99)]
    share = promtext.share_at_most(0.1, cumulative)
    n = cumulative[-1][1] if cumulative else 0
    cells = " ".join(f"{'<=' + format(b, '.0f'):>6}" for b in bounds)
    return f"  {label:<44} {cells}    -    n={n:.0f}, {share * 100:.2f} % <= 100 ms"


def print_summary(
    facts: dict[str, str], broker: BrokerInfo, args: argparse.Namespace, mean_size: float,
    produce_s: float, raw: RawResult | None, pipes: list[PipelineResult],
    core: list[CoreResult], peer: peer_quix.PeerResult | None, lat: LatencyResult | None, wall_s: float,
) -> None:
    n = args.events
    line = "=" * 100
    print(f"\n{line}\nCredence benchmark — summary ({time.strftime('%Y-%m-%d %H:%M %Z')}, whole run {wall_s:.0f}s)\n{line}")
    print(f"machine   nproc={facts['nproc']}  {facts['cpu']}  {facts['os']}  load average at start {facts['load']}")
    print(f"software  {facts['python']}; {facts['packages']}")
    print(f"broker    {broker.kind}, version {broker.version}, {broker.bootstrap}")
    if args.env:
        print(f"worker    extra environment: {' '.join(f'{k}={v}' for k, v in args.env.items())}")
    mix = "/".join(f"{THROUGHPUT.mix[t] * 100:.0f}" for t in BEHAVIOUR_TOPICS)
    print(f"workload  {fmt_int(n)} events, mean value {mean_size:.0f} B, {fmt_int(args.customers)} customers "
          f"(Zipf s={args.zipf_s}), mix {mix} % {'/'.join(BEHAVIOUR_TOPICS)}; produced in {produce_s:.1f}s "
          f"({fmt_int(n / produce_s)}/s)")
    if raw or pipes or core or peer:
        print("\nthroughput                                      events   seconds     events/s   vs raw")
    if raw:
        print(f"  raw aiokafka consumer + orjson decode     {fmt_int(raw.events):>12} {raw.seconds:9.2f} "
              f"{fmt_int(raw.rate):>12}   100 %")
    if raw:
        partition, most = max(raw.by_partition.items(), key=lambda kv: kv[1])
        print(f"  (partition {partition} of the four topics holds {most / raw.events * 100:.0f} % of the events, "
              f"an even spread {100 / len(raw.by_partition):.0f} %: the hottest customers' keys hash there)")
    if peer:
        ratio = peer.rate / raw.rate if raw else math.nan
        label = f"Quix Streams {peer.version} count, {peer.partitions} part."
        print(f"  {label:<40} {fmt_int(peer.events):>12} {peer.seconds:9.2f} {fmt_int(peer.rate):>12}  {ratio * 100:5.1f} %")
    for pipe in pipes:
        ratio = pipe.rate / raw.rate if raw else math.nan
        verdict = "met" if ratio >= RATIO_GOAL else "NOT met"
        label = f"credence, {pipe.workers} worker process{'es' if pipe.workers > 1 else ''}"
        print(f"  {label:<40} {fmt_int(pipe.timed_events):>12} {pipe.seconds:9.2f} "
              f"{fmt_int(pipe.rate):>12}  {ratio * 100:5.1f} %  goal >= {RATIO_GOAL * 100:.0f} %: {verdict}")
    for c in core:
        label = {"core": "scoring core only (no Kafka)",
                 "core+codec": "scoring core + state codec per flush"}[c.name]
        ratio = c.rate / raw.rate if raw else math.nan
        print(f"  {label:<40} {fmt_int(c.events):>12} {c.seconds:9.2f} {fmt_int(c.rate):>12}  {ratio * 100:5.1f} %")
    for pipe in pipes:
        print(f"  {pipe.workers} worker(s): from the first /metrics scrape at which every worker has counted events "
              f"(already {pipe.counted_at_start:.0f}) -> first scrape with sum >= {n}; scraped every {MIN_POLL_S * 1000:.0f}-{MAX_POLL_S * 1000:.0f} ms (more often near the end);")
        print(f"    rate = (N - already counted) / interval; 10 %->90 % of events: {fmt_int(pipe.steady_rate)}/s; "
              f"worker start to first progress {pipe.startup_s:.1f}s")
        busy = pipe.batch_seconds / pipe.seconds
        print(f"    seconds per tenth of the events: {' '.join(f'{t:.1f}' for t in pipe.tenths)}")
        print(f"    {pipe.usage.describe(pipe.seconds)}")
        per_event = pipe.usage.worker / pipe.timed_events * 1e6
        print(f"    worker CPU per input event {per_event:.0f} us: one full core would give at most "
              f"{fmt_int(1e6 / per_event)} events/s per worker (a figure less sensitive to other load than the rate)")
        written = sum(pipe.written.values())
        top = ", ".join(f"{k} {fmt_int(v)}" for k, v in sorted(pipe.written.items(), key=lambda kv: -kv[1]) if v)
        print(f"    records the worker wrote: {fmt_int(written)} ({written / n:.2f} per input event): {top}")
        print(f"    processing batches {pipe.batch_seconds:.1f}s ({busy * 100:.0f} % of the interval), "
              f"{pipe.batches:.0f} batches of {n / max(pipe.batches, 1):.0f} events on average")
        deltas = ", ".join(f"{k} {v:.0f}" for k, v in sorted(pipe.deltas.items()))
        outcomes = ", ".join(f"{k} {v:.0f}" for k, v in sorted(pipe.outcomes.items()))
        print(f"    deltas by signal: {deltas} (total {sum(pipe.deltas.values()):.0f}); outcomes: {outcomes}; "
              f"dead letters {pipe.dead_letters:.0f}")
    if peer:
        print(f"  Quix Streams: per-key count in RocksDB with its changelog, JSON values; timed from its first "
              f"record to the last; process CPU per event {peer.cpu_per_event_us:.0f} us; the process ran "
              f"{peer.wall_s:.1f}s (start, join, changelog set-up, final checkpoint)")
        ratios = [f"{p.workers} worker(s) {p.rate / peer.rate:.2f}x" for p in pipes]
        ratios += [f"{c.name} {c.rate / peer.rate:.2f}x" for c in core]
        if ratios:
            print(f"  vs Quix (goal: one worker >= 1.00x): {', '.join(ratios)}")
    if core:
        print(f"  core check: deltas {dict(sorted(core[0].deltas.items()))}; largest customer state "
              f"{core[-1].largest_state_bytes / 1024:.0f} KiB")
    if lat:
        total = len(lat.detected_ms)
        print(f"\nlatency   {fmt_int(lat.produced)} events at {lat.rate:.0f}/s for {lat.seconds:.1f}s, event ts = send time; "
              f"{len(lat.deltas)} deltas read ({lat.worker_deltas:.0f} emitted), {total} fired on arrival of their last event, "
              f"{len(lat.timer_detected_ms)} by the risk timer; worker caught up {lat.catch_up_s:.1f}s after the last send")
        lp = LATENCY
        print(f"  workload: mix {'/'.join(f'{lp.mix[t] * 100:.0f}' for t in BEHAVIOUR_TOPICS)} %, quote opens "
              f"{lp.quote_share * 100:.0f} % of opens ({lp.long_dwell_share * 100:.0f} % over 120 s), logins only "
              f"{'/'.join(lp.roles)}, {lp.contract_share * 100:.0f} % of rush notes name a contract "
              f"({lp.new_contract_share * 100:.0f} % new), stale-updates as back-dated progress + reply pairs "
              f"({lp.outcomes.get('reconsider', 0) * 100:.0f} % reconsider)")
        print(f"  {'ms':<44}    p50    p95    p99    max   goal p99 < {P99_GOAL_MS:.0f} ms")
        met = percentile(lat.steady_detected_ms, .99) < P99_GOAL_MS
        print(pct_row(f"detected_at - send, after the first {lat.warmup_s:.0f} s", lat.steady_detected_ms)
              + f"  {'met' if met else 'NOT met'}")
        print(pct_row("detected_at - send time of completing event", lat.detected_ms)
              + "  (all, the fresh worker's first seconds included)")
        print(pct_row("bench receive - send time of completing event", lat.received_ms))
        for signal_name, values in sorted(lat.by_signal.items()):
            print(pct_row(f"  detected_at, {signal_name}", values))
        if lat.timer_detected_ms:
            print(pct_row("  detected_at, risk fired by the 1 s timer", lat.timer_detected_ms))
        if lat.points:
            start, windows = lat.points[0][0], 5
            span = max(1.0, (lat.points[-1][0] - start) / windows)
            buckets: list[list[float]] = [[] for _ in range(windows)]
            for sent_at, latency, _ in lat.points:
                buckets[min(windows - 1, int((sent_at - start) / span))].append(latency)
            parts = [f"{percentile(sorted(b), .5):.0f}/{percentile(sorted(b), .99):.0f}" for b in buckets]
            print(f"  p50/p99 detected_at - send (ms) by fifth of the send period: {'  '.join(parts)}"
                  f"  (rising = the worker falls behind)")
        print(hist_row(f"worker histogram {LATENCY_METRIC}{{clock=event}}", lat.histogram.get("event", [])))
        print(hist_row("worker histogram ...{clock=ingest} (broker ts)", lat.histogram.get("ingest", [])))
        print("  (histogram: the bucket (5/10/25/50/100/250/500 ms, 1/2.5/5/10/30/60 s) holding each percentile;\n"
              "   the record timestamp is the producer's CreateTime, i.e. the send time, so both clocks agree here)")
        if lat.usage:
            print(f"  during the phase ({lat.wall_s:.0f}s): {lat.usage.describe(lat.wall_s)}")
        if pipes and pipes[0].rate < lat.rate:
            print(f"  NOTE: {lat.rate:.0f} events/s is more than one worker's measured {pipes[0].rate:.0f}/s: "
                  f"the worker falls behind, and these latencies are mostly queueing delay")
    intervals = [(p.usage, p.seconds) for p in pipes] + ([(lat.usage, lat.wall_s)] if lat and lat.usage else [])
    shared = [u.others / secs for u, secs in intervals if secs]
    if shared and max(shared) > 0.25:
        print(f"  WARNING: processes this benchmark did not start used up to {max(shared) * 100:.0f} % of a core "
              f"while it measured: the figures are lower than this machine gives when idle")
    print(line)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--broker", choices=("tansu", "embedded", "kafka"), default="tansu",
                       help="broker to start: embedded Tansu (default) or Apache Kafka")
    where.add_argument("--bootstrap", metavar="HOST:PORT", help="use this running cluster (topics are deleted after)")
    parser.add_argument("--events", type=int, default=200_000, help="throughput events (default 200000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], metavar="N",
                        help="pipeline runs, one per worker count (default: 1 2; each on its own copy of the events)")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--zipf-s", type=float, default=1.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--latency-rate", type=float, default=1000.0, help="events/s in the latency phase")
    parser.add_argument("--latency-warmup-seconds", type=float, default=5.0,
                        help="first seconds of the latency phase reported apart from the steady state (default 5)")
    parser.add_argument("--skip", action="append", default=[], choices=("raw", "pipeline", "core", "latency"),
                        help="skip a phase (repeatable)")
    parser.add_argument("--peer", choices=("quix", "none"), default="quix",
                        help="the peer to run over a copy of the events (default quix: Quix Streams' per-key "
                             "stateful count, from the bench extra; skipped with a note if not installed)")
    parser.add_argument("--peer-partitions", type=int, default=4, help="partitions of the peer's input topic")
    parser.add_argument("--profile", action="store_true", help="print cProfile of the in-process core")
    parser.add_argument("--sample-worker", action="store_true",
                        help="sample the pipeline worker's threads every 5 ms (diagnostic; "
                             "costs the worker a few %%) and print where the time goes")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the workers, e.g. CREDENCE_BATCH_WITHIN_SECONDS=0.05 or "
                             "Faust's PRODUCER_LINGER=0.005 (repeatable; printed in the summary)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (worker logs, state)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.env = dict(item.split("=", 1) for item in args.worker_env)
    # aiokafka logs retried NotLeaderForPartition warnings while fresh topics elect leaders
    logging.getLogger("aiokafka").setLevel(logging.ERROR)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    began = time.monotonic()
    facts = machine_facts()
    raw = lat = None
    pipes: list[PipelineResult] = []
    core: list[CoreResult] = []
    peer: peer_quix.PeerResult | None = None
    try:
        with ExitStack() as stack:
            workdir = Path(tempfile.mkdtemp(prefix="credence-bench-"))
            if not args.keep:
                stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            broker = start_broker(args, stack)
            prefixes = [f"bench-tp-{uuid.uuid4().hex[:8]}.", f"bench-lat-{uuid.uuid4().hex[:8]}."]
            if args.bootstrap:  # an existing cluster keeps no topics of ours
                stack.callback(cleanup_topics, broker.bootstrap, prefixes)

            # 2. workload, produced once
            t = time.perf_counter()
            workload = Workload(THROUGHPUT, customers=args.customers, zipf_s=args.zipf_s, seed=args.seed)
            events = generate(workload, args.events, now_ms())
            mean_size = sum(len(v) for _, _, v in events) / max(len(events), 1)
            log(f"generated {len(events)} events in {time.perf_counter() - t:.1f}s (mean value {mean_size:.0f} B); "
                f"top customer {workload.zipf.share_of_top(1) * 100:.1f} % of traffic, top 100 "
                f"{workload.zipf.share_of_top(100) * 100:.0f} %")
            deployment = start_deployment(broker, workdir / "throughput", prefixes[0], args, stack)
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

            # the peer, over its own copy of the events on the same broker
            if args.peer == "quix" and peer_quix.installed() is None:
                log("Quix Streams is not installed here (`make bench` installs the bench extra into .venv-bench): "
                    "no peer")
            elif args.peer == "quix":
                peer = peer_quix.run_quix(broker.bootstrap, deployment.prefix, events, workdir / "quix",
                                          args.peer_partitions)
                log(f"quix: {peer.rate:.0f} events/s ({peer.seconds:.2f}s; the process ran {peer.wall_s:.1f}s)")

            # 4. pipeline: for each worker count, a group of workers over its own copy of the events
            for i, workers in enumerate([] if "pipeline" in args.skip else args.workers):
                if i:
                    prefixes.append(f"bench-tp{workers}-{uuid.uuid4().hex[:8]}.")
                    deployment = start_deployment(broker, workdir / f"throughput-{workers}", prefixes[-1], args, stack)
                    asyncio.run(produce_all(broker.bootstrap, deployment.prefix, events))
                sample_path = workdir / f"worker-samples-{workers}.json" if args.sample_worker and workers == 1 else None
                pipe = run_pipeline(deployment, len(events), broker, sample_path, workers)
                pipes.append(pipe)
                log(f"pipeline, {workers} worker(s): {pipe.timed_events:.0f} events timed in {pipe.seconds:.2f}s "
                    f"= {pipe.rate:.0f}/s; deltas {dict(pipe.deltas)}")
                if pipe.samples:
                    print(pipe.samples, flush=True)
            del events

            # 6. latency
            if "latency" not in args.skip:
                lat = run_latency(broker, workdir, prefixes[1], args, stack)
                log(f"latency: {len(lat.detected_ms)} deltas, p99 {percentile(lat.detected_ms, .99):.1f} ms "
                    f"(after the first {lat.warmup_s:.0f} s: {percentile(lat.steady_detected_ms, .99):.1f} ms)")
            if args.keep:
                log(f"work folder kept: {workdir}")
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as exc:  # a worker died, crashed or stalled
        print(f"benchmark aborted (everything started was stopped): {exc}", file=sys.stderr)
        return 1
    print_summary(facts, broker, args, mean_size, produce_s, raw, pipes, core, peer, lat, time.monotonic() - began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
