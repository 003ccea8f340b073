"""Table restores applied per fetch: each fetch's changelog records of a restoring
partition go to its RocksDB in one write batch.

Faust's recovery takes a changelog record at a time: a message and an event built for
it, a hop through the changelog queue with a timed wait, a few debug lines formatted,
and whether the restore has ended worked out again: about 75 µs of CPU a record, which
held a restore to some 12 000 records/s. Here the changelogs of the tables are batch
topics of the ``credence://`` transport (:func:`.transport.deliver_in_batches`); for
each fetch, the records of a partition being restored are written with one RocksDB
write batch, with the bookkeeping Faust's loop (``Recovery._slurp_changelogs``) does
per record done once: the partition's restored offset (what the remaining-records
gauge and the end of the restore are reckoned from), its persisted offset, the time a
record was last received (the stall diagnostics), and the end of the restore
signalled once nothing remains. Records of other partitions (standbys, none in
Credence's settings, or partitions no longer restoring) take Faust's own path.

Private names it depends on, and why (faust-streaming 0.15.3
``faust.tables.recovery.Recovery``): ``active_tps``, ``active_offsets`` (read and
advanced as its loop does), ``buffers`` and ``flush_buffers`` (a record Faust's path
holds is written before a newer one of ours), ``_active_events_received_at``,
``_set_recovery_ended`` and ``signal_recovery_end`` (the end of the restore, as the
loop's ``_maybe_signal_recovery_end`` signals it; no tracing spans: Credence runs
without a tracer). ``Table.data.set_persisted_offset`` and
``Table._on_changelog_event`` (a table with a changelog callback keeps Faust's path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from time import monotonic
from typing import Any, cast

from faust.types import TP, AppT
from rocksdict import WriteBatch

from streams.faust_ext import transport
from streams.faust_ext.access import partition_db


class ChangelogRestore:
    """The batch handler of a table's changelog topic."""

    def __init__(self, app: AppT, table: Any) -> None:
        self.app = app
        self.table = table

    async def deliver(self, batch: Mapping[TP, Sequence[Any]]) -> None:
        recovery: Any = cast(Any, self.app.tables).recovery
        consumer = cast(transport.Consumer, self.app.consumer)
        for tp, records in batch.items():
            if tp not in recovery.active_tps or self.table._on_changelog_event:
                for record in records:  # Faust's path, one record at a time
                    if not await consumer._hand_over(tp, record):
                        return
                continue
            self._apply(recovery, tp, records)
        if recovery.in_recovery and not recovery.need_recovery():
            recovery.flush_buffers()
            recovery._set_recovery_ended()
            recovery.signal_recovery_end.set()

    def _apply(self, recovery: Any, tp: TP, records: Sequence[Any]) -> None:
        restored = recovery.active_offsets.get(tp)
        if restored is not None and records[0].offset <= restored:
            records = [r for r in records if r.offset > restored]  # fetched again after a seek back
            if not records:
                return
        if recovery.buffers.get(self.table):
            recovery.flush_buffers()
        writes = WriteBatch(raw_mode=True)
        for record in records:
            if record.value is None:
                writes.delete(record.key)
            else:
                writes.put(record.key, record.value)
        partition_db(self.table, tp.partition).write(writes)
        last = records[-1].offset
        self.table.data.set_persisted_offset(tp, last)
        recovery.active_offsets[tp] = last
        recovery._active_events_received_at[tp] = monotonic()

    async def flush(self) -> None:
        """Nothing waits: every delivered record is in the table already."""


def register(app: AppT) -> None:
    """Restore every table of ``app`` registered so far per fetch."""
    for table in app.tables.values():
        transport.deliver_in_batches(app, table.changelog_topic, ChangelogRestore(app, table))
