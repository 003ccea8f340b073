"""``credence rules diff``: what a draft rules file would change, on the same events."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson

from scoring.catalog import load_catalog
from scoring.engine import SIGNAL_INPUTS, TEAM_INPUTS
from scoring.replay import LogRecord, read_log
from scoring.rulediff import RulesDiff, Scoring, diff
from scoring.signal_catalogue import SignalCatalogue
from scoring.timeutil import now_ms
from streams.cli.arguments import rules_or_exit, settings_or_exit, time_arg
from streams.ops.gc_freeze import batch_collections
from streams.settings import Settings

#: the topics replay reads: a dry run scores what a worker would consume
INPUT_TOPICS = (*SIGNAL_INPUTS, *TEAM_INPUTS)
#: rows of deltas and customers the table shows at most (``--json`` has them all)
ROWS = 10


def add_diff_parser(rules_subparsers: Any) -> None:
    diff_parser = rules_subparsers.add_parser(
        "diff", help="score the same events under the current and a draft rules file; report what changes",
    )
    diff_parser.add_argument("draft", help="the draft rules file")
    diff_parser.add_argument(
        "--rules", help="the current rules file (default: CREDENCE_RULES_FILE, else the project's rules.yaml)",
    )
    diff_parser.add_argument(
        "--log", help="a JSONL event log as `credence replay` reads (default: the retained input topics "
        "of KAFKA_BOOTSTRAP_SERVERS, read to their end; nothing is committed or written)",
    )
    diff_parser.add_argument(
        "--now", help="clock at the end of the events, and the wall clock event times are bounded by "
        "(default: the newest event time, and the real wall clock; ISO-8601 with offset, or epoch ms)",
    )
    diff_parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    diff_parser.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    now = time_arg(args.now, "--now")
    # the current rules are what a worker started now would load
    current = rules_or_exit(settings, args.rules, "credence rules diff")
    draft = rules_or_exit(settings, args.draft, "credence rules diff")
    records = _log_records(args.log) if args.log else _retained_records(settings)
    sys.stdout.write(report(records, current, draft, settings, now, as_json=args.json))
    return 0


def report(
    records: list[LogRecord], current: SignalCatalogue, draft: SignalCatalogue, settings: Settings, now: int | None, *, as_json: bool
) -> str:
    """The dry run of ``draft`` against ``current`` over ``records``, as printed."""
    scoring = Scoring(
        load_catalog(), now=now, rollup=settings.rollup_for(current),
        wall_clock=now if now is not None else now_ms(), max_skew_ms=settings.max_event_skew_ms,
    )
    with batch_collections():
        result = diff(*scoring.score_both(records, current, draft))
    return orjson.dumps(result.to_json()).decode() + "\n" if as_json else render(result)


def _log_records(path: str) -> list[LogRecord]:
    try:
        with open(path, "rb") as log:
            return list(read_log(log))
    except (OSError, ValueError) as exc:
        sys.exit(f"credence rules diff: {path}: {exc}")


def _retained_records(settings: Settings) -> list[LogRecord]:
    """The input topics' retained records, in the order a worker that fetched them all
    at once would apply them (:func:`streams.processing.fetch_order.in_time_order`)."""
    from aiokafka.errors import KafkaError
    from faust.types import TP

    from streams.kafka.retained_log import RetainedLogError, read_retained
    from streams.processing.fetch_order import in_time_order

    if not settings.bootstrap_servers:
        sys.exit("credence rules diff: KAFKA_BOOTSTRAP_SERVERS is not set (or use --log)")
    progress = _StderrProgress()
    try:
        runs = asyncio.run(read_retained(settings, INPUT_TOPICS, progress))
    except (RetainedLogError, KafkaError) as exc:
        sys.exit(f"credence rules diff: {exc}")
    progress.finish()
    cut = len(settings.topic_prefix)
    merged = in_time_order({TP(tp.topic, tp.partition): run for tp, run in runs.items()}, lambda t: t[cut:])
    return [LogRecord(topic, record.key, record.value) for _, topic, record in merged]


class _StderrProgress:
    """Records read so far, on one line of a terminal's stderr (twice a second at most)."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self.shown = 0.0
        self.read = 0

    def __call__(self, read: int, most: int) -> None:
        self.read = read
        if self.live and (read >= most or time.monotonic() - self.shown >= 0.5):
            self.shown = time.monotonic()
            print(f"\rreading input topics: {read:,} of {most:,} records", end="", file=sys.stderr, flush=True)

    def finish(self) -> None:
        print(("\n" if self.live else "") + f"read {self.read:,} records from the input topics", file=sys.stderr)


def render(result: RulesDiff) -> str:
    """The tables ``credence rules diff`` prints by default."""
    out: list[str] = []
    out += _table(["signal", "before", "after", "change"], [
        [s, str(n["before"]), str(n["after"]), _signed(n["after"] - n["before"])]
        for s, n in result.signals.items()
    ])
    for title, deltas in (("added", result.deltas_added), ("removed", result.deltas_removed)):
        out += ["", f"deltas {title}: {len(deltas)}"]
        out += _table(["ts", "customer", "signal", "points"], [
            [d["ts"], d["customer_id"], d["signal"], _signed(d["points"])] for d in deltas[:ROWS]
        ], more=len(deltas) - ROWS)
    customers = result.customers_changed
    out += ["", f"customers whose 30-day net points change: {len(customers)} (largest change first)"]
    out += _table(["customer", "before", "after", "change"], [
        [c["customer_id"], str(c["before"]), str(c["after"]), _signed(c["after"] - c["before"])]
        for c in customers[:ROWS]
    ], more=len(customers) - ROWS)
    out += ["", f"procurement alerts gained: {', '.join(result.alerts_gained) or '-'}"]
    out += [f"procurement alerts lost: {', '.join(result.alerts_lost) or '-'}"]
    out += ["", f"teams whose score or band changes: {len(result.teams)}"]
    out += _table(["team", "before", "after"], [
        [t["team_id"], _standing(t["before"]), _standing(t["after"])] for t in result.teams
    ])
    return "\n".join(out) + "\n"


def _table(header: list[str], rows: list[list[str]], more: int = 0) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return lines + ([f"  ... and {more} more (--json lists all)"] if more > 0 else [])


def _signed(n: int) -> str:
    return f"{n:+d}" if n else "0"


def _standing(standing: dict[str, Any]) -> str:
    return "no score" if standing["score"] is None else f"{standing['score']:.2f} {standing['band']}"
