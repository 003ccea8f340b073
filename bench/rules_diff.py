"""How long ``credence rules diff --log`` takes against one ``credence replay`` of the
same log (issue #12: within 2x).

Both read the same JSONL log from disk: the replay scores it once under the current
rules; the diff decodes it once and scores it under the current rules (in a forked
process) and the draft (here), then compares (``scoring.rulediff``). ``--serial``
also times the two scorings one after the other, to show what the second core buys.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import orjson
import yaml

from bench.workload import THROUGHPUT, Workload, generate
from scoring.catalog import load_catalog
from scoring.config import DAY_MS
from scoring.replay import read_log, replay
from scoring.rulediff import Scoring, diff
from scoring.signal_catalogue import DEFAULT_PATH as DEFAULT_RULES_PATH
from scoring.signal_catalogue import SignalCatalogue, build_signal_catalogue, load_signal_catalogue
from scoring.timeutil import now_ms


def draft_rules() -> SignalCatalogue:
    """The changed rules the diff scores against the defaults: points, a window."""
    doc = yaml.safe_load(DEFAULT_RULES_PATH.read_text())
    changes = {"high_intent": {"points": 10}, "urgency": {"points": 4}, "decision_chain": {"within": "10d"}}
    for entry in doc["signals"]:
        entry.update(changes.get(entry["id"], {}))
    return build_signal_catalogue(doc)


def write_log(path: Path, events: int, customers: int, days: float, seed: int) -> None:
    workload = Workload(THROUGHPUT, customers=customers, seed=seed)
    end = now_ms() - DAY_MS
    with path.open("wb") as out:
        for topic, key, value in workload.directory():
            out.write(orjson.dumps({"topic": topic, "key": key, "value": value}) + b"\n")
        for topic, key_bytes, raw in generate(workload, events, end, spacing_ms=days * DAY_MS / events):
            out.write(b'{"topic":"%s","key":"%s","value":%s}\n' % (topic.encode(), key_bytes, raw))


def cpu_seconds() -> float:
    """CPU time of this process and of its children that ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_replay(path: Path, scoring: Scoring) -> tuple[float, float]:
    began, cpu = time.perf_counter(), cpu_seconds()
    with path.open("rb") as log:
        result = replay(read_log(log), scoring.catalog, load_signal_catalogue(), wall_clock=scoring.wall_clock)
    seconds = time.perf_counter() - began, cpu_seconds() - cpu
    print(f"  (replay: {len(result.deltas):,} deltas, {len(result.outputs):,} roll-up records)")
    return seconds


def time_diff(path: Path, scoring: Scoring, parallel: bool) -> tuple[float, float]:
    began, cpu = time.perf_counter(), cpu_seconds()
    with path.open("rb") as log:
        records = list(read_log(log))
    report = diff(*scoring.score_both(records, load_signal_catalogue(), draft_rules(), parallel=parallel)).to_json()
    orjson.dumps(report)
    seconds = time.perf_counter() - began, cpu_seconds() - cpu
    changed = {k: len(v) for k, v in report.items() if k != "signals"}
    print(f"  ({'two processes' if parallel else 'one process'}: {changed}; signals {report['signals']})")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=14.0, help="event times spread over this many days")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serial", action="store_true", help="also time the diff in one process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        write_log(path, args.events, args.customers, args.days, args.seed)
        n = args.events + args.customers
        print(f"log: {n:,} records ({path.stat().st_size / 1e6:.0f} MB), {args.customers:,} customers over "
              f"{args.days:g} days; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        scoring = Scoring(load_catalog(), wall_clock=now_ms())
        rows = [("credence replay (one scoring)", time_replay(path, scoring))]
        rows.append(("rules diff, two processes", time_diff(path, scoring, parallel=True)))
        if args.serial:
            rows.append(("rules diff, one process", time_diff(path, scoring, parallel=False)))
    base, base_cpu = rows[0][1]
    print(f"\n{'':<32}{'seconds':>9}{'events/s':>12}{'vs replay':>11}{'CPU s':>9}{'vs replay':>11}")
    for label, (seconds, cpu) in rows:
        print(f"{label:<32}{seconds:>9.1f}{n / seconds:>12,.0f}{seconds / base:>10.2f}x"
              f"{cpu:>9.1f}{cpu / base_cpu:>10.2f}x")
    own, child = (resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"peak memory: {own:,.0f} MB here, {child:,.0f} MB in the forked scorer; load average at the end "
          f"{os.getloadavg()[0]:.2f} (a busy machine slows the two processes most)")


if __name__ == "__main__":
    main()
