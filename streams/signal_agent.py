"""The signal agent: behaviour events in, signal deltas and dead letters out.

One agent reads all customer-keyed inputs (the four behaviour topics, the directory
and the risk timer's ticks) so that a customer's whole state is one table value,
updated in arrival order, written once per batch: a batch's events are decoded once,
their deltas sent and acknowledged, and only then is each touched customer's state
written (with that customer's last event as the current event, so the changelog
record lands on the right partition). A crash may re-send a delta, with the same
``delta_id``, but never lose one or count an event twice.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import orjson
from faust.streams import _current_event
from faust.types import EventT

from scoring.customer import CustomerState, Outcome
from scoring.deadlines import DeadlineIndex
from scoring.deltas import SignalDelta
from scoring.engine import SignalEngine
from scoring.rollup.records import TEAM_UPDATES, Output
from scoring.timeutil import now_ms
from streams import metrics
from streams.app import app, settings
from streams.channels import RISK_TICKS, catalog, logical_name, outputs, signal_inputs
from streams.dead_letters import dead_letter_record

#: room for about 390 000 remembered events per customer and topic per week
MAX_STATE_BYTES = 8 * 1024 * 1024

state_table = app.Table(
    "customer-signal-state",
    partitions=catalog["document-open"].partitions,
    key_type=bytes,  # bytes types mean Faust's raw codec: we serialise with orjson
    value_type=bytes,
    # a busy customer's value (its week of de-duplication memory) can pass Kafka's 1 MB
    extra_topic_configs={"max.message.bytes": str(MAX_STATE_BYTES)},
)


class BatchStore:
    """The engine's state store over the table, caching and coalescing one batch."""

    def __init__(self) -> None:
        self._cache: dict[str, CustomerState | None] = {}
        self._dirty: dict[str, EventT[Any]] = {}
        self.current: EventT[Any] | None = None

    def load(self, customer_id: str) -> CustomerState | None:
        if customer_id not in self._cache:
            raw = state_table.get(customer_id.encode())
            self._cache[customer_id] = CustomerState.from_bytes(raw) if raw else None
        return self._cache[customer_id]

    def save(self, state: CustomerState) -> None:
        assert self.current is not None
        self._cache[state.customer_id] = state
        self._dirty[state.customer_id] = self.current

    def flush(self) -> None:
        for customer_id, event in self._dirty.items():
            _current_event.set(weakref.ref(event))
            state = self._cache[customer_id]
            assert state is not None
            state_table[customer_id.encode()] = state.to_bytes()
        self._cache.clear()
        self._dirty.clear()


store = BatchStore()
engine = SignalEngine(catalog, settings.rules, store, settings.rollup)


@app.agent(signal_inputs)
async def score_signals(stream: Any) -> None:
    async for batch in stream.take_events(
        settings.batch_max_events, within=settings.batch_within_seconds
    ):
        with metrics.BATCH_SECONDS.time():
            await process_batch(batch)


async def process_batch(batch: Sequence[EventT[Any]]) -> None:
    acks: list[Awaitable[Any]] = []
    team_updates: dict[str, list[dict[str, Any]]] = {}
    for event in batch:
        _current_event.set(weakref.ref(event))
        store.current = event
        message = event.message
        topic = logical_name(message.topic)
        if topic == RISK_TICKS:
            tick = orjson.loads(message.value or b"{}")
            handled = engine.fire_customer(tick["customer_id"], tick["now"], message.partition)
            acks += await _send_deltas(handled.deltas)
            acks += await send_outputs(_hold_team_updates(handled.outputs, team_updates))
            continue
        handled = engine.handle(topic, message.key, message.value, message.partition)
        metrics.EVENTS.labels(topic, handled.outcome.value).inc()
        if handled.error is not None:
            acks.append(await _dead_letter(event, topic, handled.error.reason, handled.error.detail))
        elif handled.outcome is Outcome.LATE:
            acks.append(
                await _dead_letter(event, topic, "late_event", "older than the de-duplication horizon")
            )
        if handled.deltas:
            acks += await _send_deltas(handled.deltas, message.timestamp)
        acks += await send_outputs(_hold_team_updates(handled.outputs, team_updates))
    acks += await send_outputs(
        [Output(TEAM_UPDATES, team, {"kind": "batch", "updates": ups}) for team, ups in team_updates.items()]
    )
    await asyncio.gather(*acks)  # deltas are durable before the state that records them
    store.current = None
    store.flush()
    metrics.RISK_INDEX_SIZE.set(len(engine.deadlines))


