"""The write-back customer cache over real RocksDB instances (one per partition).

The table side is a stand-in for Faust's (its store's per-partition databases and
persisted changelog offsets); the producer records what would be sent to the changelog.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rocksdict import Options, Rdict

from scoring.customer import CustomerState, Outcome
from scoring.engine import DictStore, SignalEngine
from scoring.patterns import streak
from streams.kafka.table_writer import BulkTable
from streams.processing.customer_cache import CustomerCache
from tests.unit.fixtures import CUSTOMER, at, catalog, record, rules, summary

CHANGELOG = "app-customer-signal-state-changelog"


@dataclass
class Metadata:
    offset: int


@dataclass
class Batch:
    """aiokafka's record batch builder as the writer uses it; full after ``capacity`` records."""

    capacity: int
    rows: list[tuple[bytes, bytes | None]] = field(default_factory=list)

    def append(self, *, key: bytes, value: bytes | None, timestamp: None) -> Any:
        if len(self.rows) >= self.capacity:
            return None
        self.rows.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.rows)


@dataclass
class Producer:
    """Faust's producer and the aiokafka producer under it, recording what is sent."""

    batch_records: int = 2  # small, so that a flush spans several batches
    sent: list[tuple[str, bytes, bytes | None, int]] = field(default_factory=list)

    def _ensure_producer(self) -> Producer:
        return self

    def create_batch(self) -> Batch:
        return Batch(self.batch_records)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> Any:
        base = len([s for s in self.sent if s[3] == partition])  # the broker's next offset
        self.sent += [(topic, key, value, partition) for key, value in batch.rows]
        future: asyncio.Future[Metadata] = asyncio.get_running_loop().create_future()
        future.set_result(Metadata(offset=base))
        return future


