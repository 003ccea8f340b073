"""How fast a Python core could be: the least per-event work of the default catalogue,
beside the real core on the same events (``python -m bench.stripped_core``).

This is not Credence and nothing imports it. It answers one question of issue #14 (is
"core >= 50 % of the raw consumer" a matter of trimming?): decode with orjson, check
the type and length of the fields it reads and the message key, parse event times with
the core's ``parse_ts``, de-duplicate by a blake2b hash per customer and topic, and run
the three event-driven rules of the default catalogue (quote streak, role chain, first
contract) as hard-coded Python, hashing a delta id for each firing. It leaves out everything else the core does: the
risk timer, the 30-day ledger, alerts and team updates, owners, capacity bounds, the
bulkhead's journal and checkpoints, and the catalogue's rules as data. Its deltas of
those three signals must equal the core's (it prints both).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from collections import Counter
from typing import Any

import orjson

from bench.core import run_core
from bench.workload import THROUGHPUT, Workload, generate
from scoring.config import DAY_MS
from scoring.timeutil import parse_ts

_CONTRACT = re.compile(r"[A-Za-z0-9._/:#-]{1,128}")
_ROLES = frozenset({"procurement", "technical", "legal"})
_OPTIONAL = ("ip", "source", "team_id", "region", "rep_id", "opportunity_id", "contract_id")
#: per topic, the string fields an event must carry
_REQUIRED = {
    "document-open": ("document_type", "document_id"),
    "role-login": ("user_id", "role"),
    "rush-delivery": (),
    "stale-update": ("opportunity_id", "kind"),
}


def _strings_fit(doc: dict[str, Any], names: tuple[str, ...], required: bool = False) -> bool:
    for name in names:
        value = doc.get(name)
        if value is None:
            if required:
                return False
        elif value.__class__ is not str or len(value) > 128:
            return False
    return True


def run_stripped(events: list[tuple[str, bytes, bytes]]) -> tuple[float, Counter[str]]:
    """Seconds of CPU over ``events``, and the deltas by signal."""
    states: dict[str, dict[str, Any]] = {}
    deltas: Counter[str] = Counter()
    began = time.process_time()
    for topic, key, raw in events:
        doc = orjson.loads(raw)
        event_id, customer_id = doc.get("event_id"), doc.get("customer_id")
        if (
            doc.__class__ is not dict or event_id.__class__ is not str or customer_id.__class__ is not str
            or not 0 < len(event_id) <= 128 or not 0 < len(customer_id) <= 128
            or key != customer_id.encode() or not _strings_fit(doc, _OPTIONAL)
            or not _strings_fit(doc, _REQUIRED[topic], required=True)
        ):
            continue
        ts = parse_ts(doc["ts"])  # the core's own, exact to the millisecond
        state = states.get(customer_id)
        if state is None:
            state = states[customer_id] = {"seen": {}, "streak": [], "roles": {}, "contracts": set()}
        seen = state["seen"].setdefault(topic, {})
        event_hash = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
        if event_hash in seen:
            continue
        seen[event_hash] = ts
        fired: tuple[str, list[str]] | None = None
        if topic == "document-open":
            dwell = doc.get("dwell_seconds")
            if dwell.__class__ not in (int, float) or dwell < 0:
                continue
            if doc["document_type"].lower() == "quote":
                streak = state["streak"]
                if dwell > 120:
                    streak.append((event_id, ts))
                    while ts - streak[0][1] > 7 * DAY_MS:
                        streak.pop(0)
                    if len(streak) == 3:
                        fired = ("high_intent", [e for e, _ in streak])
                        streak.clear()
                else:
                    streak.clear()
        elif topic == "role-login":
            role = doc["role"].lower()
            if role in _ROLES:
                roles = state["roles"]
                roles[role] = (event_id, ts)
                for stale in [r for r, (_, at) in roles.items() if ts - at > 14 * DAY_MS]:
                    del roles[stale]
                if len(roles) == 3:
                    fired = ("decision_chain", [e for e, _ in roles.values()])
                    roles.clear()
        elif topic == "rush-delivery":
            contract = doc.get("contract_id")
            contracts = state["contracts"]
            if (
                contract.__class__ is str
                and _CONTRACT.fullmatch(contract := contract.strip())
                and contract not in contracts
            ):
                contracts.add(contract)
                fired = ("urgency", [event_id])
        if fired is not None:
            signal, evidence = fired
            parts = [signal, customer_id, *(f"{topic}/{e}" for e in evidence)]
            hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
            deltas[signal] += 1
    return time.process_time() - began, deltas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stripped_core", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args(argv)
    events = generate(Workload(THROUGHPUT, customers=args.customers, seed=1), args.events,
                      time.time_ns() // 1_000_000)
    seconds, deltas = run_stripped(events)
    began = time.process_time()
    core = run_core(events, codec=False)
    core_seconds = time.process_time() - began
    print(f"stripped core {len(events) / seconds:>9,.0f} events/s ({seconds / len(events) * 1e6:.1f} µs CPU each)")
    print(f"scoring core  {len(events) / core_seconds:>9,.0f} events/s ({core_seconds / len(events) * 1e6:.1f} µs CPU each)"
          f"; stripped / core = {core_seconds / seconds:.1f}x")
    shared = {s: core.deltas[s] for s in deltas}
    print(f"deltas: stripped {dict(sorted(deltas.items()))}, core {dict(sorted(shared.items()))}"
          f" ({'equal' if shared == deltas else 'DIFFERENT'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
