"""The dry run's scenario: a small log, the draft rules it is scored under, and the
changes a person computed by hand from SPEC's rules.

Rule sets are SPEC's default catalogue with the draft's changes, in memory
(:func:`rules`) or as files (:func:`rules_files`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from scoring.replay import LogRecord
from scoring.signal_catalogue import SignalCatalogue
from scoring.timeutil import format_ts
from tests.unit.fixtures import at, default_rules_doc, record, rules_with


def rules(**changes: dict[str, Any]) -> SignalCatalogue:
    """SPEC's default rules, with some rules' keys changed (``rules(**DRAFT)``)."""
    return rules_with(**changes)


def rules_files(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """Write ``current.yaml`` (SPEC's rules), ``draft.yaml`` (with :data:`DRAFT`) and
    ``broken.yaml`` (a window that is no duration) to ``directory``, and work there."""
    draft, broken = default_rules_doc(), default_rules_doc()
    for entry in draft["signals"]:
        entry.update(DRAFT.get(entry["id"], {}))
    broken["signals"][1]["within"] = "14 days"
    for name, doc in (("current.yaml", default_rules_doc()), ("draft.yaml", draft), ("broken.yaml", broken)):
        (directory / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.chdir(directory)


#: points of high_intent 8 -> 10 and of urgency 6 -> 4; risk after 72 h instead of 48 h
#: (the log's clock stops at 60 h, so the risk that fired at 48 h is gone)
DRAFT: dict[str, dict[str, Any]] = {"high_intent": {"points": 10}, "urgency": {"points": 4}, "risk": {"after": "72h"}}
#: the clock at the end of the scenario
NOW = at(hours=60)


def _quotes(customer_id: str, first_hour: int) -> list[LogRecord]:
    return [record("document-open", key=customer_id, customer_id=customer_id, event_id=f"{customer_id}-q{i}",
                   ts=at(hours=first_hour + i), dwell_seconds=300) for i in range(3)]  # fmt: skip


def _logins(customer_id: str, first_hour: int) -> list[LogRecord]:
    return [record("role-login", key=customer_id, customer_id=customer_id, event_id=f"{customer_id}-l{i}",
                   ts=at(hours=first_hour + i), role=role)
            for i, role in enumerate(("procurement", "technical", "legal"))]  # fmt: skip


def _directory(customer_id: str, team_id: str) -> LogRecord:
    return record("customer-directory", key=customer_id, customer_id=customer_id, team_id=team_id,
                  region="east", rep_id="R1", event_id=f"dir-{customer_id}")  # fmt: skip


def scenario() -> list[LogRecord]:
    """Team T1: C1 (high_intent at 2 h), C2 (decision_chain at 3 h, urgency at 5 h: 18
    points, an alert). Team T2: C3 (decision_chain at 4 h, risk due at 48 h, high_intent
    at 52 h). Event-time order, the directory first."""
    stale = [
        record("stale-update", key="C3", customer_id="C3", event_id="C3-p", ts=at(),
               opportunity_id="O3", kind="progress"),
        record("stale-update", key="C3", customer_id="C3", event_id="C3-c", ts=at(hours=1),
               opportunity_id="O3", kind="communication", outcome="reconsider"),
    ]  # fmt: skip
    rush = record("rush-delivery", key="C2", customer_id="C2", event_id="C2-r", ts=at(hours=5), contract_id="K-1")
    events = _quotes("C1", 0) + _logins("C2", 1) + _logins("C3", 2) + stale + [rush] + _quotes("C3", 50)
    directory = [_directory("C1", "T1"), _directory("C2", "T1"), _directory("C3", "T2")]
    return directory + sorted(events, key=lambda r: (_ts(r), r.topic))


def _ts(r: LogRecord) -> int:
    ts: int = orjson.loads(r.value or b"{}")["ts"]
    return ts


def _summary(signal: str, customer_id: str, hours: int, points: int) -> tuple[str, str, str, int]:
    return (signal, customer_id, format_ts(at(hours=hours)), points)


#: by hand, under the current rules and the draft:
#: C1 8 -> 10; C2 12 + 6 = 18 (alert at 5 h) -> 12 + 4 = 16 (none);
#: C3 12 - 5 + 8 = 15 (no 7-day window reaches 18) -> 12 + 10 = 22 (alert at 52 h).
#: T1 (C1, C2): mean of 8/26 and 18/26 = 50.00 red -> of 10/26 and 16/26 = 50.00 red:
#: unchanged. T2 (C3): 15/26 = 57.69 red -> 22/26 = 84.62 yellow.
EXPECTED: dict[str, Any] = {
    "signals": {
        "decision_chain": {"before": 2, "after": 2},
        "high_intent": {"before": 2, "after": 2},
        "risk": {"before": 1, "after": 0},
        "urgency": {"before": 1, "after": 1},
    },
    "deltas_added": [
        _summary("high_intent", "C1", 2, 10), _summary("urgency", "C2", 5, 4), _summary("high_intent", "C3", 52, 10),
    ],
    "deltas_removed": [
        _summary("high_intent", "C1", 2, 8), _summary("urgency", "C2", 5, 6),
        _summary("risk", "C3", 48, -5), _summary("high_intent", "C3", 52, 8),
    ],
    "customers_changed": [
        {"customer_id": "C3", "before": 15, "after": 22},
        {"customer_id": "C1", "before": 8, "after": 10},
        {"customer_id": "C2", "before": 18, "after": 16},
    ],
    "alerts_gained": ["C3"],
    "alerts_lost": ["C2"],
    "teams": [
        {"team_id": "T2", "before": {"score": 57.69, "band": "red"}, "after": {"score": 84.62, "band": "yellow"}},
    ],
}


def summarised(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with each delta as (signal, customer, ts, points), to hold against
    :data:`EXPECTED`."""
    return {
        **report,
        **{k: [(d["signal"], d["customer_id"], d["ts"], d["points"]) for d in report[k]]
           for k in ("deltas_added", "deltas_removed")},
    }  # fmt: skip


def log_text(records: list[LogRecord]) -> bytes:
    """``records`` as the JSONL log ``credence replay`` and ``rules diff --log`` read."""
    return b"".join(
        orjson.dumps({"topic": r.topic, "key": r.key and r.key.decode(),
                      "value": None if r.value is None else orjson.loads(r.value)}) + b"\n"
        for r in records
    )  # fmt: skip
