"""Does web traffic starve event processing? ``python -m bench.web_flood``.

1. starts a broker (embedded Tansu by default, ``--broker kafka``) and one worker;
2. gives it ``--teams`` scored teams (two customers each; one sales action per team);
3. **quiet**: ``--rate`` behaviour events/s for ``--seconds`` with event time = send time,
   event-to-delta latency from the ``signal-deltas`` records;
4. **flood**: the same while ``--clients`` concurrent clients request ``--path`` in a loop;
   request latency and status counts besides the delta latency;
5. stops everything it started.

It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.latency import _collect_deltas, _paced_produce, percentile
from bench.machine import log, now_ms, start_broker
from bench.pipeline import wait_for_count
from bench.workload import LATENCY, Workload
from scoring.timeutil import parse_ts
from tests.support.workers import Deployment, Record, Worker

REGIONS = ("east", "west", "north", "south", "central", "overseas")
DAY_MS = 86_400_000


@dataclass
class Phase:
    name: str
    produced: int = 0
    detected_ms: list[float] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)


def team_workload(teams: int, seed: int) -> Workload:
    """Two customers per team, teams ``team-0000`` ... spread over :data:`REGIONS`."""
    workload = Workload(LATENCY, customers=2 * teams, seed=seed)
    for i, customer in enumerate(workload.customers):
        customer.team_id, customer.region = f"team-{i % teams:04d}", REGIONS[i % teams % len(REGIONS)]
    return workload


def sales_actions(workload: Workload, teams: int) -> list[Record]:
    """One action per team, done on time: every team gets an action-completion score."""
    now = now_ms()
    return [
        ("sales-action", c.customer_id,
         {"event_id": f"sa-{i}", "ts": now - 2 * DAY_MS, "customer_id": c.customer_id, "ip": c.ip,
          "opportunity_id": f"o-{i}", "team_id": c.team_id, "action": "call", "due_ts": now - DAY_MS,
          "done_ts": now - DAY_MS - 60_000})
        for i, c in enumerate(workload.customers[:teams])
    ]


def wait_for_teams(worker: Worker, teams: int, deadline_s: float) -> None:
    import urllib.request

    end = time.monotonic() + deadline_s
    count = 0
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/teams", timeout=30) as answer:
                count = len(orjson.loads(answer.read()))
        except OSError:
            pass
        if count >= teams:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{count} of {teams} teams scored after {deadline_s}s:\n{worker.log_tail()}")


def flood_process(url: str, clients: int, seconds: float, results: Queue[tuple[list[float], Counter[int | str]]]) -> None:
    """``clients`` concurrent clients requesting ``url`` for ``seconds``, in a process of
    its own: on the bench's event loop, reading the answers would delay the events sent."""
    phase = Phase("flood")
    asyncio.run(_flood(url, clients, time.monotonic() + seconds, phase))
    results.put((phase.request_ms, phase.statuses))


async def _flood(url: str, clients: int, end: float, phase: Phase) -> None:
    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < end:
            began = time.monotonic()
            try:
                async with session.get(url) as answer:
                    await answer.read()
                    phase.statuses[answer.status] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                phase.statuses[type(exc).__name__] += 1
            phase.request_ms.append((time.monotonic() - began) * 1000)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))


async def run_phase(
    deployment: Deployment, worker: Worker, workload: Workload, args: argparse.Namespace, flood: bool
) -> Phase:
    phase = Phase("flood" if flood else "quiet")
    sent: dict[str, tuple[int, int]] = {}
    received: list[tuple[int, dict[str, Any]]] = []
    stop_deltas = asyncio.Event()
    collector = asyncio.create_task(_collect_deltas(deployment.bootstrap, deployment.prefix, received, stop_deltas))
    spawn = multiprocessing.get_context("spawn")  # a fork would inherit the running event loop
    results: Queue[tuple[list[float], Counter[int | str]]] = spawn.Queue()
    flooding = None
    if flood:
        url = f"http://127.0.0.1:{worker.web_port}{args.path}"
        flooding = spawn.Process(target=flood_process,
                                 args=(url, args.clients, args.seconds + 1 + args.drain_seconds, results))
        flooding.start()
    try:
        await asyncio.sleep(1.0)  # the delta consumer positions itself; the flood is under way
        phase.produced, _ = await _paced_produce(
            deployment.bootstrap, deployment.prefix, workload, args.rate, args.seconds, sent
        )
        await asyncio.sleep(args.drain_seconds)  # deltas of the last events
    finally:
        if flooding is not None:
            phase.request_ms, phase.statuses = await asyncio.to_thread(results.get)
            flooding.join()
        stop_deltas.set()
        await collector
    for _, record in received:
        evidence = [sent[e["event_id"]] for e in record["evidence"] if e["event_id"] in sent]
        if evidence:
            completing_send, completing_ts = max(evidence)
            if parse_ts(record["ts"]) == completing_ts:  # fired on arrival of its last event
                phase.detected_ms.append(parse_ts(record["detected_at"]) - completing_send)
    phase.detected_ms.sort()
    phase.request_ms.sort()
    return phase


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<26} (none)"
    pcts = "  ".join(f"p{int(q * 100)} {percentile(values, q):8.0f}" for q in (0.5, 0.95, 0.99))
    return f"{label:<26} n={len(values):<6} {pcts}  max {values[-1]:8.0f} ms"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.web_flood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu")
    parser.add_argument("--teams", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=200, help="concurrent web clients in the flood")
    parser.add_argument("--path", default="/heatmap")
    parser.add_argument("--rate", type=float, default=100.0, help="behaviour events/s in both phases")
    parser.add_argument("--seconds", type=float, default=20.0, help="sending time of each phase")
    parser.add_argument("--drain-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.bootstrap = None
    with ExitStack() as stack:
        broker = start_broker(args, stack)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="credence-web-flood-")))
        deployment = Deployment(broker.bootstrap, workdir, prefix=f"wf{uuid.uuid4().hex[:6]}.")
        stack.callback(deployment.stop)
        deployment.apply_topics()
        worker = deployment.start_worker()
        workload = team_workload(args.teams, args.seed)
        directory = workload.directory()
        deployment.produce(directory)
        wait_for_count([worker], len(directory), 180, topic="customer-directory")
        deployment.produce(sales_actions(workload, args.teams))
        wait_for_teams(worker, args.teams, 180)
        log(f"{args.teams} teams scored; {args.rate:.0f} events/s for {args.seconds:.0f}s per phase")
        phases = [asyncio.run(run_phase(deployment, worker, workload, args, flood)) for flood in (False, True)]
        report(phases, broker.kind, args)
    return 0


def report(phases: list[Phase], broker: str, args: argparse.Namespace) -> None:
    print(f"\nweb flood: {args.teams} teams, {args.clients} concurrent clients on {args.path}, "
          f"{args.rate:.0f} events/s, {broker}")
    for phase in phases:
        print(summary(f"{phase.name}: event -> delta", phase.detected_ms))
    flood = phases[1]
    print(summary("flood: request", flood.request_ms))
    print(f"flood: answers {dict(flood.statuses)} "
          f"({sum(flood.statuses.values()) / (args.seconds + 1 + args.drain_seconds):.0f}/s)")


if __name__ == "__main__":
    raise SystemExit(main())