async def _send_deltas(
    deltas: list[SignalDelta], ingest_ts: float | None = None
) -> list[Awaitable[Any]]:
    futures = []
    for delta in deltas:
        detected = now_ms()
        futures.append(
            await outputs["signal-deltas"].send(
                key=delta.customer_id.encode(), value=orjson.dumps(delta.to_record(detected))
            )
        )
        metrics.DELTAS.labels(delta.signal).inc()
        metrics.DELTA_LATENCY.labels("event").observe(max(0, detected - delta.ts) / 1000)
        if ingest_ts is not None:
            metrics.DELTA_LATENCY.labels("ingest").observe(max(0.0, detected / 1000 - ingest_ts))
    return futures


def _hold_team_updates(records: list[Output], held: dict[str, list[dict[str, Any]]]) -> list[Output]:
    """Keep a batch's team updates back, in order, to send one record per team: a
    busy team would otherwise get a record (and a team-agent pass) per customer."""
    for record in records:
        if record.topic == TEAM_UPDATES:
            held.setdefault(record.key, []).append(record.value)
    return [r for r in records if r.topic != TEAM_UPDATES]


async def send_outputs(records: list[Output]) -> list[Awaitable[Any]]:
    """Publish roll-up records; returns their acknowledgement futures."""
    futures = []
    for record in records:
        if record.topic == "procurement-alerts":
            metrics.ALERTS.inc()
        futures.append(
            await outputs[record.topic].send(key=record.key.encode(), value=orjson.dumps(record.value))
        )
    return futures


async def _dead_letter(event: EventT[Any], topic: str, reason: str, detail: str) -> Awaitable[Any]:
    metrics.DEAD_LETTERS.labels(topic, reason).inc()
    return await outputs["dead-letter"].send(
        key=event.message.key,
        value=orjson.dumps(dead_letter_record(event.message, topic, reason, detail, now_ms())),
    )


@app.timer(settings.risk_tick_seconds)
async def risk_timer() -> None:
    """Ask the agent to check customers with a due risk or ageing deltas (wall clock)."""
    now = now_ms()
    for customer_id, partition in engine.deadlines.pop_due(now):
        await outputs[RISK_TICKS].send(
            key=customer_id.encode(),
            value=orjson.dumps({"customer_id": customer_id, "now": now}),
            partition=partition,
        )


@app.on_rebalance_complete.connect  # type: ignore[arg-type]  # mode's signal hints are narrower
async def rebuild_deadlines(sender: Any, **kwargs: Any) -> None:
    """After recovery, index the armed opportunities of the partitions we now own."""
    changelog = state_table.changelog_topic.get_topic_name()
    owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog}
    index = DeadlineIndex()
    engine.deadlines = index
    rocks = cast(Any, state_table.data)  # the RocksDB store: Faust has no public per-partition view
    for partition in owned:
        for key, raw in rocks._db_for_partition(partition).items():
            if key != rocks.offset_key:  # Faust keeps its offset in the same DB
                engine.index_state(CustomerState.from_bytes(raw), partition)
    metrics.RISK_INDEX_SIZE.set(len(index))


@app.page("/metrics")
async def metrics_view(web: Any, request: Any) -> Any:
    body, content_type = metrics.exposition()
    return web.bytes(body, content_type=content_type)
