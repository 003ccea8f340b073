"""A scripted scenario: every rule, a duplicate and every kind of bad input.

Times are relative to the wall clock at build time, because the live worker
measures risk staleness against the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.workers import Record

HOUR = 3_600_000
DAY = 24 * HOUR


@dataclass(frozen=True)
class ExpectedDelta:
    customer_id: str
    signal: str
    points: int
    ts: int
    evidence: tuple[str, ...]
    team_id: str | None = None


@dataclass(frozen=True)
class Scenario:
    directory: list[Record]
    bad: list[Record]
    good: list[Record]
    expected: list[ExpectedDelta]
    reasons: list[str]

    @property
    def log(self) -> list[Record]:
        return self.directory + self.bad + self.good


def ev(topic: str, event_id: str, ts: int, customer: str, **fields: Any) -> Record:
    return topic, customer, {"event_id": event_id, "ts": ts, "customer_id": customer,
                             "ip": "198.51.100.7", **fields}


def build(now: int) -> Scenario:
    t0 = now - now % 1000
    directory: list[Record] = [
        ("customer-directory", "c-hi", {"customer_id": "c-hi", "team_id": "team-a", "region": "east", "rep_id": "r1"}),
        ("customer-directory", "c-dc", {"customer_id": "c-dc", "team_id": "team-b", "region": "west", "rep_id": "r2"}),
    ]
    bad: list[Record] = [
        ("role-login", "c-bad", '{"event_id": "x", '),
        ("role-login", "c-bad", {"ts": t0, "customer_id": "c-bad", "user_id": "u", "role": "legal"}),
        ("document-open", "c-bad", {"event_id": "b3", "ts": "2026-11-26T10:00:00", "customer_id": "c-bad",
                                    "document_type": "quote", "document_id": "d", "dwell_seconds": 200}),
        ("document-open", "c-bad", {"event_id": "b4", "ts": t0, "customer_id": "c-bad",
                                    "document_type": "q" * 100, "document_id": "d", "dwell_seconds": 200}),
        ("rush-delivery", "c-bad", '{"event_id": "b5", "pad": "' + "x" * 70_000 + '"}'),
        ("document-open", "c-bad", {"event_id": "b6", "ts": t0, "customer_id": "c-bad",
                                    "document_type": "quote", "document_id": "d", "dwell_seconds": "long"}),
        ("stale-update", "c-bad", [1, 2, 3]),
        # issue #10: a key other than the customer, an event time far ahead, a period int() cannot read
        ("rush-delivery", "c-urg", {"event_id": "b8", "ts": t0, "customer_id": "c-bad", "contract_id": "CT-9"}),
        ("role-login", "c-dc", {"event_id": "b9", "ts": "9999-12-30T00:00:00Z", "customer_id": "c-dc",
                                "user_id": "u", "role": "legal"}),
        ("forecast-outcome", "team-a", {"event_id": "b10", "ts": t0, "team_id": "team-a", "period": "²",
                                        "forecast_amount": 100, "actual_amount": 90}),
    ]
    reasons = ["invalid_json", "missing_field", "bad_timestamp", "field_too_long", "too_large",
               "wrong_type", "not_an_object", "key_mismatch", "future_event", "bad_value"]
    progress_timer = now - 48 * HOUR + 6_000  # stale six seconds from now: only the timer sees it
    good: list[Record] = [
        # high_intent: a non-quote open between the long quote opens does not break the streak
        ev("document-open", "hi-1", t0 - 3 * HOUR, "c-hi", document_type="quote", document_id="q1", dwell_seconds=200),
        ev("document-open", "hi-x", t0 - 150 * 60_000, "c-hi", document_type="brochure", document_id="b1", dwell_seconds=5),
        ev("document-open", "hi-2", t0 - 2 * HOUR, "c-hi", document_type="Quote", document_id="q1", dwell_seconds=150),
        ev("document-open", "hi-2", t0 - 2 * HOUR, "c-hi", document_type="Quote", document_id="q1", dwell_seconds=150),
        ev("document-open", "hi-3", t0 - 1 * HOUR, "c-hi", document_type="QUOTE", document_id="q2", dwell_seconds=121),
        # decision_chain: the latest procurement login counts
        ev("role-login", "dc-1", t0 - 10 * DAY, "c-dc", user_id="p1", role="procurement"),
        ev("role-login", "dc-2", t0 - 5 * DAY, "c-dc", user_id="p2", role="Procurement"),
        ev("role-login", "dc-3", t0 - 4 * DAY, "c-dc", user_id="t1", role="technical"),
        ev("role-login", "dc-4", t0 - 3 * DAY, "c-dc", user_id="s1", role="sales"),
        ev("role-login", "dc-5", t0 - 1 * HOUR, "c-dc", user_id="l1", role="LEGAL"),
        # urgency: once per contract; no contract, no signal
        ev("rush-delivery", "u-1", t0 - 50 * 60_000, "c-urg", contract_id="CT-1"),
        ev("rush-delivery", "u-2", t0 - 40 * 60_000, "c-urg", contract_id="CT-1"),
        ev("rush-delivery", "u-3", t0 - 30 * 60_000, "c-urg", note="asap"),
        ev("rush-delivery", "u-4", t0 - 20 * 60_000, "c-urg", contract_id="CT-2"),
        # risk, already stale when the reconsider communication arrives
        ev("stale-update", "r-1", t0 - 50 * HOUR, "c-risk", opportunity_id="o1", kind="progress"),
        ev("stale-update", "r-2", t0 - 1 * HOUR, "c-risk", opportunity_id="o1", kind="communication", outcome="Reconsider"),
        # risk that only the timer can fire: no event follows
        ev("stale-update", "t-1", progress_timer, "c-timer", opportunity_id="o9", kind="progress"),
        ev("stale-update", "t-2", now - 1000, "c-timer", opportunity_id="o9", kind="communication", outcome="reconsider"),
    ]
    expected = [
        ExpectedDelta("c-hi", "high_intent", 8, t0 - HOUR, ("hi-1", "hi-2", "hi-3"), "team-a"),
        ExpectedDelta("c-dc", "decision_chain", 12, t0 - HOUR, ("dc-2", "dc-3", "dc-5"), "team-b"),
        ExpectedDelta("c-urg", "urgency", 6, t0 - 50 * 60_000, ("u-1",)),
        ExpectedDelta("c-urg", "urgency", 6, t0 - 20 * 60_000, ("u-4",)),
        ExpectedDelta("c-risk", "risk", -5, t0 - HOUR, ("r-1", "r-2")),
        ExpectedDelta("c-timer", "risk", -5, progress_timer + 48 * HOUR, ("t-1", "t-2")),
    ]
    return Scenario(directory, bad, good, expected, reasons)
