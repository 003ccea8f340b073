"""Contract tests of ``streams/faust_ext``: each overridden path runs through the real
faust-streaming, mode and aiokafka classes it was written against (``faust_worker.py``:
only the network ends are replaced), so that an upgrade that changes what it relies on
fails here; the start-up guard (``faust_ext.versions``) stops a worker from running an
upgrade nobody ran these against.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiokafka
import faust
import pytest
from aiokafka.consumer.group_coordinator import GroupCoordinator
from faust.exceptions import NotReady
from faust.tables.recovery import Recovery
from faust.types import TP
from rocksdict import WriteBatch

from streams.faust_ext import access, recovery, transport
from streams.faust_ext import web as web_driver
from streams.faust_ext.worker import Worker as CredenceWorker
from tests.unit.faust_worker import STREAM_0, STREAM_1, Worker, fetching, nothing, record, until, worker


def test_a_fetch_goes_through_faust_fetcher_to_its_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with worker(monkeypatch, nothing) as w:
            await w.assign({STREAM_0: 3})
            async with fetching(w):
                w.respond(*(record(STREAM_0, o) for o in (3, 4, 5)))
                await until(lambda: len(w.delivered) == 3, "the fetch to be delivered")
            assert w.delivered == [(STREAM_0, 3), (STREAM_0, 4), (STREAM_0, 5)]
            assert w.consumer._read_offset[STREAM_0] == 5
            assert w.position(STREAM_0) == 6

    asyncio.run(scenario())


def commits(consumer: transport.Consumer, tp: TP) -> list[int]:
    """The offsets Faust's successive commits of ``tp`` would commit, from now on."""
    offsets: list[int] = []
    while (offset := consumer._new_offset(tp)) is not None:
        offsets.append(offset)
        consumer._committed_offset[tp] = offset  # as a successful commit does
    return offsets


class AckingHandler:
    """A batch topic's handler that acknowledges every batch at once."""

    def __init__(self, consumer: transport.Consumer) -> None:
        self.consumer = consumer
        self.batches: list[dict[TP, list[int]]] = []

    async def deliver(self, batch: Any) -> None:
        self.batches.append({tp: [r.offset for r in records] for tp, records in batch.items()})
        for tp, records in batch.items():
            self.consumer.ack_offsets(tp, records[0].offset, records[-1].offset)

    async def flush(self) -> None:
        pass


def test_a_batch_acknowledged_in_bulk_leaves_what_faust_acking_each_message_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch topics skip Faust's messages; their bulk acknowledgement, and the gaps of a
    compacted offset range, must leave Faust's bookkeeping committing what Faust's own
    loop and ``ack`` commit for a topic delivered one message at a time.

    (Not in the same steps: a bulk ack also counts the offsets between a batch's records
    as acknowledged, and Faust's commit stops at an offset that is both acknowledged and
    in a gap, so the first commit here is 6 rather than 7; the next one catches up.)"""
    batch_tp, message_tp = TP("signals", 0), TP("other", 0)

    async def ack(w: Worker, message: Any) -> None:
        w.consumer.ack(message)

    async def scenario() -> None:
        async with worker(monkeypatch, ack) as w:
            monkeypatch.setattr(transport.Consumer, "batch_handlers", {})
            handler = AckingHandler(w.consumer)
            transport.deliver_in_batches(w.app, w.app.topic(batch_tp.topic), handler)
            await w.subscribe(message_tp.topic)
            await w.assign({batch_tp: 3, message_tp: 3})
            async with fetching(w):
                w.respond(*(record(tp, o) for tp in (batch_tp, message_tp) for o in (3, 4, 6)))  # 5 compacted
                await until(lambda: len(handler.batches) == 1 and len(w.delivered) == 3, "the first fetch")
                w.respond(*(record(tp, o) for tp in (batch_tp, message_tp) for o in (9, 10)))  # 7, 8 too
                await until(lambda: len(handler.batches) == 2 and len(w.delivered) == 5, "the second fetch")
            assert handler.batches == [{batch_tp: [3, 4, 6]}, {batch_tp: [9, 10]}]
            assert [offset for tp, offset in w.delivered] == [3, 4, 6, 9, 10]
            consumer = w.consumer
            assert consumer._read_offset[batch_tp] == consumer._read_offset[message_tp] == 10
            done = [set(consumer._acked[tp]) | {o for gap in consumer._gap[tp] for o in range(gap.begin, gap.end)}
                    for tp in (batch_tp, message_tp)]
            assert done[0] == done[1] == set(range(3, 11))
            assert commits(consumer, batch_tp)[-1] == commits(consumer, message_tp)[-1] == 11

    asyncio.run(scenario())


class HoldingHandler:
    """A batch topic's handler that processes (acknowledges) offsets below ``HELD_FROM``
    and, the first time it sees them, hands the rest back."""

    HELD_FROM = 4

    def __init__(self, consumer: transport.Consumer) -> None:
        self.consumer = consumer
        self.batches: list[dict[TP, list[int]]] = []

    async def deliver(self, batch: Any) -> dict[TP, list[Any]]:
        first_time = not self.batches
        self.batches.append({tp: [r.offset for r in records] for tp, records in batch.items()})
        held = {}
        for tp, records in batch.items():
            kept = [r for r in records if not first_time or r.offset < self.HELD_FROM]
            if kept:
                self.consumer.ack_offsets(tp, kept[0].offset, kept[-1].offset)
            if len(kept) < len(records):
                held[tp] = records[len(kept):]
        return held

    async def flush(self) -> None:
        pass


def test_records_a_batch_handler_hands_back_are_fetched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signal processor's wait for a directory record: records it hands back are
    not lost (aiokafka's position goes back to the first of them) and Faust commits
    nothing past them until they are processed."""
    batch_tp = TP("signals", 0)

    async def scenario() -> None:
        async with worker(monkeypatch, nothing) as w:
            monkeypatch.setattr(transport.Consumer, "batch_handlers", {})
            handler = HoldingHandler(w.consumer)
            transport.deliver_in_batches(w.app, w.app.topic(batch_tp.topic), handler)
            await w.subscribe()  # the acknowledged topics, as Faust indexes them when it subscribes
            await w.assign({batch_tp: 3})
            async with fetching(w):
                w.respond(*(record(batch_tp, o) for o in (3, 4, 5)))
                await until(lambda: w.position(batch_tp) == 4, "the records handed back to be given back")
                assert w.consumer._read_offset[batch_tp] == 4
                assert commits(w.consumer, batch_tp) == [4]  # the record processed, not those held
                w.respond(*(record(batch_tp, o) for o in (4, 5)))
                await until(lambda: len(handler.batches) == 2, "the records handed back to be delivered again")
            assert handler.batches == [{batch_tp: [3, 4, 5]}, {batch_tp: [4, 5]}]
            assert commits(w.consumer, batch_tp) == [6]

    asyncio.run(scenario())


