"""What the worker does after each rebalance, before it processes a record.

Faust sends ``on_rebalance_complete`` once the tables are recovered, while the flow is
still stopped; whatever is slow and one-off is done there rather than in the first
batches, where it would be a latency spike for every delta waiting behind it (measured
with ``bench/`` on Kafka 4.1: 100-300 ms in the first second after start-up).

* **Output partitions**: the producer learns each output and changelog topic's
  partitions (a metadata round trip each, longer while a fresh topic elects leaders);
  otherwise the first send to each topic waits for it inside the batch loop.
* **Long-lived objects**: a full garbage collection (CPython's oldest generation)
  traverses every container object of the process, and most of a worker's are the
  modules, services, tables and buffers built at start-up, which never become garbage
  (a full collection took 40-90 ms). The worker collects once and freezes what is left
  (:func:`gc.freeze`): later full collections look only at objects made since, the
  customer states and batches. Frozen objects are still freed by reference counting;
  only a reference cycle among them that becomes garbage later is never collected, a
  bounded one-off per rebalance.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import Any

from faust.types import AppT

from streams.faust_ext.access import kafka_producer


def register(app: AppT, output_topics: Iterable[str]) -> None:
    """Warm up after each rebalance; ``output_topics``: the cluster names of the outputs."""
    outputs = list(output_topics)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # mode's signal hints are narrower
    async def warm_up(sender: Any, **kwargs: Any) -> None:
        await warm_up_after_rebalance(app, outputs)


async def warm_up_after_rebalance(app: AppT, output_topics: list[str]) -> None:
    producer = kafka_producer(app)
    topics = output_topics + [table.changelog_topic.get_topic_name() for table in app.tables.values()]
    for topic in topics:
        await producer.partitions_for(topic)
    gc.collect()
    gc.freeze()
