"""The order in which the signal processor applies the records of one fetch."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence

from faust.types import TP

from scoring.catalog import BEHAVIOUR_TOPICS, DIRECTORY_TOPIC
from scoring.engine import TEAM_INPUTS
from streams.faust_ext.transport import Record

#: which topic's record goes first when records of a fetch have the same timestamp:
#: ownership before the events it applies to; any other topic (the risk ticks) last
TOPIC_ORDER = {name: rank for rank, name in enumerate((DIRECTORY_TOPIC, *BEHAVIOUR_TOPICS, *TEAM_INPUTS))}


def in_time_order(
    batch: Mapping[TP, Sequence[Record]], logical_name: Callable[[str], str]
) -> Iterator[tuple[TP, str, Record]]:
    """A fetch's records as ``(partition, logical topic, record)``, merged by record
    timestamp (ties: :data:`TOPIC_ORDER`, then offset), each partition's own order kept.

    This is Kafka Streams' order within a task (its ``PartitionGroup`` takes the record
    with the lowest head timestamp): without it the records of a fetch went partition by
    partition, and a customer's directory record produced before its behaviour events
    could be applied after them, its deltas stamped with no team. Records of different
    partitions never share a customer, so merging the whole fetch changes no
    customer's own order.
    """
    if len(batch) == 1:
        ((tp, records),) = batch.items()
        topic = logical_name(tp.topic)
        for record in records:
            yield tp, topic, record
        return
    last = len(TOPIC_ORDER)
    runs = []
    for tp, records in batch.items():
        topic = logical_name(tp.topic)
        rank = TOPIC_ORDER.get(topic, last)
        # TP (a named tuple) settles ties of timestamp, topic and offset: never the record
        runs.append([(record.timestamp, rank, record.offset, tp, topic, record) for record in records])
    for _, _, _, tp, topic, record in heapq.merge(*runs):
        yield tp, topic, record
