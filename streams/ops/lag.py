"""Consumer lag per assigned input partition: the gauge ``credence_consumer_lag_records``.

:func:`register` puts on the app (``credence worker`` does) a timer that, every :data:`INTERVAL_SECONDS`, sets one sample per partition this worker owns
of every input topic (labels: the logical topic name, without the
deployment's prefix, and the partition):

    lag = end offset (high watermark) - the group's committed offset

* **End offset**: the larger of the high watermark of the last fetch response
  (``Consumer.highwater``, no request) and the partition leader's answer to ListOffsets
  (``Consumer.highwaters``, one batched request). Both can only be behind the true end:
  the fetched one goes stale while Faust pauses a partition (recovery, full buffer),
  and the embedded broker (Tansu 0.6) answers ListOffsets with the end of the first
  record of the last batch rather than of the batch.
* **Committed offset**: what this worker committed, or found committed when it was
  assigned the partition (Faust's consumer keeps it; commits are the next offset to
  read, so a caught-up partition shows 0). With nothing committed yet the consumer
  starts from the earliest offset (``consumer_auto_offset_reset``), so the lag is
  end - log start. The fetch *position* is not used: it runs ahead of processing by
  whatever is buffered in the stream, and would show 0 for records not yet processed.
* During a rebalance (and the table recovery that follows) nothing is updated: Faust
  forgets every committed offset when partitions are revoked and learns them again
  once recovery has finished. A refresh runs as soon as the rebalance has ended
  (a Faust sensor hook), so the lag of partitions taken over from a dead worker shows
  at once, and series of partitions this worker no longer owns are removed.

Lag is a *committed* lag, as ``kafka-consumer-groups`` reports it: records processed
but not yet committed (Faust commits every ``broker_commit_interval``, 1 s) count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from faust import Sensor
from faust.types import TP, AppT

from streams.faust_ext import access, transport
from streams.ops import metrics

#: how often the gauge is refreshed (seconds)
INTERVAL_SECONDS = 5.0
#: a refresh that takes longer than this is given up (the next one tries again)
REFRESH_TIMEOUT_SECONDS = 4.0

log = logging.getLogger(__name__)


def source_topics(app: AppT) -> set[str]:
    """Cluster names of every input topic: those delivered in batches and every agent's,
    but not the tables' changelogs (delivered in batches to be restored, never consumed
    by the group: their committed offsets stay unset)."""
    topics = set(transport.Consumer.batch_handlers)
    for agent in app.agents.values():
        topics.update(getattr(agent.channel, "topics", None) or ())
    for table in app.tables.values():
        topics.difference_update(table.changelog_topic.topics)
    return topics


def compute_lag(
    partitions: Iterable[TP],
    end_offsets: Mapping[Any, int | None],
    committed: Mapping[Any, int | None],
    log_start: Mapping[Any, int | None],
) -> dict[TP, int]:
    """Lag of each partition whose end offset is known; never negative."""
    lags: dict[TP, int] = {}
    for tp in partitions:
        end = end_offsets.get(tp)
        if end is None or end < 0:
            continue
        base = committed.get(tp)
        if base is None:
            base = log_start.get(tp)
        if base is None:
            continue
        lags[tp] = max(0, end - base)
    return lags


def _fetched_highwaters(app: AppT, partitions: Iterable[TP]) -> dict[TP, int]:
    """High watermarks from the last fetch responses (no request; None until a fetch)."""
    ends: dict[TP, int] = {}
    for tp in partitions:
        try:
            offset = app.consumer.highwater(tp)
        except Exception:  # revoked meanwhile
            continue
        if offset is not None:
            ends[tp] = offset
    return ends


async def _measure(app: AppT) -> tuple[set[TP], dict[TP, int]]:
    consumer = app.consumer
    topics = source_topics(app)
    assigned = {tp for tp in consumer.assignment() if tp.topic in topics}
    if not assigned:
        return assigned, {}
    ends = _fetched_highwaters(app, assigned)
    try:
        listed = await consumer.highwaters(*assigned)
    except Exception as exc:
        log.debug("ListOffsets failed, using fetched high watermarks: %r", exc)
        listed = {}
    for tp, offset in listed.items():
        if offset is not None and offset > ends.get(tp, -1):
            ends[tp] = offset
    committed_offsets = access.committed_offsets(app)
    committed = {tp: committed_offsets.get(tp) for tp in assigned}
    missing = [tp for tp, offset in committed.items() if offset is None]
    starts = await consumer.earliest_offsets(*missing) if missing else {}
    return assigned, compute_lag(assigned, ends, committed, starts)


class ConsumerLag:
    """The gauge's samples for one app: the labels set, and one refresh at a time."""

    def __init__(self, app: AppT, logical_name: Callable[[str], str]) -> None:
        self.app = app
        self.logical_name = logical_name
        self._reported: set[tuple[str, int]] = set()  # (logical topic, partition) label sets we set
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Set the gauge for the partitions owned now; drop the ones no longer owned."""
        async with self._lock:
            if self.app.rebalancing:
                return  # committed offsets are unknown until recovery has finished
            try:
                assigned, lags = await asyncio.wait_for(_measure(self.app), REFRESH_TIMEOUT_SECONDS)
            except Exception as exc:  # a metric must never take the worker down
                log.info("consumer lag not measured this time: %r", exc)
                return
            if self.app.rebalancing:
                return  # a rebalance began while we asked: these numbers may be stale
            owned = {(self.logical_name(tp.topic), tp.partition) for tp in assigned}
            for topic, partition in self._reported - owned:
                with contextlib.suppress(KeyError):  # already gone
                    metrics.CONSUMER_LAG.remove(topic, str(partition))
            self._reported.intersection_update(owned)
            for tp, lag in lags.items():
                labels = (self.logical_name(tp.topic), tp.partition)
                metrics.CONSUMER_LAG.labels(labels[0], str(labels[1])).set(lag)
                self._reported.add(labels)


def register(app: AppT, logical_name: Callable[[str], str]) -> ConsumerLag:
    """Refresh the gauge every :data:`INTERVAL_SECONDS` and after each rebalance."""
    lag = ConsumerLag(app, logical_name)

    @app.timer(INTERVAL_SECONDS)
    async def consumer_lag_timer() -> None:
        await lag.refresh()

    app.sensors.add(_RefreshAfterRebalance(lag))
    return lag


class _RefreshAfterRebalance(Sensor):
    """Refresh the lag once a rebalance (with its recovery) has fully completed."""

    _pending: asyncio.Future[None] | None = None

    def __init__(self, lag: ConsumerLag, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lag = lag

    def on_rebalance_end(self, app: Any, state: Any) -> None:
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self.lag.refresh())
