"""The consumer thread of the ``credence://`` transport (:mod:`.transport`): where
Faust's consumer runs its aiokafka consumer.

* ``fetch_max_wait_ms``: Faust hard-codes 1 500 ms, which puts seconds of latency on
  a lightly loaded partition; Credence waits at most :attr:`ConsumerThread.fetch_max_wait_ms`
  (the setting ``fetch_max_wait_seconds``).
* Seeks without the partitions a rebalance revoked meanwhile (aiokafka raises for them).
* The cluster metadata refreshed after a rebalance until every subscribed topic is in it.
* Changelog end offsets raised to a fetch's high watermark (the embedded broker's
  ListOffsets answer falls short).
* :meth:`ConsumerThread.rewind`: the give-back of records a fetch returned but the
  consumer dropped.

Private names it depends on, and why:

faust-streaming 0.15.3 ``faust.transport.drivers.aiokafka.AIOKafkaConsumerThread``:

* ``_create_worker_consumer``: overridden to set the fetch wait.
* ``_seek_wait``, ``_highwaters``: overridden (revoked partitions; Tansu's end offsets).
* ``_create_client_consumer``, ``_ensure_consumer``: the thread's aiokafka consumers.

faust-streaming 0.15.3 ``faust.transport.consumer.Consumer``: ``_is_changelog_tp``, which
partitions are changelogs (``_highwaters``).

aiokafka 0.14.0 ``AIOKafkaConsumer``:

* ``_fetch_max_wait_ms``: read by ``start()`` to build the fetcher (no setting in Faust).
* ``_subscription`` (``.subscription.topics``, ``.subscription.assignment`` with
  ``state_value(tp).has_valid_position``/``.position``): subscribed topics for the
  metadata refresh, and the fetch positions ``rewind`` compares.
* ``_client.cluster.partitions_for_topic``, and ``_client.force_metadata_update``
  through :func:`.access.refresh_metadata`: the metadata refresh after a rebalance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from time import monotonic
from typing import Any, ClassVar, cast

import aiokafka
from aiokafka.structs import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.faust_ext.access import refresh_metadata

#: how often a consumer whose subscribed topics are missing from its metadata asks again
METADATA_RETRY_S = 1.0
#: how long recovery waits for a fetch's high watermarks (see ConsumerThread._highwaters)
FETCHED_HIGHWATER_TIMEOUT_S = 5.0


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    #: set from Settings.fetch_max_wait_seconds when the app is built
    fetch_max_wait_ms: ClassVar[int] = 20
    _metadata_refresh: asyncio.Task[None] | None = None

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms  # read by start() to build the fetcher
        return consumer

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        if self._metadata_refresh is None or self._metadata_refresh.done():
            self._metadata_refresh = asyncio.create_task(self._refresh_until_topics_known())
        await super().on_partitions_assigned(assigned, generation_id)

    async def on_thread_stop(self) -> None:
        if self._metadata_refresh is not None:
            self._metadata_refresh.cancel()
        await super().on_thread_stop()

    def missing_topics(self) -> set[str]:
        """Subscribed topics the consumer's cluster metadata holds no partitions for."""
        consumer = self._ensure_consumer()
        subscription = consumer._subscription.subscription
        topics: set[str] = subscription.topics if subscription is not None else set()
        return {t for t in topics if not consumer._client.cluster.partitions_for_topic(t)}

    async def _refresh_until_topics_known(self) -> None:
        """In the consumer thread, after a rebalance: refresh the cluster metadata every
        ``METADATA_RETRY_S`` while a subscribed topic is missing from it.

        A group leader whose metadata lacks the topics (fetched while the broker was
        stopping or starting) assigns every member nothing ("Ignoring missing topic"),
        rebalance after rebalance, and aiokafka fetches metadata again only after
        ``metadata_max_age_ms`` (5 minutes): the whole group sat idle that long after a
        broker restart. Once the refreshed metadata has the topics, aiokafka's leader
        sees them change and rejoins, and the next assignment is complete.
        """
        consumer = self._ensure_consumer()
        while missing := self.missing_topics():
            self.log.warning("Topics missing from the cluster metadata, refreshing it: %s", sorted(missing))
            await refresh_metadata(consumer)
            if self.missing_topics():
                await asyncio.sleep(METADATA_RETRY_S)

    async def _seek_wait(self, consumer: aiokafka.AIOKafkaConsumer, partitions: Mapping[TP, int]) -> None:
        """Faust's seek for a restore, without the partitions a rebalance has revoked since
        the restore began (aiokafka raises IllegalStateError for them): the rebalance
        starts the restore again."""
        assigned = consumer.assignment()
        await super()._seek_wait(consumer, {tp: offset for tp, offset in partitions.items() if tp in assigned})

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        """End offsets from ListOffsets, raised to the high watermark of a fetch response.

        The embedded broker (Tansu 0.6) answers ListOffsets with the end of the first
        record of a partition's last record batch, not of the batch. The changelogs are
        written in batches (``streams/kafka/table_writer.py``), so Faust's recovery saw them
        shorter than the offsets a worker had stored for them, and a worker restarted
        against the same broker stopped at a ConsistencyError (a worker without local
        state would have stopped its restore early). A fetch from the last batch's base
        offset gets the true end; on Apache Kafka both agree. Only for changelogs: the
        lag gauge asks every few seconds and corrects the input partitions itself.
        """
        listed = await super()._highwaters(partitions)
        is_changelog = self.consumer._is_changelog_tp
        written = {tp: end for tp, end in listed.items() if end and is_changelog(tp)}
        if not written:
            return listed
        fetched = await self._fetched_highwaters(written)
        return {tp: max(end, fetched.get(tp, end)) for tp, end in listed.items()}

    async def _fetched_highwaters(self, listed: Mapping[TP, int]) -> dict[TP, int]:
        """The high watermarks of a fetch from the record before each of ``listed``'s end
        offsets, by a short-lived consumer outside the group."""
        consumer = self._create_client_consumer(cast(faust_aiokafka.Transport, self.transport))
        await consumer.start()
        try:
            tps = [TopicPartition(tp.topic, tp.partition) for tp in listed]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, listed[TP(tp.topic, tp.partition)] - 1)
            deadline = monotonic() + FETCHED_HIGHWATER_TIMEOUT_S  # then ListOffsets' answer stands
            while any(consumer.highwater(tp) is None for tp in tps) and monotonic() < deadline:
                await consumer.getmany(timeout_ms=100, max_records=1)
            return {TP(tp.topic, tp.partition): consumer.highwater(tp) for tp in tps
                    if consumer.highwater(tp) is not None}
        finally:
            await consumer.stop()

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: dict[TP, int] = await self.call_thread(self._seek_to_committed)
        return committed

    async def _seek_to_committed(self) -> dict[TP, int]:
        """aiokafka's ``seek_to_committed``, without the IllegalStateError it raises when a
        rebalance revokes a partition while its committed offset is being fetched (the
        next owner seeks it), nor the AssertionError when nothing is assigned."""
        consumer = self._ensure_consumer()
        committed: dict[TP, int] = {}
        for tp in list(consumer.assignment()):
            offset = await consumer.committed(tp)
            if tp not in consumer.assignment():
                continue
            committed[tp] = offset
            if offset and offset > 0:
                consumer.seek(tp, offset)
        return committed

    async def rewind(self, fetched: Mapping[TP, tuple[int, int]]) -> list[TP]:
        """In the consumer thread: seek each partition back to the first of the records
        ``first..last`` a fetch returned, if its position is still past them (nothing
        has seeked it since: a restore's seek goes to a record not yet applied, at or
        before ``first``, and wins). Returns the partitions rewound."""
        consumer = self._ensure_consumer()
        assignment = consumer._subscription.subscription.assignment
        rewound = []
        for tp, (first, last) in fetched.items():
            if assignment is None or tp not in assignment.tps:
                continue  # no longer ours: its next owner's restore seeks it
            state = assignment.state_value(tp)
            if state.has_valid_position and state.position > last:
                consumer.seek(tp, first)
                rewound.append(tp)
        return rewound
