"""Changelog records a worker still has to read before it processes input again: the
gauge ``credence_restore_remaining_records``.

After a rebalance Faust restores each table partition the worker now owns from its
changelog, and the worker processes nothing until every one is restored; meanwhile the
consumer lag of those partitions is not measured (``streams.ops.lag``). The gauge makes a
restore visible: it rises when a worker takes partitions over, falls as the changelogs
are read, and is 0 once done. A value that stays above 0 is a stuck restore (alert
``CredenceRestoreStuck``; README, "Scaling out").

It is computed when ``/metrics`` is scraped (:func:`refresh`, on the event loop: the
exposition is rendered in a thread, and Faust's recovery state belongs to the loop),
not by a timer: Faust starts timers only after a worker's first restore has finished.
"""

from __future__ import annotations

from typing import cast

from faust.tables.manager import TableManager
from faust.types import AppT

from streams.ops import metrics


def remaining_records(app: AppT) -> int:
    recovery = cast(TableManager, app.tables).recovery
    return recovery.active_remaining_total() if recovery.in_recovery else 0


def refresh(app: AppT) -> None:
    metrics.RESTORE_REMAINING.set(remaining_records(app))