class Store:
    """Faust's RocksDB store as the cache uses it: a database per partition."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dbs: dict[int, Rdict] = {}
        self.persisted: dict[int, int] = {}

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self.dbs:
            options = Options(raw_mode=True)
            self.dbs[partition] = Rdict(str(self.root / f"p{partition}"), options=options)
        return self.dbs[partition]

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        assert tp.topic == CHANGELOG
        self.persisted[tp.partition] = offset

    def close(self) -> None:
        for db in self.dbs.values():
            db.close()


class ChangelogTopic:
    def get_topic_name(self) -> str:
        return CHANGELOG


@dataclass
class Table:
    data: Store
    changelog_topic: ChangelogTopic = field(default_factory=ChangelogTopic)


@dataclass
class App:
    producer: Producer = field(default_factory=Producer)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path)
    yield s
    s.close()


def make_cache(store: Store, capacity: int = 100) -> tuple[CustomerCache, Producer]:
    app = App()
    return CustomerCache(BulkTable(app, Table(store)), capacity), app.producer  # type: ignore[arg-type]


def flush(cache: CustomerCache) -> int:
    """A snapshot written at once; returns how many states it held."""
    writes = cache.snapshot()
    asyncio.run(cache.write(writes))
    return len(writes)


def changed(cache: CustomerCache, customer_id: str, partition: int, team: str) -> CustomerState:
    cache.partition = partition
    state = cache.load(customer_id) or CustomerState(customer_id)
    state.max_ts["document-open"] = len(team)  # any visible change
    state.owner = type(state.owner)(team, None, None)
    cache.save(state)
    return state


def test_a_miss_reads_the_partition_database_once(store: Store) -> None:
    store._db_for_partition(3)[b"c1"] = CustomerState("c1", max_ts={"role-login": 7}).to_bytes()
    cache, _ = make_cache(store)
    cache.partition = 3
    state = cache.load("c1")
    assert state is not None and state.max_ts == {"role-login": 7}
    del store._db_for_partition(3)[b"c1"]
    assert cache.load("c1") is state  # served from memory
    cache.partition = 2
    assert cache.load("c2") is None  # unknown customers stay unknown...
    store._db_for_partition(2)[b"c2"] = CustomerState("c2").to_bytes()
    assert cache.load("c2") is None  # ...until evicted: the cache is the owner's view


def test_known_reads_the_partition_database_once_for_the_engine_and_counts_an_unreadable_state(
    store: Store,
) -> None:
    """The signal processor asks before holding a record for the directory: a written
    state is known (and then loaded from memory), an absent one is not, and one that
    cannot be decoded is (the engine meets it and dead-letters the record)."""
    db = store._db_for_partition(3)
    db[b"c1"] = CustomerState("c1", max_ts={"role-login": 7}).to_bytes()
    db[b"bad"] = b"\xc1 not a state"
    cache, _ = make_cache(store)
    cache.partition = 3
    assert [cache.known(k) for k in (b"c1", b"c2", b"bad")] == [True, False, True]
    del db[b"c1"]
    state = cache.load("c1")  # served from memory
    assert state is not None and state.max_ts == {"role-login": 7}


def test_flush_writes_each_changed_customer_once_to_its_partition(store: Store) -> None:
    cache, producer = make_cache(store)
    changed(cache, "c1", 0, "t-a")
    changed(cache, "c1", 0, "t-b")  # the same customer twice: one write
    last = changed(cache, "c2", 4, "t-c")

    assert flush(cache) == 2

    assert sorted((t, k, p) for t, k, _, p in producer.sent) == [(CHANGELOG, b"c1", 0), (CHANGELOG, b"c2", 4)]
    assert CustomerState.from_bytes(store._db_for_partition(0)[b"c1"]).owner.team_id == "t-b"
    assert store._db_for_partition(4)[b"c2"] == last.to_bytes()
    assert b"c2" not in store._db_for_partition(0)
    # recovery resumes after the changelog records this flush wrote
    assert store.persisted == {0: 0, 4: 0}


def test_a_flush_without_changes_writes_nothing(store: Store) -> None:
    cache, producer = make_cache(store)
    changed(cache, "c1", 1, "t")
    flush(cache)
    cache.load("c1")
    assert flush(cache) == 0
    assert len(producer.sent) == 1


def test_persisted_offset_is_the_highest_written_per_partition(store: Store) -> None:
    cache, producer = make_cache(store)
    for n in range(5):  # three record batches of at most two
        changed(cache, f"c{n}", 5, "t")
    flush(cache)
    assert [k for _, k, _, _ in producer.sent] == [b"c0", b"c1", b"c2", b"c3", b"c4"]
    assert store.persisted == {5: 4}


def test_least_recently_used_states_leave_after_a_flush(store: Store) -> None:
    cache, _ = make_cache(store, capacity=2)
    for name in ("c1", "c2", "c3"):
        changed(cache, name, 0, "t")
    assert len(cache) == 3  # never before their changes are written
    cache.load("c1")  # c1 is now more recent than c2
    flush(cache)
    assert len(cache) == 2
    del store._db_for_partition(0)[b"c2"]
    assert cache.load("c2") is None  # evicted: read again from the database
    assert cache.load("c1") is not None


def test_clear_forgets_states_but_not_unwritten_changes(store: Store) -> None:
    cache, _ = make_cache(store)
    changed(cache, "c1", 0, "t")
    with pytest.raises(AssertionError):
        cache.clear()
    flush(cache)
    cache.clear()
    assert len(cache) == 0


def test_a_change_made_while_a_snapshot_is_written_stays_for_the_next(store: Store) -> None:
    cache, _ = make_cache(store, capacity=1)
    first = changed(cache, "c1", 0, "t-a")
    changed(cache, "c2", 0, "t-b")  # least recently used order: c1, c2
    writes = cache.snapshot()
    first.owner = type(first.owner)("t-later", None, None)  # a batch processed meanwhile
    cache.save(first)
    asyncio.run(cache.write(writes))
    # over capacity: the clean c2 leaves although c1 was used less recently
    assert len(cache) == 1 and cache.load("c1") is first
    assert [(k, CustomerState.from_bytes(v).owner.team_id) for _, k, v in cache.snapshot()] == [(b"c1", "t-later")]


@pytest.mark.parametrize("flushed", ["written", "being written", "not flushed"])
def test_a_failing_record_rolls_its_customer_back_to_the_last_flush_and_after(
    store: Store, flushed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's bulkhead over the cache: the checkpoint is the snapshot being
    written, then the table's value; the journal holds what came after."""
    cfg = rules()
    real = streak._span

    def span(streak: list[Any]) -> int:
        if streak[-1].event_id == "poison":
            raise RuntimeError("injected")
        return real(streak)

    monkeypatch.setattr(streak, "_span", span)
    q1, q2, poison, q3 = (
        record("document-open", event_id=e, ts=at(hours=h), dwell_seconds=300)
        for e, h in (("q1", 0), ("q2", 1), ("poison", 2), ("q3", 3))
    )
    reference = SignalEngine(catalog(), cfg, DictStore())
    expected = [d for r in (q1, q2, q3) for d in reference.receive(r.topic, r.key, r.value).deltas]
    cache, _ = make_cache(store)
    engine = SignalEngine(catalog(), cfg, cache)
    deltas = [d for r in (q1, q2) for d in engine.receive(r.topic, r.key, r.value).deltas]
    writes = cache.snapshot() if flushed != "not flushed" else []
    if flushed == "written":
        asyncio.run(cache.write(writes))
    failed = engine.receive(poison.topic, poison.key, poison.value)
    if flushed == "being written":
        asyncio.run(cache.write(writes))
    deltas += engine.receive(q3.topic, q3.key, q3.value).deltas
    flush(cache)

    assert failed.outcome is Outcome.FAILED
    assert [summary(d) for d in deltas] == [summary(d) for d in expected] != []
    assert store._db_for_partition(0)[CUSTOMER.encode()] == reference.store.states[CUSTOMER].to_bytes()
