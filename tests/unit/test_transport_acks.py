"""Bulk acknowledgement and gap bookkeeping of the batch fetch path (``streams.faust_ext.transport``),
and what its fetch loop does when a rebalance cancels a waiting delivery.

Faust commits a partition up to the first offset that is neither acknowledged nor a
known gap; these check that the bulk versions leave exactly what Faust's per-message
``ack`` and fetch loop would (end to end, ``tests/integration`` checks commits on brokers).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.faust_ext.transport import Consumer, ConsumerThread

PARTITION = TP("t", 0)


def record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, None, b"{}", None, 0, 2, ())


class FakeConsumer(SimpleNamespace):
    """The attributes of Faust's consumer that the two methods use."""

    def __init__(self, committed: int | None = None) -> None:
        super().__init__(
            app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True)),
            _committed_offset=defaultdict(lambda: committed),
            _acked=defaultdict(list),
            _acked_index=defaultdict(set),
            _n_acked=0,
            _waiting_for_ack=None,
            gaps=[],
        )

    async def _add_gap(self, tp: Any, first: int, last: int) -> None:
        self.gaps.append((first, last))


def ack(consumer: FakeConsumer, first: int, last: int) -> None:
    Consumer.ack_offsets(consumer, PARTITION, first, last)  # type: ignore[arg-type]


def test_acknowledges_every_offset_of_the_batch():
    consumer = FakeConsumer()
    ack(consumer, 10, 14)
    assert consumer._acked[PARTITION] == [10, 11, 12, 13, 14]
    assert consumer._n_acked == 5


def test_skips_offsets_below_the_committed_one():
    consumer = FakeConsumer(committed=12)
    ack(consumer, 10, 14)
    assert consumer._acked[PARTITION] == [12, 13, 14]


def test_a_batch_delivered_again_after_a_seek_back_is_not_counted_twice():
    consumer = FakeConsumer()
    ack(consumer, 10, 14)
    ack(consumer, 12, 16)
    assert sorted(consumer._acked[PARTITION]) == list(range(10, 17))
    assert consumer._n_acked == 7


def gaps(read: int | None, offsets: list[int]) -> list[tuple[int, int]]:
    consumer = FakeConsumer()
    asyncio.run(Consumer._add_gaps(consumer, PARTITION, read, [record(o) for o in offsets]))  # type: ignore[arg-type]
    return consumer.gaps


def test_contiguous_records_after_the_read_offset_leave_no_gap():
    assert gaps(9, [10, 11, 12]) == []


def test_gaps_before_and_inside_a_fetch_are_registered_like_faust_does_per_record():
    # Faust's loop: a record more than one past the last read one opens [read + 1, offset]
    assert gaps(5, [8, 9, 12, 13, 20]) == [(6, 8), (10, 12), (14, 20)]


def test_nothing_read_yet_opens_no_gap_before_the_first_record():
    assert gaps(None, [3, 4]) == [] and gaps(0, [3]) == []  # Faust skips read offset 0 too