def test_a_rebalance_in_the_middle_of_a_fetch_gives_the_rest_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generation changes while a fetch is delivered (Faust sets it on every
    assignment): the rest of the fetch is not delivered, and aiokafka's positions go
    back to the first record not delivered, on every partition of the fetch."""

    async def rebalance_at_4(w: Worker, message: Any) -> None:
        if message.offset == 4:
            w.app.consumer_generation_id += 1

    async def scenario() -> None:
        async with worker(monkeypatch, rebalance_at_4) as w:
            await w.assign({STREAM_0: 3, STREAM_1: 7})
            async with fetching(w):
                w.respond(*(record(STREAM_0, o) for o in (3, 4, 5)), record(STREAM_1, 7), record(STREAM_1, 8))
                await until(lambda: w.position(STREAM_0) == 5 and w.position(STREAM_1) == 7,
                            "the undelivered records to be given back")
                assert w.delivered == [(STREAM_0, 3), (STREAM_0, 4)]
                assert w.consumer._read_offset[STREAM_0] == 5
                assert w.consumer._read_offset[STREAM_1] == 7
                # the next fetch from the positions given back is delivered whole
                w.respond(record(STREAM_0, 5), record(STREAM_1, 7), record(STREAM_1, 8))
                await until(lambda: len(w.delivered) == 5, "the records given back to be delivered")
            assert w.delivered[2:] == [(STREAM_0, 5), (STREAM_1, 7), (STREAM_1, 8)]

    asyncio.run(scenario())


def test_a_fetch_returned_after_the_flow_stopped_is_given_back_before_the_seek(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore with dropped records: a fetch under way when the flow stopped (a
    rebalance began) returns the records of a partition nothing will seek (nothing
    committed yet: Faust's seek to committed offsets leaves it). Dropped without a
    give-back, aiokafka's position stays past them and they are never read again."""

    async def scenario() -> None:
        async with worker(monkeypatch, nothing) as w:
            await w.assign({STREAM_0: 0, STREAM_1: 0})
            w.committed = {STREAM_0: None, STREAM_1: 2}
            async with fetching(w):
                await until(lambda: bool(w.client._fetcher._fetch_waiters), "a fetch to wait for records")
                w.consumer.stop_flow()  # the flow stops while the fetch waits
                w.respond(*(record(STREAM_0, o) for o in (0, 1, 2)), *(record(STREAM_1, o) for o in (0, 1, 2, 3)))
                await until(lambda: w.position(STREAM_1) == 2, "the seek to the committed offset")
                assert w.delivered == []
                assert w.position(STREAM_0) == 0  # given back
                assert w.consumer._read_offset[STREAM_0] is None  # as Faust's seek to 0 leaves it
                assert w.consumer._read_offset[STREAM_1] == 2
                w.consumer.resume_flow()
                w.respond(*(record(STREAM_0, o) for o in (0, 1, 2)), record(STREAM_1, 2))
                await until(lambda: len(w.delivered) == 4, "the records given back to be delivered")
            assert sorted(w.delivered) == [(STREAM_0, 0), (STREAM_0, 1), (STREAM_0, 2), (STREAM_1, 2)]

    asyncio.run(scenario())


