"""The signal processor without a broker: fetched batches in, deltas, roll-up records
and dead letters out through a stub producer, customer states into an in-memory table,
and the order of durability its module docstring promises (the sends acknowledged,
then the states written, then the input offsets acknowledged)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP
from prometheus_client import REGISTRY

from scoring.catalog import CUSTOMER_SCORES, DIRECTORY_TOPIC, SIGNAL_DELTAS, TEAM_UPDATES, Catalog
from scoring.config import DAY_MS
from scoring.customer import CustomerState
from scoring.engine import DictStore, SignalEngine
from scoring.replay import LogRecord
from scoring.signal_catalogue import SignalCatalogue
from streams.processing.customer_cache import CustomerCache
from streams.processing.signal_processor import Edge, SignalProcessor
from tests.unit.fixtures import CUSTOMER, at, raw_record, record
from tests.unit.stand_ins import PREFIX, MemoryTable, StubProducer, publisher

QUOTES = "document-open"
PARTITION = 2


class Worker:
    """A processor over the stand-ins; ``journal`` holds table writes and acknowledgements in order."""

    def __init__(
        self, cat: Catalog, cfg: SignalCatalogue, producer: StubProducer, flush_seconds: float = 3600, capacity: int = 100,
        wait_for_directory: bool = False,
    ) -> None:
        self.producer = producer
        self.journal: list[tuple[Any, ...]] = []
        self.table = MemoryTable(self.journal)
        self.crashes: list[BaseException] = []
        cache = CustomerCache(self.table, capacity)
        #: partition end offsets as the consumer would know them
        self.ends: dict[TP, int] = {}
        edge = Edge(publisher(producer), lambda name: name.removeprefix(PREFIX), self._acknowledge, self._crash,
                    self.ends.get)
        self.processor = SignalProcessor(SignalEngine(cat, cfg, cache), cache, flush_seconds, edge, wait_for_directory)

    def _acknowledge(self, tp: TP, first: int, last: int) -> None:
        self.journal.append(("ack", tp, first, last, self.producer.all_acknowledged()))

    async def _crash(self, exc: BaseException) -> None:
        self.crashes.append(exc)

    def state(self, customer_id: str = CUSTOMER) -> bytes | None:
        return self.table.get(PARTITION, customer_id.encode())


def fetch(records: list[LogRecord], first_offset: int = 0) -> dict[TP, list[ConsumerRecord[bytes, bytes]]]:
    """One fetch of ``records``, each on its topic's partition :data:`PARTITION`, broker
    timestamps in the given order."""
    batch: dict[TP, list[ConsumerRecord[bytes, bytes]]] = {}
    for offset, r in enumerate(records, first_offset):
        tp = TP(PREFIX + r.topic, PARTITION)
        batch.setdefault(tp, []).append(ConsumerRecord(
            tp.topic, PARTITION, offset, offset, 0, r.key, r.value, None, 0, 0, ()))
    return batch


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def events_counted(topic: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("credence_input_events_total", {"topic": topic, "outcome": outcome}) or 0.0


@pytest.fixture
def records() -> list[LogRecord]:
    """The directory's record of the customer, three quote opens (a high-intent delta)
    with an unreadable record and the second open again among them, and an open older
    than the de-duplication horizon."""
    q2 = record(QUOTES, event_id="q2", ts=at(hours=1), dwell_seconds=300)
    return [
        record(DIRECTORY_TOPIC, ts=at(hours=-1), team_id="T1"),
        record(QUOTES, event_id="q1", ts=at(hours=0), dwell_seconds=300),
        raw_record(QUOTES, b"{not json"),
        q2,
        q2,
        record(QUOTES, event_id="q3", ts=at(hours=2), dwell_seconds=300),
        record(QUOTES, event_id="q0", ts=at(hours=2) - 8 * DAY_MS, dwell_seconds=300),
    ]


def test_a_batch_sends_what_the_engine_decides_and_writes_the_state_before_acknowledging(
    cat: Catalog, cfg: SignalCatalogue, records: list[LogRecord]
) -> None:
    reference = SignalEngine(cat, cfg, DictStore())
    handled = [reference.receive(r.topic, r.key, r.value) for r in records]
    expected_deltas = [d.delta_id for h in handled for d in h.deltas]
    worker = Worker(cat, cfg, StubProducer())
    duplicates = events_counted(QUOTES, "duplicate")

    async def scenario() -> None:
        await worker.processor.deliver(fetch(records))
        assert worker.state() is None and worker.journal == []  # nothing durable before a flush
        await worker.processor.flush()

    run(scenario)

    producer = worker.producer
    assert [d["delta_id"] for d in producer.values(SIGNAL_DELTAS)] == expected_deltas != []
    assert {d["team_id"] for d in producer.values(SIGNAL_DELTAS)} == {"T1"}
    assert producer.values(CUSTOMER_SCORES) != []
    # the unreadable record and the late one are dead-lettered with the engine's reasons
    reasons = [h.error.reason for h in handled if h.error is not None]
    assert producer.dead_letters() == [
        (QUOTES, reasons[0], PARTITION, 2), (QUOTES, "late_event", PARTITION, 6)
    ]
    assert events_counted(QUOTES, "duplicate") == duplicates + 1
    # team updates are held back to the flush: one record for the team
    assert [(u["kind"], len(u["updates"])) for u in producer.values(TEAM_UPDATES)] == [("batch", len(
        [o for h in handled for o in h.outputs if o.topic == TEAM_UPDATES]))]
    assert worker.state() == reference.store.states[CUSTOMER].to_bytes()  # type: ignore[attr-defined]
    tps = sorted(fetch(records))
    assert worker.journal == [
        ("write", (CUSTOMER.encode(),)),
        *(("ack", tp, first, last, True) for tp, first, last in [
            (tps[0], 0, 0), (tps[1], 1, 6)]),
    ]


def test_states_and_offsets_wait_for_the_sends_they_record(
    cat: Catalog, cfg: SignalCatalogue, records: list[LogRecord]
) -> None:
    worker = Worker(cat, cfg, StubProducer(acknowledge=False))

    async def scenario() -> None:
        await worker.processor.deliver(fetch(records))
        flush = asyncio.ensure_future(worker.processor.flush())
        for _ in range(10):
            await asyncio.sleep(0)  # the flush runs as far as it can
        assert not flush.done() and worker.journal == [] and worker.state() is None
        worker.producer.acknowledge_all()
        await flush

    run(scenario)

    assert [entry[0] for entry in worker.journal] == ["write", "ack", "ack"]
    assert worker.state() is not None and worker.crashes == []


def test_a_failed_send_stops_the_worker_with_nothing_written_or_acknowledged(
    cat: Catalog, cfg: SignalCatalogue, records: list[LogRecord]
) -> None:
    worker = Worker(cat, cfg, StubProducer(acknowledge=False), flush_seconds=0)
    failure = ConnectionError("broker gone")

    async def scenario() -> None:
        await worker.processor.deliver(fetch(records))  # due at once: the write starts
        worker.producer.fail_all(failure)
        await worker.processor.flush()
        # a later batch is still scored and sent, but never made durable
        await worker.processor.deliver(fetch([record(QUOTES, event_id="q4", ts=at(hours=3))], first_offset=7))
        await worker.processor.flush()

    run(scenario)

    assert worker.crashes == [failure]
    assert worker.journal == [] and worker.state() is None


def test_a_later_batch_is_written_by_the_next_flush_only(
    cat: Catalog, cfg: SignalCatalogue, records: list[LogRecord]
) -> None:
    worker = Worker(cat, cfg, StubProducer())
    later = [record(QUOTES, event_id="q4", ts=at(hours=3), dwell_seconds=300)]

    async def scenario() -> None:
        await worker.processor.deliver(fetch(records))
        await worker.processor.flush()
        written = worker.state()
        await worker.processor.deliver(fetch(later, first_offset=7))
        assert worker.state() == written  # the new event lives in the cache until the flush
        await worker.processor.flush()

    run(scenario)

    assert worker.journal[-2:] == [("write", (CUSTOMER.encode(),)), ("ack", TP(PREFIX + QUOTES, PARTITION), 7, 7, True)]
    state = worker.state()
    assert state is not None and CustomerState.from_bytes(state).max_ts[QUOTES] == at(hours=3)


def test_a_due_flush_waits_for_the_running_write_once_the_cache_is_past_its_bound(
    cat: Catalog, cfg: SignalCatalogue, records: list[LogRecord]
) -> None:
    worker = Worker(cat, cfg, StubProducer(acknowledge=False), flush_seconds=0, capacity=2)
    others = [record(QUOTES, key=f"c{i}", customer_id=f"c{i}", event_id=f"o{i}", ts=at(hours=2), dwell_seconds=300)
              for i in range(3)]

    async def scenario() -> None:
        await worker.processor.deliver(fetch(records))  # due at once: a write starts, its sends unacknowledged
        within = asyncio.ensure_future(worker.processor.deliver(fetch(others[:1], first_offset=7)))
        await asyncio.wait_for(within, 5)  # two customers cached: the bound holds, no wait
        past = asyncio.ensure_future(worker.processor.deliver(fetch(others[1:], first_offset=8)))
        finished, _ = await asyncio.wait({past}, timeout=0.1)
        assert not finished and worker.journal == []  # four customers cached: waits for the write
        worker.producer.acknowledge_all()
        await asyncio.wait_for(past, 5)
        assert worker.journal[0] == ("write", (CUSTOMER.encode(),))
        worker.producer.acknowledge_all()
        await worker.processor.flush()

    run(scenario)

    assert worker.crashes == []
    assert all(worker.state(f"c{i}") is not None for i in range(3))
    assert len(worker.processor.cache) <= 2  # the written states went


def test_a_new_customers_events_wait_one_fetch_for_a_directory_record_written_with_them(
    cat: Catalog, cfg: SignalCatalogue
) -> None:
    """The events came in a fetch before their directory record: held once, they are
    fetched again with it, which goes first, and their delta carries its team."""
    owner = record(DIRECTORY_TOPIC, ts=at(hours=-1), team_id="T1")
    quotes = [record(QUOTES, event_id=f"q{i}", ts=at(hours=i), dwell_seconds=300) for i in range(3)]
    worker = Worker(cat, cfg, StubProducer(), wait_for_directory=True)
    returned: list[dict[TP, list[int]]] = []

    async def deliver(batch: dict[TP, list[ConsumerRecord[bytes, bytes]]]) -> None:
        held = await worker.processor.deliver(batch)
        returned.append({tp: [r.offset for r in records] for tp, records in held.items()})

    async def scenario() -> None:
        await deliver(fetch(quotes, first_offset=1))
        assert worker.producer.sent == []
        await deliver(fetch([owner, *quotes]))  # fetched again, the directory record with them
        await worker.processor.flush()

    run(scenario)

    assert returned == [{TP(PREFIX + QUOTES, PARTITION): [1, 2, 3]}, {}]
    assert [(d["signal"], d["team_id"]) for d in worker.producer.values(SIGNAL_DELTAS)] == [("high_intent", "T1")]
    # only what was processed is acknowledged: the held records with their second delivery
    assert [entry[1:4] for entry in worker.journal if entry[0] == "ack"] == [
        (TP(PREFIX + DIRECTORY_TOPIC, PARTITION), 0, 0), (TP(PREFIX + QUOTES, PARTITION), 1, 3)]


def test_records_are_held_once_and_never_for_a_customer_with_a_state_or_a_directory_record(
    cat: Catalog, cfg: SignalCatalogue
) -> None:
    """Held records come back without a directory record: processed (the customer may
    have none). Later records of a known customer, or of a new one whose directory
    record is in the same fetch, are not held; a new customer's later record is."""
    first = record(QUOTES, event_id="q0", ts=at(hours=0), dwell_seconds=300)
    known = record(QUOTES, event_id="q1", ts=at(hours=1), dwell_seconds=300)
    owner = record(DIRECTORY_TOPIC, key="C2", customer_id="C2", ts=at(hours=1), team_id="T2")
    other = record(QUOTES, key="C2", customer_id="C2", event_id="q2", ts=at(hours=2), dwell_seconds=300)
    stranger = record(QUOTES, key="C3", customer_id="C3", event_id="q3", ts=at(hours=3), dwell_seconds=300)
    worker = Worker(cat, cfg, StubProducer(), wait_for_directory=True)

    async def scenario() -> list[list[int]]:
        returned = []
        for batch in (fetch([first]), fetch([first]), fetch([owner, known, other], first_offset=0),
                      fetch([stranger], first_offset=3)):
            held = await worker.processor.deliver(batch)
            returned.append([r.offset for records in held.values() for r in records])
        return returned

    returned = asyncio.run(scenario())

    assert returned == [[0], [], [], [3]]
    assert sorted(worker.processor.cache.known(c.encode()) for c in ("C1", "C2", "C3")) == [False, True, True]


def test_a_fetch_below_the_partitions_end_is_not_held(cat: Catalog, cfg: SignalCatalogue) -> None:
    """Catching up, a new customer's events were appended long ago, and so was anything
    written with them: only a fetch that reached the partition's end holds records."""
    quotes = [record(QUOTES, event_id=f"q{i}", ts=at(hours=i), dwell_seconds=300) for i in range(3)]
    worker = Worker(cat, cfg, StubProducer(), wait_for_directory=True)
    tp = TP(PREFIX + QUOTES, PARTITION)

    async def scenario() -> list[dict[TP, Any]]:
        worker.ends[tp] = 100  # 97 more records behind this fetch
        behind = await worker.processor.deliver(fetch(quotes))
        worker.ends[tp] = 4
        at_end = await worker.processor.deliver(fetch([record(QUOTES, key="C2", customer_id="C2", event_id="x",
                                                              ts=at(hours=3), dwell_seconds=300)], first_offset=3))
        return [behind, at_end]

    behind, at_end = asyncio.run(scenario())

    assert behind == {} and [d["signal"] for d in worker.producer.values(SIGNAL_DELTAS)] == ["high_intent"]
    assert [r.offset for r in at_end[tp]] == [3]
