"""Bulk acknowledgement and gap bookkeeping of the batch fetch path
(``streams.faust_ext.transport``), and what its fetch loop does with records it does
not deliver, on a worker of the real Faust and aiokafka classes (``faust_worker.py``).

Faust commits a partition up to the first offset that is neither acknowledged nor a
known gap; these check that the bulk versions leave exactly what Faust's per-message
``ack`` and fetch loop would (end to end, ``tests/integration`` checks commits on brokers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from faust.types import TP

from tests.unit.faust_worker import Worker, nothing, record, until, worker

T0, T1 = TP("t", 0), TP("t", 1)
Scenario = Callable[[Worker], Awaitable[None]]


def run(monkeypatch: pytest.MonkeyPatch, scenario: Scenario, on_message: Any = nothing) -> None:
    async def main() -> None:
        async with worker(monkeypatch, on_message) as w:
            await w.subscribe(T0.topic)
            await scenario(w)

    asyncio.run(main())


def test_acknowledges_every_offset_of_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(w: Worker) -> None:
        w.consumer.ack_offsets(T0, 10, 14)
        assert w.consumer._acked[T0] == [10, 11, 12, 13, 14]
        assert w.consumer._n_acked == 5

    run(monkeypatch, scenario)


def test_skips_offsets_below_the_committed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(w: Worker) -> None:
        w.consumer._committed_offset[T0] = 12
        w.consumer.ack_offsets(T0, 10, 14)
        assert w.consumer._acked[T0] == [12, 13, 14]

    run(monkeypatch, scenario)


def test_a_batch_delivered_again_after_a_seek_back_is_not_counted_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(w: Worker) -> None:
        w.consumer.ack_offsets(T0, 10, 14)
        w.consumer.ack_offsets(T0, 12, 16)
        assert sorted(w.consumer._acked[T0]) == list(range(10, 17))
        assert w.consumer._n_acked == 7
        assert w.consumer._new_offset(T0) == 17

    run(monkeypatch, scenario)


def test_a_topic_without_acknowledgements_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(w: Worker) -> None:
        w.consumer.ack_offsets(TP("unsubscribed", 0), 10, 14)
        assert w.consumer._n_acked == 0

    run(monkeypatch, scenario)


def gaps(monkeypatch: pytest.MonkeyPatch, read: int | None, offsets: list[int]) -> list[tuple[int, int]]:
    """The offsets Faust's gap tree holds after ``_add_gaps``, as (first, last) ranges."""
    found: list[tuple[int, int]] = []

    async def scenario(w: Worker) -> None:
        await w.consumer._add_gaps(T0, read, [record(T0, o) for o in offsets])
        found.extend(sorted((gap.begin, gap.end - 1) for gap in w.consumer._gap[T0]))

    run(monkeypatch, scenario)
    return found


def test_contiguous_records_after_the_read_offset_leave_no_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gaps(monkeypatch, 9, [10, 11, 12]) == []


def test_gaps_before_and_inside_a_fetch_are_registered_like_faust_does_per_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust's loop: a record more than one past the last read one opens [read + 1, offset]
    assert gaps(monkeypatch, 5, [8, 9, 12, 13, 20]) == [(6, 8), (10, 12), (14, 20)]


