"""Table restores applied per fetch (``streams.faust_ext.restore``): what Faust's
recovery loop does per changelog record, done once per fetch and partition, against a
real RocksDB; Faust's recovery around it is a stand-in (the integration tests
test_restart and test_restore_progress run the real one)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from streams.faust_ext.restore import ChangelogRestore
from tests.unit.test_customer_cache import CHANGELOG, Store, Table

ACTIVE, OTHER = TP(CHANGELOG, 0), TP(CHANGELOG, 1)


@dataclass
class Record:
    offset: int
    key: bytes
    value: bytes | None


@dataclass
class Recovery:
    """The attributes of Faust's ``Recovery`` the handler reads and writes."""

    highwater: int  # the active partition's end: restored once its offset is highwater - 1
    active_tps: set[TP] = field(default_factory=lambda: {ACTIVE})
    active_offsets: Counter[TP] = field(default_factory=Counter)
    buffers: dict[Any, list[Record]] = field(default_factory=dict)
    flushed: list[list[Record]] = field(default_factory=list)
    _active_events_received_at: dict[TP, float] = field(default_factory=dict)
    in_recovery: bool = True
    signal_recovery_end: asyncio.Event = field(default_factory=asyncio.Event)

    def need_recovery(self) -> bool:
        return self.active_offsets.get(ACTIVE, -1) < self.highwater - 1

    def flush_buffers(self) -> None:
        for buffer in self.buffers.values():
            self.flushed.append(list(buffer))
            buffer.clear()

    def _set_recovery_ended(self) -> None:
        self.in_recovery = False


@dataclass
class Consumer:
    handed_over: list[tuple[TP, int]] = field(default_factory=list)

    async def _hand_over(self, tp: TP, record: Record) -> bool:
        self.handed_over.append((tp, record.offset))
        return True


@dataclass
class Tables:
    recovery: Recovery


@dataclass
class App:
    tables: Tables
    consumer: Consumer = field(default_factory=Consumer)


@dataclass
class RestoredTable(Table):
    _on_changelog_event: Any = None
    __hash__ = object.__hash__  # Faust's recovery buffers are keyed by table


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path)
    yield s
    s.close()


def restore(store: Store, highwater: int) -> tuple[ChangelogRestore, App, RestoredTable]:
    table = RestoredTable(store)
    app = App(Tables(Recovery(highwater)))
    return ChangelogRestore(app, table), app, table  # type: ignore[arg-type]


def test_a_fetch_is_written_in_one_go_and_counted_as_restored(store: Store) -> None:
    handler, app, _ = restore(store, highwater=10)
    asyncio.run(handler.deliver({ACTIVE: [Record(0, b"a", b"1"), Record(1, b"b", b"2"), Record(2, b"a", b"3")]}))
    db, recovery = store._db_for_partition(0), app.tables.recovery
    assert (db[b"a"], db[b"b"]) == (b"3", b"2")  # the later record of a key wins
    assert recovery.active_offsets[ACTIVE] == 2 and store.persisted == {0: 2}
    assert ACTIVE in recovery._active_events_received_at
    assert recovery.in_recovery and not recovery.signal_recovery_end.is_set()  # 7 records to go

    asyncio.run(handler.deliver({ACTIVE: [Record(3, b"b", None), Record(9, b"c", b"4")]}))  # 4..8 compacted
    assert b"b" not in db and db[b"c"] == b"4"
    assert recovery.active_offsets[ACTIVE] == 9 and store.persisted == {0: 9}
    assert not recovery.in_recovery and recovery.signal_recovery_end.is_set()
    assert app.consumer.handed_over == []


def test_records_fetched_again_after_a_seek_back_are_not_applied_again(store: Store) -> None:
    handler, app, _ = restore(store, highwater=10)
    asyncio.run(handler.deliver({ACTIVE: [Record(0, b"a", b"1"), Record(1, b"a", b"2")]}))
    store._db_for_partition(0)[b"a"] = b"newer"  # stands for what a later record wrote
    asyncio.run(handler.deliver({ACTIVE: [Record(1, b"a", b"2")]}))
    assert store._db_for_partition(0)[b"a"] == b"newer"
    asyncio.run(handler.deliver({ACTIVE: [Record(0, b"a", b"1"), Record(1, b"a", b"2"), Record(2, b"a", b"3")]}))
    assert store._db_for_partition(0)[b"a"] == b"3" and app.tables.recovery.active_offsets[ACTIVE] == 2


def test_records_faust_holds_are_written_first(store: Store) -> None:
    handler, app, table = restore(store, highwater=10)
    held = [Record(0, b"a", b"old")]
    app.tables.recovery.buffers[table] = list(held)
    asyncio.run(handler.deliver({ACTIVE: [Record(1, b"a", b"new")]}))
    assert app.tables.recovery.flushed == [held]


def test_other_partitions_and_tables_with_a_changelog_callback_take_fausts_path(store: Store) -> None:
    handler, app, table = restore(store, highwater=10)
    asyncio.run(handler.deliver({OTHER: [Record(5, b"a", b"1"), Record(6, b"b", b"2")]}))
    table._on_changelog_event = object()
    asyncio.run(handler.deliver({ACTIVE: [Record(0, b"c", b"3")]}))
    assert app.consumer.handed_over == [(OTHER, 5), (OTHER, 6), (ACTIVE, 0)]
    assert list(store._db_for_partition(0).keys()) == [] and list(store._db_for_partition(1).keys()) == []
    assert ACTIVE not in app.tables.recovery.active_offsets
