"""Bulk acknowledgement and gap bookkeeping of the batch fetch path (``streams.transport``).

Faust commits a partition up to the first offset that is neither acknowledged nor a
known gap; these check that the bulk versions leave exactly what Faust's per-message
``ack`` and fetch loop would (end to end, ``tests/integration`` checks commits on brokers).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.transport import Consumer

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
