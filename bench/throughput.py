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
   with ``--probe-broker``, the same events' send -> fetch by a plain consumer (the broker's share);
7. stops everything it started.

It also runs the pure scoring core in process over the same events (no Kafka; ``--profile``
adds a cProfile of it), and ``--sample-worker`` shows where the worker's threads spend the
pipeline interval. It prints figures and asserts nothing.

The phases live in their own modules: ``bench.kafka_io`` (producing, the raw consumer),
``bench.pipeline``, ``bench.latency``, ``bench.core``, ``bench.peer_quix`` (the peer);
``bench.machine`` holds the broker start and the CPU accounting; this module runs them
and prints the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import shutil
import signal
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from bench import peer_quix, promtext
from bench.core import CoreResult, profile_core, run_core
from bench.kafka_io import RawResult, cleanup_topics, produce_all, raw_consume
from bench.latency import LATENCY_METRIC, LatencyResult, percentile, run_latency
from bench.machine import BrokerInfo, fmt_int, log, machine_facts, now_ms, start_broker
from bench.pipeline import MAX_POLL_S, MIN_POLL_S, PipelineResult, run_pipeline, start_deployment
from bench.workload import BEHAVIOUR_TOPICS, LATENCY, THROUGHPUT, Workload, generate

RATIO_GOAL = 0.10
P99_GOAL_MS = 100.0


# -- report --------------------------------------------------------------------------------


def ms(v: float) -> str:
    return "   n/a" if math.isnan(v) else f"{v:6.1f}"


def pct_row(label: str, values: list[float]) -> str:
    return (f"  {label:<44} {ms(percentile(values, .5))} {ms(percentile(values, .95))} "
            f"{ms(percentile(values, .99))} {ms(values[-1] if values else math.nan)}  n={len(values)}")


def by_fifth(points: list[tuple[int, float]], windows: int = 5) -> str:
    """``p50/p99`` of latencies (ms) by fifth of the time their records were sent in;
    ``points`` are ``(send ms, latency ms)`` in send order."""
    start = points[0][0]
    span = max(1.0, (points[-1][0] - start) / windows)
    buckets: list[list[float]] = [[] for _ in range(windows)]
    for sent_at, latency in points:
        buckets[min(windows - 1, int((sent_at - start) / span))].append(latency)
    return "  ".join(f"{percentile(sorted(b), .5):.0f}/{percentile(sorted(b), .99):.0f}" for b in buckets)


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
            print(f"  p50/p99 detected_at - send (ms) by fifth of the send period: "
                  f"{by_fifth([(at, ms) for at, ms, _ in lat.points])}  (rising = the worker falls behind)")
        if lat.probe:
            print(pct_row("broker alone: send -> a plain consumer's fetch", sorted(ms for _, ms in lat.probe))
                  + "  every event, the worker's partitions and fetch wait")
            print(f"  p50/p99 broker alone (ms) by fifth of the send period: {by_fifth(lat.probe)}"
                  f"  (rising with the deltas' = the broker slows down)")
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
    parser.add_argument("--probe-broker", action="store_true",
                        help="latency phase: a plain consumer of the worker's input partitions times each event's "
                             "send -> fetch, the broker's share (its fetches load the broker too)")
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
