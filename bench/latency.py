"""The latency phase: a steady rate of events stamped with their send time, and the
event-to-delta latency of the deltas they complete."""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import promtext
from bench.machine import BrokerInfo, Usage, UsageMeter, log, now_ms
from bench.pipeline import (
    DELTAS_METRIC,
    EVENTS_METRIC,
    POLL_S,
    WorkerWatch,
    scrape_or_none,
    start_deployment,
    wait_for_count,
)
from bench.workload import BEHAVIOUR_TOPICS, LATENCY, Workload
from scoring.timeutil import parse_ts
from streams.settings import Settings
from tests.support.workers import Deployment, Worker

LATENCY_METRIC = "credence_event_to_delta_seconds"


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
    #: the broker alone: (send ms, receive - send ms) of each probe record
    probe: list[tuple[int, int]] = field(default_factory=list)


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


async def _collect(
    bootstrap: str, topics: list[str], fetch_wait_ms: int, out: list[tuple[int, dict[str, Any]]], stop: asyncio.Event
) -> None:
    """Read ``topics`` from the start until ``stop``: ``(receive ms, value)`` per record."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_wait_ms,
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
    deployment: Deployment, worker: Worker, workload: Workload, rate: float, seconds: float, warmup_s: float,
    probe_broker: bool,
) -> LatencyResult:
    sent: dict[str, tuple[int, int]] = {}  # event_id -> (send time ms, event ts ms)
    received: list[tuple[int, dict[str, Any]]] = []
    stop = asyncio.Event()
    probed: list[tuple[int, dict[str, Any]]] = []  # the input events as a plain consumer fetched them
    collector = asyncio.create_task(_collect(deployment.bootstrap, [deployment.prefix + "signal-deltas"], 50,
                                             received, stop))
    probe = None
    if probe_broker:  # the broker's share: a plain consumer of the worker's input partitions, its fetch wait
        inputs = [deployment.prefix + t for t in BEHAVIOUR_TOPICS]
        probe = asyncio.create_task(_collect(deployment.bootstrap, inputs, Settings().fetch_max_wait_ms, probed, stop))
    try:
        await asyncio.sleep(1.0)  # let the delta consumer and the probe connect and position themselves
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
        if probe is not None:
            await probe
    result = LatencyResult(seconds=took, rate=produced / took, produced=produced, worker_deltas=emitted,
                           catch_up_s=catch_up, warmup_s=warmup_s)
    first_send = min((at for at, _ in sent.values()), default=0)
    result.probe = sorted((sent[v["event_id"]][0], at - sent[v["event_id"]][0]) for at, v in probed
                          if v.get("event_id") in sent)
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
        deployment, worker, workload, args.latency_rate, args.latency_seconds, args.latency_warmup_seconds,
        args.probe_broker,
    ))
    result.usage, result.wall_s = meter.stop(), time.monotonic() - began
    worker.stop()
    (deployment.workdir / "latency-points.json").write_bytes(orjson.dumps(result.points))  # kept with --keep
    return result
