"""The pure scoring core over the benchmark's events, in process (no Kafka, no Faust).

Two variants:

* ``core``: :class:`scoring.engine.SignalEngine` over an in-memory dict of
  ``CustomerState`` objects, i.e. validation, de-duplication, the four rules and the
  per-customer roll-up ledger (customer scores, alerts, team updates);
* ``core+codec``: the same, but state kept as bytes as in the worker's write-back
  cache (``streams.processing.customer_cache``): a customer is decoded when first touched and
  every changed one is encoded once per flush (every 5 000 events here, about what
  the worker's 0.5 s flush interval holds at its rate). Deltas and roll-up records
  are rendered as JSON as the worker does before sending.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson

from scoring.bulkhead import Journal
from scoring.catalog import load_catalog
from scoring.customer import CustomerState
from scoring.engine import DictStore, SignalEngine
from scoring.signal_catalogue import load_signal_catalogue
from streams.ops.gc_freeze import batch_collections


class WriteBackStore:
    """Like ``streams.processing.customer_cache.CustomerCache``, over a dict of bytes instead of a table."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self._cache: dict[str, CustomerState | None] = {}
        self._dirty: set[str] = set()
        self.journal = Journal()

    def load(self, customer_id: str) -> CustomerState | None:
        self.journal.loaded(customer_id)
        if customer_id not in self._cache:
            raw = self.data.get(customer_id)
            self._cache[customer_id] = CustomerState.from_bytes(raw) if raw else None
        return self._cache[customer_id]

    def save(self, state: CustomerState) -> None:
        self._cache[state.customer_id] = state
        self._dirty.add(state.customer_id)

    def checkpoint(self, customer_id: str) -> bytes | None:
        return self.data.get(customer_id)

    def restore(self, customer_id: str, state: CustomerState | None) -> None:
        self._cache[customer_id] = state
        self._dirty.discard(customer_id)

    def flush(self) -> None:
        for customer_id in self._dirty:
            state = self._cache[customer_id]
            assert state is not None
            self.data[customer_id] = state.to_bytes()
            self.journal.discard(customer_id)
        self._dirty.clear()


@dataclass
class CoreResult:
    name: str
    events: int
    seconds: float
    deltas: Counter[str] = field(default_factory=Counter)
    outputs: Counter[str] = field(default_factory=Counter)  # roll-up records, by topic
    outcomes: Counter[str] = field(default_factory=Counter)
    largest_state_bytes: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def run_core(events: list[tuple[str, bytes, bytes]], codec: bool, batch: int = 5_000) -> CoreResult:
    catalog, cfg = load_catalog(), load_signal_catalogue()
    store: DictStore | WriteBackStore = WriteBackStore() if codec else DictStore()
    engine = SignalEngine(catalog, cfg, store)
    result = CoreResult("core+codec" if codec else "core", len(events), 0.0)
    deltas, outcomes = result.deltas, result.outcomes
    now = time.time_ns() // 1_000_000
    with batch_collections():  # as credence replay
        began = time.perf_counter()
        for start in range(0, len(events), batch):
            for topic, key, value in events[start:start + batch]:
                handled = engine.receive(topic, key, value)  # behind the bulkhead, as the worker
                outcomes[handled.outcome.value] += 1
                for delta in handled.deltas:
                    deltas[delta.signal] += 1
                    if codec:
                        orjson.dumps(delta.to_record(now))
                for output in getattr(handled, "outputs", ()):  # the roll-up, where the engine has it
                    result.outputs[output.topic] += 1
                    if codec:
                        orjson.dumps(output.value)
            if isinstance(store, WriteBackStore):
                store.flush()
        result.seconds = time.perf_counter() - began
    if isinstance(store, WriteBackStore):
        result.largest_state_bytes = max(map(len, store.data.values()), default=0)
    else:
        result.largest_state_bytes = max((len(s.to_bytes()) for s in store.states.values()), default=0)
    return result


def profile_core(events: list[tuple[str, bytes, bytes]], codec: bool, top: int = 12) -> str:
    """cProfile of :func:`run_core`: the ``top`` functions by own time, as text."""
    profiler = cProfile.Profile()
    profiler.enable()
    run_core(events, codec)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    # keep the table, drop pstats' preamble about ordering and restrictions
    body = [ln for ln in lines if ln.strip() and not ln.strip().startswith(("Ordered by", "List reduced"))]
    return "\n".join(body)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.core``: the core alone over the benchmark's events (no broker)."""
    import argparse

    from bench.workload import THROUGHPUT, Workload, generate

    parser = argparse.ArgumentParser(prog="python -m bench.core", description="the scoring core in process")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile of core+codec, by own time")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    events = generate(Workload(THROUGHPUT, customers=args.customers, seed=args.seed), args.events,
                      time.time_ns() // 1_000_000)
    if args.profile:
        print(profile_core(events, codec=True, top=args.top))
        return 0
    for codec in (False, True):
        result = run_core(events, codec)
        print(f"{result.name:<11} {result.events} events in {result.seconds:.2f}s = {result.rate:,.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