class FetchLoopConsumer(FakeConsumer):
    """What the fetch loop reads, for one non-batch topic (``changelog``: a table's
    changelog, restored through Faust's callback); ``callback`` waits in a queue put that
    a rebalance cancels, as ``flow_control.clear()`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_handlers: dict[str, Any] = {}
        self.app.consumer_generation_id = 1
        self.app.monitor = SimpleNamespace(track_tp_end_offset=lambda tp, offset: None)
        self._flow_stops = 0
        self._read_offset = defaultdict(lambda: None)
        self._buffered_partitions: set[TP] = set()
        self._commit_every = None
        self.delivered: list[int] = []
        self.putter: asyncio.Future[None] | None = None
        self.seeks: list[tuple[TP, int]] = []
        self._thread = SimpleNamespace(call_thread=self._call_thread, rewind=self._rewind)

    async def _call_thread(self, fun: Any, *args: Any) -> Any:
        return await fun(*args)

    async def _rewind(self, fetched: dict[TP, tuple[int, int]]) -> list[TP]:
        """As if nothing had seeked them since: every one is rewound."""
        self.seeks += [(tp, first) for tp, (first, _) in fetched.items()]
        return list(fetched)

    async def _give_back(self, undelivered: Any) -> None:
        await Consumer._give_back(self, undelivered)  # type: ignore[arg-type]

    async def _hand_over(self, tp: TP, record: Any) -> bool:
        return await Consumer._hand_over(self, tp, record)  # type: ignore[arg-type]

    def highwater(self, tp: TP) -> int:
        return 100

    async def _add_gaps(self, tp: TP, read: int | None, fetched: list[Any]) -> None:
        await Consumer._add_gaps(self, tp, read, fetched)  # type: ignore[arg-type]

    def _to_message(self, tp: TP, record: ConsumerRecord[bytes, bytes]) -> int:
        return record.offset

    async def callback(self, offset: int) -> None:
        if offset == 12:  # the agent's queue is full
            self.putter = asyncio.get_running_loop().create_future()
            await self.putter
        self.delivered.append(offset)


def test_a_put_cancelled_by_a_rebalance_ends_the_fetch_not_the_fetch_loop():
    async def scenario() -> FetchLoopConsumer:
        consumer = FetchLoopConsumer()
        fetch = {PARTITION: [record(o) for o in (10, 11, 12, 13)]}
        delivering = asyncio.ensure_future(Consumer._deliver(consumer, fetch, None))  # type: ignore[arg-type]
        while consumer.putter is None and not delivering.done():
            await asyncio.sleep(0)
        consumer._flow_stops += 1  # the rebalance: the flow stops, the queues are cleared
        consumer.putter.cancel()
        await delivering  # returns: the loop goes on to the next fetch
        return consumer

    consumer = asyncio.run(scenario())
    assert consumer.delivered == [10, 11]
    assert consumer.seeks == [(PARTITION, 12)]  # a changelog is fetched again from 12
    assert consumer._read_offset[PARTITION] == 12  # and 12 is not skipped as already read


def deliver(consumer: FetchLoopConsumer, fetch: dict[TP, list[Any]], active: set[TP] | None) -> None:
    asyncio.run(Consumer._deliver(consumer, fetch, active))  # type: ignore[arg-type]


def test_a_changelog_paused_since_the_fetch_began_is_given_back_not_dropped():
    consumer = FetchLoopConsumer()
    deliver(consumer, {PARTITION: [record(o) for o in (3, 4)], TP("t", 1): [record(7)]}, {TP("t", 1)})
    assert consumer.delivered == [7]
    assert consumer.seeks == [(PARTITION, 3)]


def test_a_fetch_gone_stale_gives_back_every_partition_it_did_not_deliver():
    consumer = FetchLoopConsumer()
    consumer.app.consumer_generation_id = 2  # a rebalance after _deliver began is seen at once
    original = consumer.callback

    async def rebalance_after_first(offset: int) -> None:
        await original(offset)
        consumer.app.consumer_generation_id = 3

    consumer.callback = rebalance_after_first  # type: ignore[method-assign]
    deliver(consumer, {PARTITION: [record(o) for o in (3, 4)], TP("t", 1): [record(7)]}, None)
    assert consumer.delivered == [3]
    assert consumer.seeks == [(PARTITION, 4), (TP("t", 1), 7)]


def test_stream_partitions_are_given_back_too():
    """Usually seeked to their committed offsets after the rebalance that made the loop
    drop their records, but not always (the chaos test): a later seek wins anyway."""
    consumer = FetchLoopConsumer()
    deliver(consumer, {PARTITION: [record(3)]}, set())
    assert consumer.delivered == [] and consumer.seeks == [(PARTITION, 3)]


def test_records_a_fetch_returns_while_the_flow_is_stopped_are_given_back():
    """The stall: the fetch returns the changelogs a restore has just seeked, the flow
    still stopped; aiokafka's position is then past them."""

    async def scenario() -> FetchLoopConsumer:
        consumer = FetchLoopConsumer()
        stopped = asyncio.Event()
        consumer._stopped = stopped
        consumer.should_stop = False
        consumer.flow_active = False
        consumer.diag = SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None)
        consumer.transport = SimpleNamespace(app=SimpleNamespace(should_stop=False))
        consumer.consumer_stopped_errors = ()

        async def wait_next_records(timeout: float) -> tuple[dict[TP, list[Any]], set[TP]]:
            return {PARTITION: [record(o) for o in (0, 1, 2)]}, set()

        async def perform_seek() -> None:
            stopped.set()  # one round is enough

        consumer._wait_next_records = wait_next_records
        consumer.perform_seek = perform_seek
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        await Consumer._drain_messages(consumer, fetcher)  # type: ignore[arg-type]
        return consumer

    consumer = asyncio.run(scenario())
    assert consumer.delivered == []
    assert consumer.seeks == [(PARTITION, 0)]


def test_cancelling_the_fetch_loop_itself_still_cancels_it():
    async def scenario() -> None:
        consumer = FetchLoopConsumer()
        fetch = {PARTITION: [record(o) for o in (12, 13)]}
        delivering = asyncio.ensure_future(Consumer._deliver(consumer, fetch, None))  # type: ignore[arg-type]
        while consumer.putter is None and not delivering.done():
            await asyncio.sleep(0)
        delivering.cancel()
        with pytest.raises(asyncio.CancelledError):
            await delivering

    asyncio.run(scenario())


class FakeAiokafka(SimpleNamespace):
    """An aiokafka consumer's assignment as ``ConsumerThread.rewind`` reads it."""

    def __init__(self, positions: dict[TP, int | None]) -> None:
        states = {tp: SimpleNamespace(position=pos, has_valid_position=pos is not None)
                  for tp, pos in positions.items()}
        assignment = SimpleNamespace(tps=set(positions), state_value=states.__getitem__)
        super().__init__(_subscription=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment)),
                         seeks=[])

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def rewind(positions: dict[TP, int | None], fetched: dict[TP, tuple[int, int]]) -> tuple[list[TP], list[Any]]:
    client = FakeAiokafka(positions)
    thread = SimpleNamespace(_ensure_consumer=lambda: client)
    rewound = asyncio.run(ConsumerThread.rewind(thread, fetched))  # type: ignore[arg-type]
    return rewound, client.seeks


def test_rewind_undoes_what_the_fetch_consumed():
    assert rewind({PARTITION: 78}, {PARTITION: (0, 77)}) == ([PARTITION], [(PARTITION, 0)])


def test_rewind_leaves_a_partition_seeked_since_the_fetch():
    # a restore seeked it to the last record it applied, at or before the fetch's first
    assert rewind({PARTITION: 5}, {PARTITION: (6, 77)}) == ([], [])


def test_rewind_leaves_partitions_no_longer_assigned_or_without_a_position():
    other = TP("t", 9)
    assert rewind({other: None}, {PARTITION: (0, 7), other: (0, 7)}) == ([], [])
