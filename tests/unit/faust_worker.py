"""A Faust worker of the ``credence://`` transport built from the real faust-streaming,
mode and aiokafka classes, without a broker: aiokafka's consumer is not started, its
fetcher is built by hand, and only the network ends are replaced: the records of a fetch
response are put where aiokafka's fetch routine puts them (:class:`Response`), committed
offsets come from a dict, and the consumer thread runs its calls inline (``call_thread``:
mode's queue to a thread that is not started here). Everything between (Faust's fetcher
service and consumer, aiokafka's fetcher and subscription state, Faust's recovery) is the
real code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiokafka
import faust
import pytest
from aiokafka.consumer.fetcher import Fetcher, FetchResult
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.faust_ext import transport
from streams.faust_ext.consumer_thread import ConsumerThread

STREAM_0, STREAM_1 = TP("signals", 0), TP("signals", 1)
DEADLINE_S = 5.0


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, b"{}", None, 0, 2, ())


class Response:
    """The records of one partition in a response to a fetch from ``fetch_offset``, as
    aiokafka's ``PartitionRecords`` yields them (its ``next_fetch_offset`` follows)."""

    def __init__(self, fetch_offset: int, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        self._records: Iterator[ConsumerRecord[bytes, bytes]] = iter(records)
        self.next_fetch_offset = fetch_offset

    def __iter__(self) -> Response:
        return self

    def __next__(self) -> ConsumerRecord[bytes, bytes]:
        message = next(self._records)
        self.next_fetch_offset = message.offset + 1
        return message


@dataclass
class Worker:
    app: faust.App
    consumer: transport.Consumer
    thread: ConsumerThread
    client: aiokafka.AIOKafkaConsumer
    #: what the group has committed, for ``AIOKafkaConsumer.committed``
    committed: dict[TP, int | None] = field(default_factory=dict)
    #: (partition, offset) of every message Faust's callback got
    delivered: list[tuple[TP, int]] = field(default_factory=list)

    async def assign(self, positions: dict[TP, int]) -> None:
        """The partitions at these positions are assigned, and active (as Faust's
        recovery leaves stream partitions), once aiokafka's fetch routine has taken
        the assignment (it drops buffered responses when it does)."""
        self.client._subscription.assign_from_user(set(positions))
        for tp, offset in positions.items():
            self.client.seek(tp, offset)
        self.consumer.resume_partitions(set(positions))
        await until(lambda: self.client._fetcher._wait_consume_future is not None,
                    "aiokafka's fetcher to take the assignment")

    def respond(self, *records: ConsumerRecord[bytes, bytes]) -> None:
        """A response to a fetch from the current positions arrives with ``records``
        (offset order per partition)."""
        assignment = self.client._subscription.subscription.assignment
        by_tp: dict[TP, list[ConsumerRecord[bytes, bytes]]] = {}
        for r in records:
            by_tp.setdefault(TP(r.topic, r.partition), []).append(r)
        for tp, fetched in by_tp.items():
            self.client._fetcher._records[tp] = FetchResult(
                tp, assignment=assignment, partition_records=Response(self.position(tp), fetched), backoff=0)
        self.client._fetcher._notify(self.client._fetcher._wait_consume_future)
        for waiter in list(self.client._fetcher._fetch_waiters):
            if not waiter.done():
                waiter.set_result(None)

    async def fetch(self, *records: ConsumerRecord[bytes, bytes]) -> dict[TP, list[ConsumerRecord[bytes, bytes]]]:
        """``records`` as aiokafka's fetcher returns them to Faust (positions move past
        them), without Faust's fetch loop."""
        self.respond(*records)
        fetched: dict[TP, list[ConsumerRecord[bytes, bytes]]] = await self.client._fetcher.fetched_records((), timeout=0)
        return fetched

    async def subscribe(self, *topics: str) -> None:
        """Faust's agents' subscriptions to ``topics``, with acknowledgements."""
        for topic in topics:
            self.app.topics.add(self.app.topic(topic))
        await self.app.topics._update_indices()  # as Faust does when it subscribes

    def position(self, tp: TP) -> int:
        return self.client._subscription.subscription.assignment.state_value(tp).position  # type: ignore[no-any-return]


@asynccontextmanager
async def worker(monkeypatch: pytest.MonkeyPatch, on_message: Callable[[Worker, Any], Any]) -> AsyncIterator[Worker]:
    transport.register(idempotence=False)
    app = faust.App("contract", broker=f"{transport.SCHEME}://127.0.0.1:1", autodiscover=False)
    consumer = app.consumer
    assert isinstance(consumer, transport.Consumer)
    thread = consumer._thread
    assert isinstance(thread, ConsumerThread)
    client = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="contract")
    client._fetcher = Fetcher(client._client, client._subscription)
    thread._consumer = client
    w = Worker(app, consumer, thread, client)

    async def call_inline(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await fun(*args, **kwargs)

    async def committed(tp: TP) -> int | None:
        return w.committed.get(tp)

    async def callback(message: Any) -> None:
        w.delivered.append((message.tp, message.offset))
        await on_message(w, message)

    monkeypatch.setattr(thread, "call_thread", call_inline)
    monkeypatch.setattr(client, "committed", committed)
    monkeypatch.setattr(consumer, "callback", callback)
    try:
        yield w
    finally:
        await client._fetcher.close()
        await client._client.close()
        client._closed = True
        thread.thread_loop.close()  # made by mode's ServiceThread, never run here


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@asynccontextmanager
async def fetching(w: Worker) -> AsyncIterator[None]:
    """Faust's fetcher service running the consumer's fetch loop (``_drain_messages``)."""
    await w.app._fetcher.start()
    try:
        yield
    finally:
        await w.app._fetcher.stop()


async def nothing(w: Worker, message: Any) -> None:
    pass
