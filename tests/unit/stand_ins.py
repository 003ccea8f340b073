"""What the processors use of a worker, without a broker: a producer that records what
is sent, and an in-memory partitioned table (the store under
:class:`~streams.processing.customer_cache.CustomerCache`)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from scoring.catalog import DEAD_LETTER
from streams.kafka.publish import Publisher
from streams.kafka.topics import OUTPUTS, catalog

#: the deployment's topic prefix in these tests
PREFIX = "t."


@dataclass
class Sent:
    topic: str  # the cluster name
    key: bytes | None
    value: bytes | None
    partition: int | None
    ack: asyncio.Future[None]


class StubProducer:
    """Faust's producer as the publisher uses it: every send is recorded; its
    acknowledgement is resolved at once, or, with ``acknowledge=False``, when
    :meth:`acknowledge_all` or :meth:`fail_all` is called."""

    def __init__(self, acknowledge: bool = True) -> None:
        self.acknowledge = acknowledge
        self.sent: list[Sent] = []

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None,
        partition: int | None, timestamp: float | None, headers: Any,
    ) -> asyncio.Future[None]:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.acknowledge:
            ack.set_result(None)
        self.sent.append(Sent(topic, key, value, partition, ack))
        return ack

    def acknowledge_all(self) -> None:
        for sent in self.sent:
            if not sent.ack.done():
                sent.ack.set_result(None)

    def fail_all(self, exc: Exception) -> None:
        for sent in self.sent:
            if not sent.ack.done():
                sent.ack.set_exception(exc)

    def all_acknowledged(self) -> bool:
        return all(sent.ack.done() for sent in self.sent)

    def values(self, topic: str) -> list[Any]:
        """The JSON values sent to ``topic`` (a SPEC name), in order."""
        return [orjson.loads(s.value or b"null") for s in self.sent if s.topic == PREFIX + catalog[topic].name]

    def dead_letters(self) -> list[tuple[str, str, int, int]]:
        """``(topic, reason, partition, offset)`` of every dead letter sent."""
        return [(d["topic"], d["reason"], d["partition"], d["offset"]) for d in self.values(DEAD_LETTER)]


def publisher(producer: StubProducer) -> Publisher:
    return Publisher(lambda: producer, {name: PREFIX + catalog[name].name for name in OUTPUTS})


class MemoryTable:
    """A partitioned table of bytes in memory; ``journal`` gets ``("write", keys)`` per write."""

    def __init__(self, journal: list[tuple[Any, ...]]) -> None:
        self.partitions: defaultdict[int, dict[bytes, bytes]] = defaultdict(dict)
        self.journal = journal

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.partitions[partition].get(key)

    async def write(self, writes: Iterable[tuple[int, bytes, bytes | None]]) -> None:
        keys = []
        for partition, key, value in writes:
            keys.append(key)
            if value is None:
                self.partitions[partition].pop(key, None)
            else:
                self.partitions[partition][key] = value
        self.journal.append(("write", tuple(keys)))
