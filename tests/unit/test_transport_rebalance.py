"""What the consumer thread (``streams.faust_ext.consumer_thread``) does when a rebalance changes the
assignment under it: seeks skip revoked partitions, and missing topics make it refresh
the cluster metadata. Real Faust and aiokafka objects, no broker: aiokafka's consumer
is not started, its fetcher is built by hand, and the one network call (``committed``)
is replaced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiokafka
import faust
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.protocol.metadata import MetadataResponse_v0
from faust.types import TP

from streams.faust_ext import consumer_thread as thread_module
from streams.faust_ext import transport
from streams.faust_ext.consumer_thread import ConsumerThread

A0, A1, B0 = TP("a", 0), TP("a", 1), TP("b", 0)


@asynccontextmanager
async def consumer_thread() -> AsyncIterator[tuple[ConsumerThread, aiokafka.AIOKafkaConsumer]]:
    transport.register(idempotence=False)
    app = faust.App("unit", broker=f"{transport.SCHEME}://127.0.0.1:1", autodiscover=False)
    thread = app.consumer._thread
    assert isinstance(thread, ConsumerThread)
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="unit")
    consumer._fetcher = Fetcher(consumer._client, consumer._subscription)
    thread._consumer = consumer
    try:
        yield thread, consumer
    finally:
        await consumer._fetcher.close()
        await consumer._client.close()
        consumer._closed = True
        thread.thread_loop.close()  # made by mode's ServiceThread, never run here


def assign(consumer: aiokafka.AIOKafkaConsumer, *tps: TP) -> None:
    consumer._subscription.assign_from_user(set(tps))


def positions(consumer: aiokafka.AIOKafkaConsumer) -> dict[TP, int]:
    assignment = consumer._subscription.subscription.assignment
    return {tp: assignment.state_value(tp).position for tp in assignment.tps
            if assignment.state_value(tp).has_valid_position}


def rebalance_during_first_committed(consumer: aiokafka.AIOKafkaConsumer, offsets: dict[TP, int]) -> list[TP]:
    """``committed`` answers ``offsets``; while the first call waits, a rebalance revokes
    the partition it asks about and keeps the others. Returns [that partition]."""
    revoked: list[TP] = []

    async def committed(tp: TP) -> int:
        if not revoked:
            revoked.append(tp)
            assign(consumer, *(offsets.keys() - {tp}))
        return offsets[tp]

    consumer.committed = committed  # type: ignore[method-assign]
    return revoked


def test_seek_to_committed_skips_a_partition_revoked_while_its_offset_was_fetched() -> None:
    async def scenario() -> None:
        async with consumer_thread() as (thread, consumer):
            assign(consumer, A0, A1)
            offsets = {A0: 5, A1: 7}
            revoked = rebalance_during_first_committed(consumer, offsets)
            sought = await thread._seek_to_committed()
            (kept,) = offsets.keys() - set(revoked)
            assert sought == {kept: offsets[kept]}
            assert positions(consumer) == {kept: offsets[kept]}

    asyncio.run(scenario())


def test_seek_to_committed_with_nothing_assigned_seeks_nothing() -> None:
    async def scenario() -> None:
        async with consumer_thread() as (thread, consumer):
            assign(consumer)
            assert await thread._seek_to_committed() == {}

    asyncio.run(scenario())


def test_aiokafkas_seek_to_committed_raises_in_that_race() -> None:
    """The failure the override avoids (if aiokafka fixes it, the override can go)."""
    async def scenario() -> None:
        async with consumer_thread() as (_, consumer):
            assign(consumer, A0, A1)
            rebalance_during_first_committed(consumer, {A0: 5, A1: 7})
            try:
                await consumer.seek_to_committed()
            except aiokafka.errors.IllegalStateError:
                return
            raise AssertionError("aiokafka no longer raises: drop ConsumerThread._seek_to_committed")

    asyncio.run(scenario())


def test_a_restore_seek_skips_partitions_no_longer_assigned() -> None:
    async def scenario() -> None:
        async with consumer_thread() as (thread, consumer):
            assign(consumer, A1)
            await thread._seek_wait(consumer, {A0: 3, A1: 4})
            assert positions(consumer) == {A1: 4}

    asyncio.run(scenario())


def metadata(*topics: str) -> Any:
    return MetadataResponse_v0(
        brokers=[(1, "127.0.0.1", 1)],
        topics=[(0, topic, [(0, 0, 1, [1], [1])]) for topic in topics],
    )


def test_missing_topics_are_refreshed_until_the_metadata_has_them(monkeypatch: Any) -> None:
    monkeypatch.setattr(thread_module, "METADATA_RETRY_S", 0.01)

    async def scenario() -> None:
        async with consumer_thread() as (thread, consumer):
            consumer._subscription.subscribe(topics={"a", "b"})
            cluster = consumer._client.cluster
            cluster.update_metadata(metadata("a"))
            refreshes = 0

            async def force_metadata_update() -> bool:
                nonlocal refreshes
                refreshes += 1
                if refreshes == 3:  # the broker knows its topics again
                    cluster.update_metadata(metadata("a", "b"))
                return True

            consumer._client.force_metadata_update = force_metadata_update  # type: ignore[method-assign]
            assert thread.missing_topics() == {"b"}
            await asyncio.wait_for(thread._refresh_until_topics_known(), 5)
            assert refreshes == 3
            assert thread.missing_topics() == set()

    asyncio.run(scenario())
