"""A tiny wall-clock sampler for a running worker (``--sample-worker``; diagnostic only).

Imported when ``credence worker`` starts (the benchmark puts a ``sitecustomize`` that
imports it on the worker's ``PYTHONPATH``) with ``CREDENCE_BENCH_SAMPLE=<path>`` set, it
samples every thread's innermost frames every 5 ms (a poor man's py-spy: idle time shows
as the event loop's ``select``). It counts only between the creation of ``<path>.start``
and ``<path>.stop`` (the benchmark creates them), then writes the counts as JSON to
``<path>``. Without the variable, importing it does nothing.

It sets the GIL switch interval to 0.2 ms so that samples are not biased towards calls
that release the GIL; that changes the worker's behaviour a little (diagnostic only).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

import orjson

INTERVAL_S = 0.005
DEPTH = 4


def _frame_stack(frame: FrameType | None, depth: int = DEPTH) -> str:
    parts: list[str] = []
    while frame is not None and len(parts) < depth:
        code = frame.f_code
        parts.append(f"{Path(code.co_filename).name}:{code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return " < ".join(parts)


#: (category, path fragment, function name or "") tried innermost frame first, first match wins
_RULES = (
    ("idle: event loop waiting (select)", "selectors.py", "select"),
    ("customer state decode/encode (CustomerState.from_bytes/to_bytes)", "scoring/customer.py", "from_bytes"),
    ("customer state decode/encode (CustomerState.from_bytes/to_bytes)", "scoring/customer.py", "to_bytes"),
    ("RocksDB table get/put (faust/stores/rocksdb.py)", "faust/stores/rocksdb.py", ""),
    ("producer: batch build + socket write (aiokafka)", "aiokafka/producer/", ""),
    ("producer: batch build + socket write (aiokafka)", "aiokafka/conn.py", ""),
    ("consumer: fetch + record parsing (aiokafka)", "aiokafka/consumer/", ""),
    ("/metrics scrape (prometheus_client)", "prometheus_client/", ""),
    ("scoring core: validation, rules, roll-up ledger (scoring/)", "/scoring/", ""),
    ("agents (streams/)", "/streams/", ""),
    ("Faust streams, tables, commits (faust/, mode/)", "/faust/", ""),
    ("Faust streams, tables, commits (faust/, mode/)", "/mode/", ""),
)


def _category(frame: FrameType | None) -> str:
    while frame is not None:
        code = frame.f_code
        for category, fragment, function in _RULES:
            if fragment in code.co_filename and (not function or code.co_name == function):
                return category
        frame = frame.f_back
    return "other (asyncio, aiohttp, ...)"


def _functions(frame: FrameType | None) -> set[str]:
    """Every function on the stack (once each), as ``module-file:function``."""
    seen = set()
    while frame is not None:
        code = frame.f_code
        seen.add(f"{Path(code.co_filename).name}:{code.co_name}")
        frame = frame.f_back
    return seen


def _run(path: Path) -> None:
    me = threading.get_ident()
    threads: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    started = False
    while True:
        if not started:
            if path.with_suffix(".start").exists():
                started = True
                began = time.monotonic()
            else:
                time.sleep(0.05)
                continue
        if path.with_suffix(".stop").exists():
            break
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            if ident != me:
                threads[f"{names.get(ident, ident)} | {_frame_stack(frame)}"] += 1
                categories[f"{names.get(ident, ident)} | {_category(frame)}"] += 1
                for function in _functions(frame):
                    inclusive[f"{names.get(ident, ident)} | {function}"] += 1
        samples += 1
        time.sleep(INTERVAL_S)
    path.write_bytes(orjson.dumps({
        "samples": samples, "seconds": time.monotonic() - began,
        "threads": threads.most_common(), "categories": categories.most_common(),
        "inclusive": inclusive.most_common(),
    }))


def summarise(path: Path, top: int = 12) -> str:
    """The sampled stacks as text, per thread, most frequent first."""
    data = orjson.loads(path.read_bytes())
    n = max(data["samples"], 1)
    lines = [f"{data['samples']} samples over {data['seconds']:.1f}s (every {INTERVAL_S * 1000:.0f} ms)"]
    per_thread: Counter[str] = Counter()
    for key, count in data["threads"]:
        per_thread[key.split(" | ", 1)[0]] += count
    for thread in per_thread:
        lines.append(f"thread {thread}: by kind of work (share of samples)")
        rows = [(k.split(" | ", 1)[1], c) for k, c in data["categories"] if k.split(" | ", 1)[0] == thread]
        lines += [f"  {c / n * 100:5.1f} %  {category}" for category, c in rows]
        lines.append(f"thread {thread}: innermost frames (share of samples)")
        rows = [(k.split(" | ", 1)[1], c) for k, c in data["threads"] if k.split(" | ", 1)[0] == thread]
        lines += [f"  {c / n * 100:5.1f} %  {stack}" for stack, c in rows[:top]]
        lines.append(f"thread {thread}: functions on the stack (inclusive share of samples)")
        rows = [(k.split(" | ", 1)[1], c) for k, c in data.get("inclusive", []) if k.split(" | ", 1)[0] == thread]
        lines += [f"  {c / n * 100:5.1f} %  {function}" for function, c in rows[:top * 4]]
    return "\n".join(lines)


if os.environ.get("CREDENCE_BENCH_SAMPLE"):
    # A thread that wants the GIL gets it when the holder releases it for I/O or at the
    # switch interval (5 ms): samples would pile up on I/O calls. A short interval makes
    # the sampler see the other threads at (nearly) arbitrary points.
    sys.setswitchinterval(0.0002)
    threading.Thread(
        target=_run, args=(Path(os.environ["CREDENCE_BENCH_SAMPLE"]),), name="bench-sampler", daemon=True
    ).start()
