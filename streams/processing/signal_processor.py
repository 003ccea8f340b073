"""The signal processor: behaviour events in, signal deltas and dead letters out.

It reads every customer-keyed input (the four behaviour topics, the directory, the two
team inputs it re-keys by team, and the risk timer's ticks) so that a customer's whole
state is one table value, updated in arrival order (within a fetch: by record
timestamp, :func:`streams.processing.fetch_order.in_time_order`). The consumer hands it each fetch
as one list (:func:`streams.faust_ext.transport.deliver_in_batches`): Faust's one-event-at-a-time
delivery alone costs more CPU than all of the scoring.

Deltas and roll-up records are sent as soon as they arise. A flush (every
``state_flush_seconds`` and before partitions move) takes a snapshot between two
batches: the changed customers' states, encoded (:class:`CustomerCache`), the
acknowledgements of what the batches so far sent, and their input offsets. Writing it
runs beside the next batches: the acknowledgements are awaited, then the states are
written, and only then are the input offsets acknowledged for Faust to commit. A crash
may re-send a delta, with the same ``delta_id``, but never lose one or count an event
twice. (Waiting for the broker inside the batch loop put 5-20 ms pauses on every delta
behind a flush.)

A new customer's events wait one fetch for its directory record
(:meth:`SignalProcessor.held_for_the_directory`): Kafka orders nothing across topics, and
a directory record written in the same produce request as the customer's first events
can be fetched after them; their deltas would carry no team.

A record (or risk tick) whose scoring raises is dead-lettered (``internal_error``) and its
customer rolled back by the engine's bulkhead; the partition moves on. Only a failure
to send or to write (the broker, the disk) stops the worker.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from faust.types import TP, AppT

from scoring.catalog import (
    BEHAVIOUR_TOPICS,
    DIRECTORY_TOPIC,
    DOCUMENT_OPEN,
    RISK_TICKS,
    SIGNAL_DELTAS,
    TEAM_UPDATES,
)
from scoring.customer import MAX_STATE_BYTES, CustomerState, Outcome
from scoring.deadlines import DeadlineIndex
from scoring.deltas import SignalDelta
from scoring.engine import SignalEngine
from scoring.rollup.records import Output, team_update_batches
from scoring.schema import InvalidEvent
from scoring.timeutil import now_ms
from streams.faust_ext import transport
from streams.faust_ext.access import partition_db
from streams.faust_ext.table_options import table_options
from streams.kafka.dead_letters import send_dead_letter
from streams.kafka.publish import Publisher
from streams.kafka.table_writer import BulkTable
from streams.kafka.topics import Topics, catalog
from streams.ops import metrics
from streams.processing.customer_cache import CustomerCache
from streams.processing.fetch_order import in_time_order
from streams.settings import Settings, load_rules


@dataclass(frozen=True)
class Edge:
    """What the processor uses of the worker around it (stand-ins in unit tests)."""

    publisher: Publisher
    #: a cluster topic name's SPEC name
    logical_name: Callable[[str], str]
    #: acknowledge a partition's offsets, first to last, for Faust to commit
    acknowledge: Callable[[TP, int, int], None]
    #: stop the worker
    crash: Callable[[BaseException], Awaitable[None]]
    #: a partition's end offset as the latest fetch saw it (None: not known)
    end_offset: Callable[[TP], int | None]


@dataclass
class Snapshot:
    """What one flush makes durable, in this order."""

    #: acknowledgements of the deltas and records sent by the batches it covers
    acks: list[Awaitable[Any]]
    #: their customers' states: (partition, key, encoded state)
    states: list[tuple[int, bytes, bytes]]
    #: their input records: (partition, first offset, last offset) per batch
    offsets: list[tuple[TP, int, int]]


class SignalProcessor:
    """Scores fetched batches; see the module docstring for the order of durability."""

    def __init__(
        self, engine: SignalEngine, cache: CustomerCache, flush_seconds: float, edge: Edge, wait_for_directory: bool
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.edge = edge
        self._flush_seconds = flush_seconds
        self._wait_for_directory = wait_for_directory
        #: per partition: the last offset fetched when records were last held back; those
        #: up to it are not held again
        self._waited: dict[TP, int] = {}
        self._lock = asyncio.Lock()  # a flush must not interleave with a batch
        #: delivered records whose effects are not durable yet, per partition and batch
        #: (first and last offset), and what they sent
        self._unflushed: list[tuple[TP, int, int]] = []
        self._acks: list[Awaitable[Any]] = []
        #: team updates held back until the flush: one record per team and flush
        self._team_updates: dict[str, list[dict[str, Any]]] = {}
        self._last_flush = time.monotonic()
        self._writing: asyncio.Task[None] | None = None  # the snapshot being written
        self._failed = False
        #: alert records held by the states of the snapshot being written (or of the
        #: table): released at the next snapshot, once that write is done
        self.written_alerts: dict[str, tuple[int, list[dict[str, Any]]]] = {}

    async def deliver(self, batch: Mapping[TP, Sequence[transport.Record]]) -> dict[TP, Sequence[transport.Record]]:
        async with self._lock:
            held: dict[TP, Sequence[transport.Record]] = {}
            try:
                if self._wait_for_directory and (held := self.held_for_the_directory(batch)):
                    metrics.DIRECTORY_WAITS.inc(len(held))
                    batch = {tp: records[: len(records) - len(held.get(tp, ()))] for tp, records in batch.items()}
                    batch = {tp: records for tp, records in batch.items() if records}
                with metrics.BATCH_SECONDS.time():
                    await self._process(batch)
            except BaseException as exc:
                # state may hold part of this batch: never write it (its deltas may be
                # unsent); the worker stops and the next owner replays from the last flush
                self._failed = True
                if isinstance(exc, Exception):
                    await self.edge.crash(exc)
                raise
            self._unflushed += [(tp, records[0].offset, records[-1].offset) for tp, records in batch.items()]
            await self._start_flush_if_due()
            return held

    def held_for_the_directory(
        self, batch: Mapping[TP, Sequence[transport.Record]]
    ) -> dict[TP, Sequence[transport.Record]]:
        """The partitions' tails to fetch again, from the first behaviour event of a
        customer with no state and no directory record in this fetch, in a fetch that
        reached the partition's end.

        The records held are fetched again by a request sent once this fetch has been
        processed, long after the broker appended the rest of the produce request that
        carried them: a directory record written with them comes by then, and
        :func:`in_time_order` puts it first. Records are held once, so this costs a
        partition one more fetch per fetch with new customers (a fetch's time of latency
        for them and the records behind them), and nothing once customers are known.
        A fetch below the partition's end (catching up) is not held: its records were
        appended long before, and so was anything written with them (holding there cost
        a third of the rate filling 200 000 new customers, and doubled the memory).
        It is Kafka Streams' task idling (``max.task.idle.ms``) for the case that idling
        leaves open: records written together, so the fetch that returns the events
        cannot know of the directory record yet.
        """
        logical_name = self.edge.logical_name
        directory = {r.key for tp, records in batch.items() if logical_name(tp.topic) == DIRECTORY_TOPIC for r in records}
        held: dict[TP, Sequence[transport.Record]] = {}
        for tp, records in batch.items():
            waited, last = self._waited.get(tp, -1), records[-1].offset
            if last <= waited or logical_name(tp.topic) not in BEHAVIOUR_TOPICS:
                continue
            end = self.edge.end_offset(tp)
            if end is not None and last + 1 < end:
                continue
            self.cache.partition = tp.partition
            for i, record in enumerate(records):
                key = record.key
                if record.offset > waited and key and key not in directory and not self.cache.known(key):
                    held[tp] = records[i:]
                    self._waited[tp] = last
                    break
        return held

    async def _start_flush_if_due(self) -> None:
        """Snapshot and start writing it. While a write is still running the next
        snapshot simply covers more batches, unless the cache has passed its bound: then
        the batch loop waits for the write, which lets the written states go.

        Catching up, batches keep the event loop busy and the write advances only
        between them; without the wait every snapshot grew with the previous one's
        write until the cache, the journal and the acknowledgements held nearly every
        customer (7 GiB at a million customers, kept by the allocator after the peak).
        """
        if self._failed or time.monotonic() - self._last_flush < self._flush_seconds:
            return
        if self._writing is not None and not self._writing.done():
            if self.cache.excess() <= 0:
                return
            await asyncio.shield(self._writing)
            if self._failed:
                return
        self._writing = asyncio.ensure_future(self._write_or_crash(await self._snapshot()))

    async def flush_if_due(self) -> None:
        async with self._lock:
            await self._start_flush_if_due()

    async def flush(self) -> None:
        """Make everything delivered so far durable before returning."""
        async with self._lock:
            await self._flush_now()

    async def forget(self) -> None:
        """Partitions are moving: drop cached states (their new owner may change them).
        Alerts their written states hold go out from whoever owns them next (see
        :func:`rebuild_deadlines`)."""
        async with self._lock:
            await self._flush_now()
            self.cache.clear()
            self.written_alerts = {}
            self.engine.pending_alerts.clear()

    async def _flush_now(self) -> None:
        if self._writing is not None:
            await asyncio.shield(self._writing)  # even if this caller is cancelled
        if not self._failed:
            await self._write(await self._snapshot())

    async def _process(self, batch: Mapping[TP, Sequence[transport.Record]]) -> None:
        outcomes: Counter[tuple[str, Outcome]] = Counter()
        acks = self._acks
        engine, publisher = self.engine, self.edge.publisher
        for tp, topic, record in in_time_order(batch, self.edge.logical_name):
            partition = self.cache.partition = tp.partition
            if topic == RISK_TICKS:
                tick = orjson.loads(record.value or b"{}")
                handled = engine.tick(tick["customer_id"], tick["now"], partition)
            else:
                handled = engine.receive(topic, record.key, record.value, partition)
                outcomes[topic, handled.outcome] += 1  # a StrEnum: its own label (`.value` costs a descriptor call)
                if handled.outcome is Outcome.LATE:
                    acks.append(await _dead_letter(publisher, record, topic, _LATE))
            if handled.error is not None:
                acks.append(await _dead_letter(publisher, record, topic, handled.error))
            if handled.deltas:
                ingest_ms = record.timestamp if topic != RISK_TICKS else None
                acks += await _send_deltas(publisher, handled.deltas, ingest_ms)
            if handled.outputs:
                acks += await publisher.send_outputs(_hold_team_updates(handled.outputs, self._team_updates))
        for (topic, outcome), count in outcomes.items():
            metrics.EVENTS.labels(topic, outcome).inc(count)

    async def _snapshot(self) -> Snapshot:
        """Between batches (the caller holds the lock), the previous snapshot written:
        what the batches so far changed. Alerts leave only from written states: those the
        previous snapshot held go out now, those held now at the next one."""
        released = []
        for customer_id, (partition, held) in self.written_alerts.items():
            self.cache.partition = partition
            released += self.engine.release_alerts(customer_id, held)
        held_updates = self._team_updates
        self._team_updates = {}
        self._acks += await self.edge.publisher.send_outputs(released + team_update_batches(held_updates))
        snapshot = Snapshot(self._acks, self.cache.snapshot(), self._unflushed)
        self.written_alerts = {}
        for customer_id, partition in self.engine.pending_alerts.items():
            self.cache.partition = partition
            self.written_alerts[customer_id] = (partition, self.engine.held_alerts(customer_id))
        self._acks, self._unflushed = [], []
        self._last_flush = time.monotonic()
        return snapshot

    async def _write(self, snapshot: Snapshot) -> None:
        await asyncio.gather(*snapshot.acks)  # deltas are durable before the state that records them
        # a partition at a time: batches run while each one's changelog is acknowledged
        # (all at once held the event loop 10-25 ms at 1 000 ev/s)
        by_partition: dict[int, list[tuple[int, bytes, bytes]]] = {}
        for write in snapshot.states:
            by_partition.setdefault(write[0], []).append(write)
        for writes in list(by_partition.values()) or [[]]:  # an empty write still lets cold states go
            await self.cache.write(writes)
        for tp, first, last in snapshot.offsets:
            self.edge.acknowledge(tp, first, last)
        metrics.RISK_INDEX_SIZE.set(len(self.engine.deadlines))

    async def _write_or_crash(self, snapshot: Snapshot) -> None:
        try:
            await self._write(snapshot)
        except Exception as exc:  # the inputs stay unacknowledged: the next owner replays them
            self._failed = True
            await self.edge.crash(exc)


#: the metrics' children, looked up once (``labels`` takes a lock per call)
_EVENT_LATENCY = metrics.DELTA_LATENCY.labels("event")
_INGEST_LATENCY = metrics.DELTA_LATENCY.labels("ingest")
_DELTAS: dict[str, Any] = {}


async def _send_deltas(publisher: Publisher, deltas: list[SignalDelta], ingest_ms: int | None) -> list[Awaitable[Any]]:
    futures = []
    for delta in deltas:
        detected = now_ms()
        futures.append(
            await publisher.send(SIGNAL_DELTAS, delta.customer_id.encode(), orjson.dumps(delta.to_record(detected)))
        )
        counter = _DELTAS.get(delta.signal)
        if counter is None:
            counter = _DELTAS[delta.signal] = metrics.DELTAS.labels(delta.signal)
        counter.inc()
        _EVENT_LATENCY.observe(max(0, detected - delta.ts) / 1000)
        if ingest_ms is not None:
            _INGEST_LATENCY.observe(max(0, detected - ingest_ms) / 1000)
    return futures


def _hold_team_updates(records: list[Output], held: dict[str, list[dict[str, Any]]]) -> list[Output]:
    """Keep team updates back, in order, to send one record per team at the flush: a
    busy team would otherwise get a record (and a team-agent pass) per customer."""
    for record in records:
        if record.topic == TEAM_UPDATES:
            held.setdefault(record.key, []).append(record.value)
    return [r for r in records if r.topic != TEAM_UPDATES]


#: the verdict on an event older than its topic's de-duplication horizon
_LATE = InvalidEvent("late_event", "older than the de-duplication horizon")


async def _dead_letter(
    publisher: Publisher, record: transport.Record, topic: str, error: InvalidEvent
) -> Awaitable[Any]:
    return await send_dead_letter(publisher, topic, record.partition, record.offset, record.key, record.value, error)


def register(app: AppT, settings: Settings, topics: Topics, publisher: Publisher) -> SignalProcessor:
    """The signal processor on ``app``: its state table, the batch delivery of its
    input, the flush and risk timers, and its rebalance hooks."""
    state_table = app.Table(
        "customer-signal-state",
        partitions=catalog[DOCUMENT_OPEN].partitions,
        key_type=bytes,  # bytes types mean Faust's raw codec: we serialise with orjson
        value_type=bytes,
        # a busy customer's value (its week of de-duplication memory) can pass Kafka's 1 MB;
        # the customer's capacity (scoring.customer) keeps it below this
        extra_topic_configs={"max.message.bytes": str(MAX_STATE_BYTES)},
        options=table_options(),
    )
    cache = CustomerCache(BulkTable(app, state_table), settings.state_cache_customers)
    engine = SignalEngine(catalog, load_rules(settings), cache, settings.rollup, max_skew_ms=settings.max_event_skew_ms)

    def acknowledge(tp: TP, first: int, last: int) -> None:
        cast(transport.Consumer, app.consumer).ack_offsets(tp, first, last)

    def end_offset(tp: TP) -> int | None:
        return cast(transport.Consumer, app.consumer).highwater(tp)

    edge = Edge(publisher, topics.logical_name, acknowledge, app.crash, end_offset)
    processor = SignalProcessor(engine, cache, settings.state_flush_seconds, edge, settings.wait_for_directory)
    transport.deliver_in_batches(app, topics.signal_inputs, processor)

    @app.timer(settings.state_flush_seconds)
    async def flush_state() -> None:
        """Flush when the input goes quiet (a busy stream flushes as batches arrive)."""
        await processor.flush_if_due()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's signal hints are narrower
    async def forget_customers(sender: Any, revoked: Any, **kwargs: Any) -> None:
        await processor.forget()

    @app.timer(settings.risk_tick_seconds)
    async def risk_timer() -> None:
        await send_risk_ticks(engine, publisher)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # mode's signal hints are narrower
    async def rebuild_deadlines(sender: Any, **kwargs: Any) -> None:
        index_deadlines(app, state_table, engine)

    return processor


async def send_risk_ticks(engine: SignalEngine, publisher: Publisher) -> None:
    """Ask the processor to check customers with a due risk or ageing deltas (wall clock)."""
    now = now_ms()
    for customer_id, partition in engine.deadlines.pop_due(now):
        tick = orjson.dumps({"customer_id": customer_id, "now": now})
        await publisher.send(RISK_TICKS, customer_id.encode(), tick, partition)


def index_deadlines(app: AppT, state_table: Any, engine: SignalEngine) -> None:
    """After recovery, index the armed opportunities of the partitions we now own."""
    changelog = state_table.changelog_topic.get_topic_name()
    owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog}
    index = DeadlineIndex()
    engine.deadlines = index
    offset_key = cast(Any, state_table.data).offset_key  # Faust keeps its offset in the same DB
    for partition in owned:
        for key, raw in partition_db(state_table, partition).items():
            if key != offset_key:
                engine.index_state(CustomerState.from_bytes(raw), partition)
    metrics.RISK_INDEX_SIZE.set(len(index))
