"""The pipeline phase: ``credence worker`` processes of one group timed over the produced
events from their ``/metrics``, and the helpers that watch and scrape workers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import peer_quix, promtext, sampler
from bench.kafka_io import records_written
from bench.machine import BrokerInfo, Usage, UsageMeter, log
from bench.workload import BEHAVIOUR_TOPICS
from tests.support.workers import Deployment, Worker

EVENTS_METRIC = "credence_input_events_total"
DELTAS_METRIC = "credence_signal_deltas_total"
BATCH_METRIC = "credence_batch_processing_seconds"
REPO_ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.2  # /metrics scrape period while the rate is not known yet (a scrape costs the worker ~2-4 ms)
MIN_POLL_S, MAX_POLL_S = 0.05, 1.0  # ... then about a tenth of the expected remaining time, within these
FIRST_POLL_S = 0.02  # ... and while waiting for its first progress




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
