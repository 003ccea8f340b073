"""What the worker's consumer is doing, added to the dump a worker writes on SIGUSR1.

mode's dump (``kill -USR1 <pid>``: every thread's stack and the main event loop's
tasks) misses the consumer thread's event loop, where aiokafka fetches, resets
positions and refreshes committed offsets. For a worker that looks stuck — a restore
that never ends (``credence_restore_remaining_records``), partitions without progress
— this adds, to the same output: the flow and rebalance flags, Faust's partition sets,
the restore's offsets against the changelogs' ends, aiokafka's state per assigned
partition, and the consumer thread's tasks with their stacks.

It reads private attributes of faust-streaming 0.15.3 and aiokafka 0.14.0; each section
is written on its own, and one these versions no longer have reads "unavailable":

* mode ``Worker._cry``: the SIGUSR1 dump, which ``streams.faust_ext.worker.Worker``
  ends with this report.
* Faust ``App._fetcher`` (``_started``, ``_stopped``, ``_crashed``): the fetcher task's state.
* Faust ``Consumer._active_partitions``, ``_paused_partitions``, ``_buffered_partitions``,
  ``_thread`` (``_ensure_consumer``, ``thread_loop``): partition sets, the consumer thread.
* Faust ``Recovery._active_events_received_at``: when each changelog last gave a record.
* aiokafka ``AIOKafkaConsumer._fetcher`` (``_in_flight``, ``_records``),
  ``_subscription``, ``_coordinator._commit_refresh_task``; ``TopicPartitionState``
  ``_position``, ``_committed_futs``: the fetch and commit machinery per partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, cast

from faust.tables.manager import TableManager
from faust.types import AppT


def consumer_report(app: AppT) -> str:
    lines = ["CONSUMER"]
    for title, section in (
        ("flow", _flow),
        ("faust partitions", _faust_partitions),
        ("restore", _restore),
        ("aiokafka partitions", _aiokafka_partitions),
        ("consumer thread tasks", _thread_tasks),
    ):
        lines.append(f"-- {title}")
        lines += _read(partial(section, app))
    return "\n".join(lines)


def _read(section: Callable[[], list[str]], attempts: int = 3) -> list[str]:
    """A section's lines. The consumer thread may change a set or dict while this thread
    reads it (RuntimeError): such a section is read again. A diagnostic never fails the dump."""
    error: Exception | None = None
    for _ in range(attempts):
        try:
            return section()
        except RuntimeError as exc:
            error = exc
        except Exception as exc:
            return [f"   unavailable: {exc!r}"]
    return [f"   unavailable: {error!r}"]


def _names(tps: Iterable[Any]) -> str:
    return ", ".join(sorted(f"{tp.topic}/{tp.partition}" for tp in tps)) or "-"


def _flow(app: Any) -> list[str]:
    consumer: Any = app.consumer
    return [
        f"   flow_active={consumer.flow_active} rebalancing={app.rebalancing} "
        f"in_recovery={app.in_recovery} generation={app.consumer_generation_id} "
        f"fetcher started={app._fetcher._started.is_set()} stopped={app._fetcher._stopped.is_set()} "
        f"crashed={app._fetcher._crashed.is_set()}"
    ]


def _faust_partitions(app: Any) -> list[str]:
    consumer: Any = app.consumer
    return [
        f"   active: {_names(consumer._active_partitions or ())}",
        f"   paused: {_names(consumer._paused_partitions)}",
        f"   buffered: {_names(consumer._buffered_partitions)}",
    ]


def _restore(app: Any) -> list[str]:
    tables = cast(TableManager, app.tables)
    recovery: Any = tables.recovery
    lines = [f"   changelog queue: {tables.changelog_queue.qsize()} events"]
    for tp, highwater in sorted(recovery.active_highwaters.items(), key=lambda kv: str(kv[0])):
        received = recovery._active_events_received_at.get(tp)
        lines.append(f"   {tp.topic}/{tp.partition}: read up to {recovery.active_offsets.get(tp)} "
                     f"of {highwater}, last event at {received}")
    return lines


def _aiokafka_partitions(app: Any) -> list[str]:
    client: Any = app.consumer._thread._ensure_consumer()
    fetcher = client._fetcher
    assignment = client._subscription.subscription.assignment
    lines = [
        f"   fetch nodes in flight: {sorted(fetcher._in_flight)}; buffered fetches: {_names(fetcher._records)}; "
        f"commit refresh task: {client._coordinator._commit_refresh_task!r}"
    ]
    for tp in sorted(assignment.tps, key=str):
        state = assignment.state_value(tp)
        lines.append(
            f"   {tp.topic}/{tp.partition}: position={state._position} highwater={state.highwater} "
            f"paused={state.paused} awaiting_reset={state.awaiting_reset} "
            f"waiting_for_committed={len(state._committed_futs)}"
        )
    return lines


def _thread_tasks(app: Any) -> list[str]:
    loop = app.consumer._thread.thread_loop
    lines: list[str] = []
    for task in list(asyncio.all_tasks(loop)):
        frames = " < ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(task.get_stack()))
        lines.append(f"   {task.get_name()}: {frames or task.get_coro()!r}")
    return lines