def test_a_give_back_leaves_a_partition_seeked_since_the_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore seeks its changelog to the next record to apply; a fetch dropped after
    that seek must not move it (the real rewind reads aiokafka's positions)."""

    async def scenario() -> None:
        async with worker(monkeypatch, nothing) as w:
            await w.assign({STREAM_0: 0})
            fetched = await w.fetch(*(record(STREAM_0, o) for o in (0, 1, 2)))
            assert w.position(STREAM_0) == 3
            w.client.seek(STREAM_0, 1)  # the restore's seek
            await w.consumer._give_back(fetched.items())
            assert w.position(STREAM_0) == 1

    asyncio.run(scenario())


@dataclass
class RecoveryRun:
    #: the consumer's flow at the seek to committed offsets
    flow_at_seek: bool | None = None
    flow_after: bool | None = None
    partitions_resumed: bool = False


def complete_recovery(monkeypatch: pytest.MonkeyPatch, method: Callable[..., Any]) -> RecoveryRun:
    """Faust's ``Recovery.on_recovery_completed`` (``method``) on a worker whose flow is
    on (it was turned on to read the changelogs) and whose stream partition is paused."""
    run = RecoveryRun()

    async def scenario() -> None:
        async with worker(monkeypatch, nothing) as w:
            await w.assign({STREAM_0: 0})
            w.committed = {STREAM_0: 4}
            w.consumer.pause_partitions({STREAM_0})
            w.consumer.resume_flow()
            seek_to_committed = w.thread._seek_to_committed

            async def seek() -> dict[TP, int]:
                run.flow_at_seek = w.consumer.flow_active
                return await seek_to_committed()

            monkeypatch.setattr(w.thread, "_seek_to_committed", seek)
            monkeypatch.setattr(w.app._fetcher, "maybe_start", lambda: asyncio.sleep(0))
            tables = w.app.tables
            await method(tables.recovery, w.app.consumer_generation_id)  # type: ignore[attr-defined]
            run.flow_after = w.consumer.flow_active
            run.partitions_resumed = not w.client.paused() and w.position(STREAM_0) == 4

    asyncio.run(scenario())
    return run


def test_the_recovery_fix_stops_the_flow_until_the_streams_are_seeked(monkeypatch: pytest.MonkeyPatch) -> None:
    transport.register(idempotence=False)
    assert Recovery.on_recovery_completed is recovery._seek_before_resuming_streams
    run = complete_recovery(monkeypatch, Recovery.on_recovery_completed)
    assert run.flow_at_seek is False
    assert run.flow_after is True  # Faust's method turns it back on after the seek
    assert run.partitions_resumed


def test_faust_seeks_the_streams_with_the_flow_on() -> None:
    """The race the fix is for, still in Faust: if this fails, Faust has changed its
    recovery; read ``streams/faust_ext/recovery.py`` again (it may be obsolete)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        run = complete_recovery(monkeypatch, recovery._on_recovery_completed)
    assert run.flow_at_seek is True
    assert run.partitions_resumed


def test_committed_offsets_are_those_faust_seeked_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """``access.committed_offsets`` (the lag gauge) reads what Faust's seek to the
    committed offsets recorded."""

    async def scenario() -> None:
        async with worker(monkeypatch, nothing) as w:
            await w.assign({STREAM_0: 0, STREAM_1: 0})
            w.committed = {STREAM_0: 4, STREAM_1: None}
            await w.consumer.perform_seek()
            offsets = access.committed_offsets(w.app)
            assert (offsets[STREAM_0], offsets[STREAM_1]) == (4, None)

    asyncio.run(scenario())


@asynccontextmanager
async def coordinated(w: Worker) -> AsyncIterator[GroupCoordinator]:
    """aiokafka's group coordinator, as ``AIOKafkaConsumer.start`` makes it, without its
    coordination routine (no broker to find)."""
    client = w.client
    coordinator = GroupCoordinator(client._client, client._subscription, group_id="contract")
    coordinator._coordination_task.cancel()
    client._coordinator = coordinator
    try:
        yield coordinator
    finally:
        await coordinator.close()


def test_a_rejoin_is_asked_of_the_group_coordinator_in_the_consumer_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with worker(monkeypatch, nothing) as w, coordinated(w) as coordinator:
            await w.assign({STREAM_0: 0})
            scheduled: list[Callable[[], Any]] = []
            monkeypatch.setattr(w.thread.thread_loop, "call_soon_threadsafe", scheduled.append)
            assert not coordinator.need_rejoin(w.client._subscription.subscription)
            access.request_rejoin(w.app)
            assert len(scheduled) == 1  # not called here: aiokafka is not thread-safe
            scheduled[0]()
            assert coordinator.need_rejoin(w.client._subscription.subscription)

    asyncio.run(scenario())


def test_the_sigusr1_dump_reports_every_consumer_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each section of the report reads private names; one an upgrade removed would
    read "unavailable"."""

    async def scenario() -> str:
        async with worker(monkeypatch, nothing) as w, coordinated(w):
            await w.assign({STREAM_0: 3})
            stderr = io.StringIO()
            await CredenceWorker(w.app, stderr=stderr, loop=asyncio.get_running_loop())._cry()
            return stderr.getvalue()

    dump = asyncio.run(scenario())
    report = dump[dump.index("CONSUMER\n"):]
    assert "unavailable" not in report
    assert "   active: signals/0" in report
    assert "   signals/0: position=3 highwater=None paused=False awaiting_reset=False" in report


def test_a_partitions_database_is_the_one_faust_reads_the_table_from(tmp_path: Path) -> None:
    """``access.partition_db`` (the customer cache and table writer): raw keys and write
    batches there are what Faust's table gives back, and the changelog offset the
    writer stores is the one Faust's recovery resumes from."""
    app = faust.App("contract", broker="memory://", store="rocksdb://", datadir=str(tmp_path), autodiscover=False)
    table = app.Table("state", partitions=4, key_type=bytes, value_type=bytes)
    batch = WriteBatch(raw_mode=True)
    batch.put(b"c1", b"state")
    access.partition_db(table, 3).write(batch)
    changelog = TP(table.changelog_topic.get_topic_name(), 3)
    table.data.set_persisted_offset(changelog, 41)
    assert table[b"c1"] == b"state"
    assert table.data.persisted_offset(changelog) == 41


def test_the_aiokafka_producer_is_the_one_faust_sends_with() -> None:
    async def scenario() -> None:
        app = faust.App("contract", broker=f"{transport.SCHEME}://127.0.0.1:1", autodiscover=False)
        with pytest.raises(NotReady):
            access.kafka_producer(app)  # before the producer service starts
        app.producer._producer = created = app.producer._new_producer()  # as its on_start does
        try:
            assert access.kafka_producer(app) is created
            assert isinstance(created, aiokafka.AIOKafkaProducer)
            assert created._txn_manager is not None  # idempotence on (transport.Producer)
        finally:
            await created.stop()

    transport.register(idempotence=True)
    try:
        asyncio.run(scenario())
    finally:
        transport.register(idempotence=False)


def test_the_worker_consumer_waits_at_most_the_fetch_wait_set() -> None:
    async def scenario() -> int:
        app = faust.App("contract", broker=f"{transport.SCHEME}://127.0.0.1:1", autodiscover=False)
        thread = app.consumer._thread  # a ConsumerThread, made with the consumer
        created = thread._create_worker_consumer(app.transport)
        try:
            return int(created._fetch_max_wait_ms)
        finally:
            await created.stop()
            thread.thread_loop.close()

    transport.register(idempotence=False, fetch_max_wait_ms=7)
    try:
        assert asyncio.run(scenario()) == 7  # read by aiokafka's start() to build its fetcher
    finally:
        transport.register(idempotence=False)


ALL_VIEWS_ON = {"debug": True, "web_router_enabled": True, "web_tables_enabled": True, "web_graph_enabled": True,
                "web_metrics_enabled": True}


@pytest.mark.parametrize("settings", [{}, {**ALL_VIEWS_ON, "web_stats_enabled": False},
                                      {**ALL_VIEWS_ON, "web_stats_enabled": True}])
def test_the_web_driver_enables_none_of_faust_views(settings: dict[str, bool]) -> None:
    web_driver.register()
    app = faust.App("contract", broker="memory://", web=f"{web_driver.SCHEME}://", autodiscover=False, **settings)
    assert isinstance(app.web, web_driver.Web)
    assert app.web.blueprints._enabled == []
