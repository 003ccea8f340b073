"""Synthetic demo traffic: several teams' customers walking through every rule, two
closed months of technical requests (one team's technical department answers late),
plus a few malformed records, and a console printer for what comes out."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from scoring.catalog import (
    ACTION_WATER_LEVELS,
    ALERTS,
    DEAD_LETTER,
    DIRECTORY_TOPIC,
    DOCUMENT_OPEN,
    FORECAST_OUTCOME,
    PROCESS_DIAGNOSIS,
    ROLE_LOGIN,
    RUSH_DELIVERY,
    SALES_ACTION,
    SIGNAL_DELTAS,
    STALE_UPDATE,
    TEAM_CREDIBILITY,
)
from scoring.rollup.water_level import month_end, month_of, shift
from streams.kafka.client import client_options
from streams.settings import Settings

HOUR_MS = 3_600_000
TEAMS = [("team-north", "north"), ("team-east", "east"), ("team-south", "south")]


def directory_record(n: int) -> tuple[str, str, Any]:
    team, region = TEAMS[n % len(TEAMS)]
    cid = f"cust-{n:04d}"
    return DIRECTORY_TOPIC, cid, {
        "customer_id": cid, "team_id": team, "region": region, "rep_id": f"rep-{n % 7}"
    }


def forecast_history(now: int) -> list[tuple[str, str, Any]]:
    """Six closed months per team, each a little off its forecast."""
    records = []
    for t, (team, _) in enumerate(TEAMS):
        for month in range(1, 7):
            forecast = 100_000 + 10_000 * month
            actual = forecast * (1 - 0.04 * (t + 1) * (month % 3))
            records.append((FORECAST_OUTCOME, team, {
                "event_id": f"{team}-2026-{month:02d}", "ts": now - (7 - month) * 30 * 86_400_000,
                "team_id": team, "period": f"2026-{month:02d}",
                "forecast_amount": forecast, "actual_amount": round(actual, 2),
            }))
    return records


#: team-east's technical requests: how many hours late each was answered (None: never)
LATE_TECH_REQUESTS = (None, 1.5, 2.5, 3.5, None)


def tech_request_history(now: int, zone: str) -> list[tuple[str, str, Any]]:
    """Five technical requests per team in each of the two closed months before ``now``
    (in ``zone``), in time order. team-east's technical department answers one on time,
    three late and one never: 20 % against a 95 % target, two months running, so a
    process diagnosis follows; the other teams answer all on time."""
    records = []
    for t, (team, _) in enumerate(TEAMS):
        customer = f"cust-{t:04d}"  # directory_record(t) puts it in this team
        for back in (2, 1):
            month = shift(month_of(now, zone), -back)
            start = month_end(shift(month, -1), zone)
            for i in range(5):
                due = start + (1 + 5 * i) * 86_400_000 + 10 * HOUR_MS
                late = LATE_TECH_REQUESTS[i] if team == "team-east" and i else -1.0
                done = None if late is None else due + round(late * HOUR_MS)
                item = f"{team}-{month}-tr{i}"
                value = {"event_id": item, "ts": due if done is None else done, "customer_id": customer,
                         "opportunity_id": f"opp-{item}", "team_id": team, "action": "tech_request",
                         "action_id": item, "due_ts": due, "owner": "sales" if i == 0 else "technical"}
                records.append((SALES_ACTION, customer, value | ({} if done is None else {"done_ts": done})))
    return sorted(records, key=lambda r: r[2]["ts"])


def customer_story(n: int, now: int, rng: random.Random) -> list[tuple[str, str, Any]]:
    """``(topic, key, value)`` records that make customer ``n`` fire all four signals.

    The customer's directory record is not among them: Kafka orders records per
    partition, not across topics, so the demo publishes ownership a story ahead.
    """
    cid = f"cust-{n:04d}"
    ip = f"203.0.113.{n % 250 + 1}"
    seq = itertools.count()

    def ev(topic: str, ts: int, **fields: Any) -> tuple[str, str, Any]:
        value = {"event_id": f"{cid}-{topic}-{next(seq)}", "ts": ts, "customer_id": cid, "ip": ip}
        return topic, cid, {**value, **fields}

    t = now - 5 * 60_000
    records = [
        ev(DOCUMENT_OPEN, t + i * 60_000, document_type="Quote", document_id=f"q-{n}",
           dwell_seconds=rng.randint(121, 900), opportunity_id=f"opp-{n}")
        for i in range(3)
    ]
    records += [
        ev(ROLE_LOGIN, t + i * 30_000, user_id=f"u-{n}-{role}", role=role)
        for i, role in enumerate(("procurement", "Technical", "legal"))
    ]
    records.append(ev(RUSH_DELIVERY, now, contract_id=f"CT-{n:05d}", note="need it by Friday"))
    records.append(ev(STALE_UPDATE, now - 49 * HOUR_MS, opportunity_id=f"opp-{n}", kind="progress"))
    records.append(ev(STALE_UPDATE, now, opportunity_id=f"opp-{n}", kind="communication", outcome="reconsider"))
    team = TEAMS[n % len(TEAMS)][0]
    late_share = 0.8 if team == "team-east" else 0.15  # one team misses its due dates
    for i in range(2):
        late = rng.random() < late_share
        due = now - (i + 1) * 86_400_000
        records.append(ev(SALES_ACTION, due - 3 * 86_400_000, opportunity_id=f"opp-{n}", team_id=team,
                          action=f"step-{i}", due_ts=due, done_ts=due + (3_600_000 if late else -3_600_000)))
    records.append((ROLE_LOGIN, cid, '{"event_id": "broken'))  # malformed JSON: dead-letter
    records.append((DOCUMENT_OPEN, cid, {"event_id": f"{cid}-naive", "ts": "2026-11-26T10:00:00", "customer_id": cid}))
    return records


async def produce_demo(
    settings: Settings, now_ms: Callable[[], int], customers: int = 6, interval_s: float = 3.0
) -> None:
    """Publish ``customers`` stories at once, then one every ``interval_s`` seconds."""
    producer = AIOKafkaProducer(**client_options(settings), linger_ms=5)
    await producer.start()
    rng = random.Random(7)
    try:
        for n in range(customers):
            await _send(producer, settings, directory_record(n))
        for record in forecast_history(now_ms()) + tech_request_history(now_ms(), settings.time_zone):
            await _send(producer, settings, record)
        for n in itertools.count():
            for record in [directory_record(n + customers), *customer_story(n, now_ms(), rng)]:
                await _send(producer, settings, record)
            await producer.flush()
            await asyncio.sleep(0.2 if n < customers else interval_s)
    finally:
        await producer.stop()


async def _send(producer: AIOKafkaProducer, settings: Settings, record: tuple[str, str, Any]) -> None:
    topic, key, value = record
    raw = value.encode() if isinstance(value, str) else orjson.dumps(value)
    await producer.send(settings.topic_prefix + topic, raw, key=key.encode())



async def tail(settings: Settings, topics: list[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    consumer = AIOKafkaConsumer(
        *(settings.topic_prefix + t for t in topics),
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        async for msg in consumer:
            yield msg.topic[len(settings.topic_prefix):], orjson.loads(msg.value)
    finally:
        await consumer.stop()


def describe(topic: str, record: dict[str, Any]) -> str:
    if topic == SIGNAL_DELTAS:
        return (
            f"{record['points']:+3d} {record['signal']:<15} customer={record['customer_id']} "
            f"team={record['team_id']} region={record['region']} at {record['ts']} "
            f"evidence={[e['event_id'] for e in record['evidence']]}"
        )
    if topic == ALERTS and record.get("retracted"):
        return f"ALERT retracted: customer={record['customer_id']} alert={record['alert_id']} (a late delta)"
    if topic == ALERTS:
        return (
            f"ALERT procurement acceleration: customer={record['customer_id']} "
            f"team={record['team_id']} net={record['net_points']} in {record['window_days']} days"
        )
    if topic == TEAM_CREDIBILITY:
        if record["score"] is None:
            return f"TEAM {record['team_id']:<11} no data left"
        parts = ", ".join(f"{k}={v}" for k, v in record["components"].items() if v is not None)
        return f"TEAM {record['team_id']:<11} score={record['score']:6.2f} {record['band']:<6} ({parts})"
    if topic == ACTION_WATER_LEVELS:
        return (
            f"WATER {record['team_id']:<11} {record['action']} {record['month']}: {record['on_time']} of "
            f"{record['due']} on time = {record['level']} (target {record['target']})"
            + (" BELOW" if record["below"] else "")
        )
    if topic == PROCESS_DIAGNOSIS:
        return describe_diagnosis(record)
    return f"dead-letter  {record['reason']:<15} from {record['topic']}: {record['detail']}"


def describe_diagnosis(record: dict[str, Any]) -> str:
    """e.g. ``technical: 6 of 8 misses, 2.5 h late on average (max 3.5 h), 2 never done``."""
    months = ", ".join(f"{m['month']} {m['level']}" for m in record["months"])
    points = "; ".join(
        f"{p['owner']}: {p['missed']} of {record['missed']} misses"
        + (f", {p['mean_hours_late']} h late on average (max {p['max_hours_late']} h)" if p["mean_hours_late"] is not None else "")
        + (f", {p['never_done']} never done" if p["never_done"] else "")
        for p in record["stall_points"]
    )
    return (
        f"DIAGNOSIS {record['team_id']} {record['action']} below {record['target']} two closed months "
        f"running ({months}): {points}"
    )


def _worth_printing(topic: str, record: dict[str, Any]) -> bool:
    """Water levels: only closed months of kinds with a target (open ones change all the time)."""
    return topic != ACTION_WATER_LEVELS or (record["final"] and record["target"] is not None and record["due"] > 0)


async def print_outputs(settings: Settings) -> None:
    topics = [SIGNAL_DELTAS, ALERTS, TEAM_CREDIBILITY, ACTION_WATER_LEVELS, PROCESS_DIAGNOSIS, DEAD_LETTER]
    async for topic, record in tail(settings, topics):
        if _worth_printing(topic, record):
            print(describe(topic, record), flush=True)

