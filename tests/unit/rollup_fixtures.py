"""Builders for the roll-up tests (``scoring.rollup``): team updates as the engine
sends them, hand-made signal deltas, and small output filters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scoring.catalog import TEAM_UPDATES
from scoring.config import DAY_MS, HOUR_MS
from scoring.deltas import Owner, SignalDelta
from scoring.events import Evidence
from scoring.rollup.config import RollupConfig
from scoring.rollup.ledger import CustomerLedger
from scoring.rollup.records import Output
from scoring.rollup.team_rollup import DictTeamStore, TeamRollup
from scoring.timeutil import parse_ts
from tests.unit.fixtures import T0

D = DAY_MS
H = HOUR_MS
#: the roll-up tests' "now": 2026-11-26T09:30:00Z, a Thursday (17:30 in Shanghai)
NOW = T0


def utc(iso: str) -> int:
    """Epoch ms of an ISO-8601 time with offset."""
    return parse_ts(iso)


def customer(
    customer_id: str,
    net_points: int,
    activity_ts: int | None,
    as_of: int | None = None,
    region: str | None = "east",
) -> dict[str, Any]:
    """A ``customer`` team update, as :class:`CustomerLedger` reports it."""
    return {
        "kind": "customer",
        "customer_id": customer_id,
        "region": region,
        "net_points": net_points,
        "activity_ts": activity_ts,
        "as_of": as_of if as_of is not None else activity_ts,
    }


def customer_left(customer_id: str) -> dict[str, Any]:
    return {"kind": "customer_left", "customer_id": customer_id}


def action(
    opportunity_id: str,
    name: str,
    due_ts: int,
    done_ts: int | None = None,
    ts: int | None = None,
    team_id: str = "T1",
) -> dict[str, Any]:
    """An ``action`` team update: a ``sales-action`` record, validated and re-keyed."""
    update = {
        "kind": "action",
        "event_id": f"a-{opportunity_id}-{name}-{ts}",
        "ts": ts if ts is not None else (done_ts if done_ts is not None else due_ts),
        "customer_id": "C1",
        "opportunity_id": opportunity_id,
        "team_id": team_id,
        "action": name,
        "due_ts": due_ts,
    }
    if done_ts is not None:
        update["done_ts"] = done_ts
    return update


def outcome(
    period: str, forecast: float, actual: float, ts: int = NOW - 40 * D, team_id: str = "T1"
) -> dict[str, Any]:
    """An ``outcome`` team update: a ``forecast-outcome`` record, validated and re-keyed."""
    return {
        "kind": "outcome",
        "event_id": f"o-{period}-{ts}",
        "ts": ts,
        "team_id": team_id,
        "period": period,
        "forecast_amount": forecast,
        "actual_amount": actual,
    }


def make_delta(
    signal: str,
    points: int,
    ts: int,
    *,
    customer_id: str = "C1",
    owner: Owner = Owner("T1", "east", "R1"),
    evidence: Iterable[tuple[str, str, int, str | None]] | None = None,
    opportunity_id: str | None = None,
) -> SignalDelta:
    """A signal delta as a rule would emit it; evidence rows are ``(id, topic, ts, ip)``."""
    if evidence is None:
        evidence = [(f"{signal}-{customer_id}-{ts}", "role-login", ts, None)]
    return SignalDelta(
        customer_id=customer_id,
        signal=signal,
        points=points,
        ts=ts,
        evidence=tuple(Evidence(*row) for row in evidence),
        owner=owner,
        rule_version="v1-test",
        opportunity_id=opportunity_id,
    )


def trace_update(delta: SignalDelta) -> dict[str, Any]:
    """The ``delta`` team update a customer ledger sends for ``delta``."""
    outputs = CustomerLedger().add_delta(delta, delta.to_record(None), delta.owner, RollupConfig())
    (update,) = [o.value for o in outputs if o.topic == TEAM_UPDATES and o.value["kind"] == "delta"]
    return update


def new_rollup(cfg: RollupConfig | None = None) -> TeamRollup:
    return TeamRollup(cfg or RollupConfig(), DictTeamStore())


def of(outputs: Iterable[Output], topic: str, key: str | None = None) -> list[dict[str, Any]]:
    """The values of ``outputs`` on ``topic`` (and ``key``), in order."""
    return [o.value for o in outputs if o.topic == topic and (key is None or o.key == key)]


def brief_team(value: dict[str, Any]) -> tuple[Any, ...]:
    """What a ``team-credibility`` record says, without its time stamp."""
    return (value["score"], value["band"], value["components"], value["components_used"])