def test_nothing_read_yet_opens_no_gap_before_the_first_record(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gaps(monkeypatch, None, [3, 4]) == [] and gaps(monkeypatch, 0, [3]) == []  # Faust skips 0 too


class FullQueue:
    """Faust's callback for a record whose agent queue is full at ``offset``: the put
    waits until a rebalance cancels it (``flow_control.clear()``)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.putter: asyncio.Future[None] | None = None

    async def __call__(self, w: Worker, message: Any) -> None:
        if message.offset == self.offset:
            self.putter = asyncio.get_running_loop().create_future()
            await self.putter


def test_a_put_cancelled_by_a_rebalance_ends_the_fetch_not_the_fetch_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    full = FullQueue(12)

    async def scenario(w: Worker) -> None:
        await w.assign({T0: 10})
        fetch = await w.fetch(*(record(T0, o) for o in (10, 11, 12, 13)))
        delivering = asyncio.ensure_future(w.consumer._deliver(fetch, None))
        await until(lambda: full.putter is not None or delivering.done(), "the put into the full queue")
        w.consumer.stop_flow()  # the rebalance: the flow stops, the queues are cleared
        assert full.putter is not None
        full.putter.cancel()
        await delivering  # returns: the loop goes on to the next fetch
        assert [offset for _, offset in w.delivered] == [10, 11, 12]  # 12 never reached its queue
        assert w.position(T0) == 12  # fetched again from 12
        assert w.consumer._read_offset[T0] == 12  # and 12 is not skipped as already read

    run(monkeypatch, scenario, full)


def test_cancelling_the_fetch_loop_itself_still_cancels_it(monkeypatch: pytest.MonkeyPatch) -> None:
    full = FullQueue(12)

    async def scenario(w: Worker) -> None:
        await w.assign({T0: 12})
        fetch = await w.fetch(record(T0, 12), record(T0, 13))
        delivering = asyncio.ensure_future(w.consumer._deliver(fetch, None))
        await until(lambda: full.putter is not None or delivering.done(), "the put into the full queue")
        delivering.cancel()
        with pytest.raises(asyncio.CancelledError):
            await delivering

    run(monkeypatch, scenario, full)


def test_a_changelog_paused_since_the_fetch_began_is_given_back_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(w: Worker) -> None:
        await w.assign({T0: 3, T1: 7})
        fetch = await w.fetch(record(T0, 3), record(T0, 4), record(T1, 7))
        await w.consumer._deliver(fetch, {T1})
        assert w.delivered == [(T1, 7)]
        assert (w.position(T0), w.position(T1)) == (3, 8)

    run(monkeypatch, scenario)


def test_a_fetch_gone_stale_gives_back_every_partition_it_did_not_deliver(monkeypatch: pytest.MonkeyPatch) -> None:
    async def rebalance_after_first(w: Worker, message: Any) -> None:
        w.app.consumer_generation_id += 1

    async def scenario(w: Worker) -> None:
        await w.assign({T0: 3, T1: 7})
        fetch = await w.fetch(record(T0, 3), record(T0, 4), record(T1, 7))
        await w.consumer._deliver(fetch, None)
        assert w.delivered == [(T0, 3)]
        assert (w.position(T0), w.position(T1)) == (4, 7)
        assert (w.consumer._read_offset[T0], w.consumer._read_offset[T1]) == (4, 7)

    run(monkeypatch, scenario, rebalance_after_first)


def test_stream_partitions_are_given_back_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Usually seeked to their committed offsets after the rebalance that made the loop
    drop their records, but not always (the chaos test): a later seek wins anyway."""

    async def scenario(w: Worker) -> None:
        await w.assign({T0: 3})
        fetch = await w.fetch(record(T0, 3))
        await w.consumer._deliver(fetch, set())
        assert w.delivered == [] and w.position(T0) == 3

    run(monkeypatch, scenario)


def test_rewind_undoes_what_the_fetch_consumed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(w: Worker) -> None:
        await w.assign({T0: 0})
        await w.fetch(*(record(T0, o) for o in range(78)))
        assert await w.thread.rewind({T0: (0, 77)}) == [T0]
        assert w.position(T0) == 0

    run(monkeypatch, scenario)


def test_rewind_leaves_a_partition_seeked_since_the_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(w: Worker) -> None:
        await w.assign({T0: 6})
        await w.fetch(*(record(T0, o) for o in range(6, 78)))
        w.client.seek(T0, 5)  # a restore seeked it to the last record it applied
        assert await w.thread.rewind({T0: (6, 77)}) == []
        assert w.position(T0) == 5

    run(monkeypatch, scenario)


def test_rewind_leaves_partitions_no_longer_assigned_or_without_a_position(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(w: Worker) -> None:
        await w.assign({T0: 8})
        w.client._subscription.assign_from_user({T1})  # T0 revoked; T1 waits for its reset
        assert await w.thread.rewind({T0: (0, 7), T1: (0, 7)}) == []
        assert w.client.assignment() == {T1}

    run(monkeypatch, scenario)
