"""The order in which the signal processor applies a fetch (``streams.processing.fetch_order``)."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.processing.fetch_order import in_time_order

PREFIX = "p."
DIRECTORY, LOGIN, QUOTE, TICKS = (TP(PREFIX + t, 0) for t in (
    "customer-directory", "role-login", "document-open", "credence-risk-ticks"))  # fmt: skip


def rec(tp: TP, offset: int, timestamp: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, timestamp, 0, None, b"{}", None, 0, 2, ())


def order(batch: dict[TP, list[ConsumerRecord[bytes, bytes]]]) -> list[tuple[str, int]]:
    return [(topic, record.offset) for _, topic, record in in_time_order(batch, lambda t: t[len(PREFIX):])]


@pytest.mark.parametrize(
    ["batch", "expected"],
    [
        pytest.param({}, [], id="empty fetch"),
        pytest.param({LOGIN: [rec(LOGIN, 5, 30), rec(LOGIN, 6, 10)]}, [("role-login", 5), ("role-login", 6)],
                     id="one partition: its own order, whatever the timestamps"),
        pytest.param(
            # the events' partition handed over first, the directory record produced first
            {LOGIN: [rec(LOGIN, 0, 11), rec(LOGIN, 1, 12)], DIRECTORY: [rec(DIRECTORY, 7, 10)]},
            [("customer-directory", 7), ("role-login", 0), ("role-login", 1)],
            id="the directory record produced first goes first",
        ),
        pytest.param(
            {TICKS: [rec(TICKS, 0, 10)], QUOTE: [rec(QUOTE, 3, 10)], LOGIN: [rec(LOGIN, 9, 10)],
             DIRECTORY: [rec(DIRECTORY, 4, 10)]},
            [("customer-directory", 4), ("document-open", 3), ("role-login", 9), ("credence-risk-ticks", 0)],
            id="same timestamp: directory, behaviour topics in catalogue order, ticks last",
        ),
        pytest.param(
            {QUOTE: [rec(QUOTE, 0, 20)], LOGIN: [rec(LOGIN, 0, 30), rec(LOGIN, 1, 5)]},
            [("document-open", 0), ("role-login", 0), ("role-login", 1)],
            id="an earlier timestamp behind a later one waits for its partition's head",
        ),
        pytest.param(
            {LOGIN: [rec(LOGIN, 0, 20), rec(LOGIN, 1, 40)], QUOTE: [rec(QUOTE, 0, 10), rec(QUOTE, 1, 30)]},
            [("document-open", 0), ("role-login", 0), ("document-open", 1), ("role-login", 1)],
            id="interleaved by timestamp",
        ),
    ],
)
def test_in_time_order(batch, expected):
    assert order(batch) == expected


def test_ties_within_one_topic_go_by_partition():
    other = TP(PREFIX + "role-login", 1)
    batch = {other: [rec(other, 2, 10)], LOGIN: [rec(LOGIN, 2, 10)]}
    assert [tp.partition for tp, _, _ in in_time_order(batch, lambda t: t[len(PREFIX):])] == [0, 1]
