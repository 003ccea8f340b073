"""Reads and calls of Faust and aiokafka internals that have no public equivalent, for
the rest of ``streams/``.

Private names it depends on, and why:

* faust-streaming 0.15.3 ``Consumer._committed_offset``: the group's committed offset
  per assigned partition as the consumer knows it (the lag gauge, ``streams.ops.lag``;
  ``Consumer.committed`` would ask the broker every time).
* faust-streaming 0.15.3 ``Consumer._thread`` (``_ensure_consumer``, ``thread_loop``)
  and aiokafka 0.14.0 ``AIOKafkaConsumer._coordinator.request_rejoin``: a rejoin of the
  consumer group asked for from outside a rebalance (``streams.ops.restore_watchdog``).
* faust-streaming 0.15.3 ``RocksDB._db_for_partition``: one partition's RocksDB
  instance, for reads and write batches outside ``Table.__getitem__``/``__setitem__``
  (``streams.kafka.table_writer``, ``streams.processing.customer_cache``, ``streams.processing.signal_processor``).
* aiokafka 0.14.0 ``AIOKafkaConsumer._client.force_metadata_update``: a consumer
  learns the partitions of topics it is not subscribed to, or subscribed topics a
  rebalance found missing (``.consumer_thread``, ``bench/throughput.py``).
* faust-streaming 0.15.3 ``faust.transport.drivers.aiokafka.Producer._ensure_producer``:
  the aiokafka producer under Faust's, for record batches and partition metadata
  (``streams.kafka.table_writer``, ``streams.ops.warm_up``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT


def committed_offsets(app: AppT) -> Mapping[TP, int | None]:
    """The committed offsets Faust's consumer keeps (None: nothing committed yet)."""
    offsets: Mapping[TP, int | None] = cast(Any, app.consumer)._committed_offset
    return offsets


def request_rejoin(app: AppT) -> None:
    """Ask the consumer thread to rejoin the group (a rebalance follows)."""
    thread: Any = cast(Any, app.consumer)._thread
    client = thread._ensure_consumer()
    thread.thread_loop.call_soon_threadsafe(client._coordinator.request_rejoin)


def partition_db(table: Any, partition: int) -> Any:
    """The RocksDB instance of one partition of a table (``Rdict`` in raw mode)."""
    return table.data._db_for_partition(partition)


def kafka_producer(app: AppT) -> aiokafka.AIOKafkaProducer:
    """The started aiokafka producer under the app's Faust producer."""
    producer: aiokafka.AIOKafkaProducer = cast(faust_aiokafka.Producer, app.producer)._ensure_producer()
    return producer


async def refresh_metadata(consumer: aiokafka.AIOKafkaConsumer) -> None:
    """Fetch the cluster metadata now (aiokafka otherwise waits ``metadata_max_age_ms``)."""
    await cast(Any, consumer)._client.force_metadata_update()
