"""``credence``: run, broker, worker, replay, heatmap, topics, rules."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from scoring.catalog import CREDIBILITY_HEATMAP
from scoring.timeutil import now_ms
from streams.cli import rules
from streams.cli.arguments import rules_or_exit, settings_or_exit, time_arg
from streams.cli.rules_diff import add_diff_parser

if TYPE_CHECKING:
    from scoring.replay import ReplayResult
    from streams.settings import Settings


def cmd_topics(args: argparse.Namespace) -> int:
    from scoring.catalog import load_catalog
    from streams.kafka.topic_admin import apply_topics, check_topics

    settings, catalog = settings_or_exit(), load_catalog()
    if not settings.bootstrap_servers:
        sys.exit("credence: KAFKA_BOOTSTRAP_SERVERS is not set")
    if args.action == "apply":
        created = asyncio.run(apply_topics(settings, catalog))
        print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")
        return 0
    drift = asyncio.run(check_topics(settings, catalog))
    for problem in drift:
        print(f"drift: {problem}")
    print("topics match topics.yaml" if not drift else f"{len(drift)} difference(s)")
    return 1 if drift else 0


def _replay_log(path: str, rules_file: str | None, now: int | None, heatmap_at: int | None = None) -> ReplayResult:
    from scoring.catalog import load_catalog
    from scoring.replay import read_log, replay
    from streams.ops.gc_freeze import batch_collections

    settings = settings_or_exit()
    rules = rules_or_exit(settings, rules_file)
    with open(path, "rb") as log, batch_collections():
        # a replay "at" --now bounds event times by it, as a live worker by its wall clock
        return replay(
            read_log(log), load_catalog(), rules, now=now,
            rollup=settings.rollup_for(rules), heatmap_at=heatmap_at,
            wall_clock=now, max_skew_ms=settings.max_event_skew_ms,
        )


def cmd_replay(args: argparse.Namespace) -> int:
    from scoring.replay import write_deltas, write_outputs

    result = _replay_log(args.log, args.rules, time_arg(args.now, "--now"))
    write_deltas(result.deltas, sys.stdout.buffer, now_ms())
    if args.all:
        write_outputs(result.outputs, sys.stdout.buffer)
    sys.stdout.flush()
    for record, error in result.invalid:
        print(f"dead-letter: {record.topic}: {error.reason}: {error.detail}", file=sys.stderr)
    for tick, error in result.failed_ticks:
        print(f"dead-letter: tick {tick.customer_id}@{tick.now}: {error.reason}: {error.detail}", file=sys.stderr)
    for team_failure in result.failed_team_updates:
        error = team_failure.error
        print(f"dead-letter: team {team_failure.team_id}: {error.reason}: {error.detail}", file=sys.stderr)
    print(f"outcomes: {result.outcomes}, deltas: {len(result.deltas)}", file=sys.stderr)
    return 0


def cmd_heatmap(args: argparse.Namespace) -> int:
    import orjson

    at = time_arg(args.now, "--now")
    assert at is not None
    if args.log:
        result = _replay_log(args.log, args.rules, now=at, heatmap_at=at)
        records = [o.value for o in result.outputs if o.topic == CREDIBILITY_HEATMAP]
    else:
        from streams.cli.heatmap_request import request_heatmap

        settings = settings_or_exit()
        if not settings.bootstrap_servers:
            sys.exit("credence heatmap: KAFKA_BOOTSTRAP_SERVERS is not set (or use --log)")
        records = asyncio.run(request_heatmap(settings, at))
    for record in records:
        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    rules_or_exit(settings)  # an invalid catalogue stops the worker here, before it connects
    from streams.wiring import build_app

    app = build_app(settings)

    level = {"WARNING": "warn"}.get(settings.log_level, settings.log_level.lower())
    sys.argv = [sys.argv[0], "worker", "--loglevel", level]
    app.main()
    return 0


def _start_embedded(stack: ExitStack) -> str:
    from scoring.catalog import load_catalog
    from streams.kafka.embedded_broker import EmbeddedBroker
    from streams.kafka.topic_admin import apply_topics

    broker = stack.enter_context(EmbeddedBroker())
    settings = settings_or_exit().with_bootstrap(broker.bootstrap)
    asyncio.run(apply_topics(settings, load_catalog()))
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
    # Tansu holds the first group join for half the session timeout
    os.environ.setdefault("CREDENCE_SESSION_TIMEOUT_SECONDS", "6")
    # Tansu keeps nothing after it stops: local table state must not outlive it.
    base = Path(os.environ.get("CREDENCE_DATA_DIR", "./data"))
    os.environ["CREDENCE_DATA_DIR"] = str(base / f"embedded-{broker.instance_id}")
    return broker.bootstrap


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so that everything started is stopped on the way out."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _wait_forever() -> None:
    while True:
        time.sleep(3600)


def cmd_broker(args: argparse.Namespace) -> int:
    _interrupt_on_sigterm()
    with ExitStack() as stack:
        bootstrap = _start_embedded(stack)
        print(f"embedded broker (Tansu) at {bootstrap}; topics applied. Ctrl-C stops it.", flush=True)
        print(f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap}", flush=True)
        # a worker's table state belongs to this broker instance, as with `credence run`
        print(f"export CREDENCE_DATA_DIR={os.environ['CREDENCE_DATA_DIR']}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            _wait_forever()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    _interrupt_on_sigterm()
    with ExitStack() as stack:
        if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            print(f"starting embedded broker at {_start_embedded(stack)}", flush=True)
        settings = settings_or_exit()
        from streams.processes import die_with_parent, stop_process

        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli.main", "worker"], preexec_fn=die_with_parent
        )
        stack.callback(stop_process, worker, 15.0)
        print(f"worker started (pid {worker.pid}); web and /metrics on http://{settings.web_host}:{settings.web_port}", flush=True)
        try:
            if args.demo:
                asyncio.run(_demo(settings))
            else:
                worker.wait()
        except KeyboardInterrupt:
            print("stopping...", flush=True)
    return 0


async def _demo(settings: Settings) -> None:
    from streams.cli.demo import print_outputs, produce_demo

    await asyncio.gather(produce_demo(settings, now_ms), print_outputs(settings))


_RULES_HELP = "the signal catalogue to score with (default: CREDENCE_RULES_FILE, else rules.yaml)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="credence", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="broker (embedded unless KAFKA_BOOTSTRAP_SERVERS) + worker")
    run.add_argument("--demo", action="store_true", help="feed synthetic traffic and print deltas")
    run.set_defaults(func=cmd_run)
    sub.add_parser("broker", help="only the embedded broker").set_defaults(func=cmd_broker)
    sub.add_parser("worker", help="a Faust worker against KAFKA_BOOTSTRAP_SERVERS").set_defaults(func=cmd_worker)
    rep = sub.add_parser("replay", help="run the scoring core offline over a JSONL event log")
    rep.add_argument("log", help="one {topic, key, value} JSON object per line")
    rep.add_argument(
        "--now", help="clock at the end of input, and the wall clock event times are bounded by "
        "(default: the real one; ISO-8601 with offset, or epoch ms)",
    )
    rep.add_argument(
        "--all", action="store_true",
        help="after the deltas, print every roll-up record as {topic, key, value} lines",
    )
    rep.add_argument("--rules", metavar="FILE", help=_RULES_HELP)
    rep.set_defaults(func=cmd_replay)
    heat = sub.add_parser("heatmap", help="the weekly heat map snapshot as of --now, on demand")
    heat.add_argument("--now", required=True, help="snapshot time (ISO-8601 with offset, or epoch ms)")
    heat.add_argument("--log", help="compute it offline from a recorded log instead of the cluster")
    heat.add_argument("--rules", metavar="FILE", help=_RULES_HELP + " (with --log)")
    heat.set_defaults(func=cmd_heatmap)
    topics = sub.add_parser("topics", help="create or check the topics of topics.yaml")
    topics.add_argument("action", choices=["apply", "check"])
    topics.set_defaults(func=cmd_topics)
    add_diff_parser(rules.register(sub))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
