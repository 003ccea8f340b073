"""The team agent's batch handling without a broker: team updates in, team scores, the
heat map and dead letters out through a stub producer, the team store flushed before
anything is sent, and the batch done only once every send is acknowledged."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from scoring.catalog import CREDIBILITY_HEATMAP, TEAM_CREDIBILITY, TEAM_UPDATES
from scoring.rollup.config import RollupConfig
from scoring.rollup.team_rollup import DictTeamStore, TeamRollup
from streams.processing.team_agent import handle_batch
from tests.support import faulty_worker
from tests.unit.rollup_fixtures import NOW, customer, new_rollup, of, outcome
from tests.unit.stand_ins import StubProducer, publisher


@dataclass
class Message:
    key: bytes | None
    value: bytes | None
    offset: int
    partition: int = 0


@dataclass
class Event:
    message: Message


class Store(DictTeamStore):
    """The in-memory team store, flushed like the table's: each flush is journalled
    with the number of records sent by then."""

    def __init__(self, producer: StubProducer) -> None:
        super().__init__()
        self.producer = producer
        self.flushes: list[int] = []

    async def flush(self) -> None:
        self.flushes.append(len(self.producer.sent))


T1_UPDATES = [customer("C1", 20, NOW - 3_600_000), customer("C2", -5, NOW - 7_200_000)]
T1_OUTCOME = outcome("2026-10", 100.0, 90.0)
POISONED = customer("C3", 1, NOW)


def batch() -> list[Event]:
    """One team's batch, an unreadable record, a poisoned team's batch, a single
    update, and a heat map request."""
    records: list[tuple[bytes | None, Any]] = [
        (b"T1", {"kind": "batch", "updates": T1_UPDATES}),
        (None, b"{oops"),
        (f"{faulty_worker.POISON}T".encode(), {"kind": "batch", "updates": [POISONED]}),
        (b"T1", T1_OUTCOME),
        (b"\x00clock", {"kind": "heatmap", "at": NOW, "request_id": "r1"}),
    ]
    return [
        Event(Message(key, value if isinstance(value, bytes) else orjson.dumps(value), offset))
        for offset, (key, value) in enumerate(records)
    ]


def test_a_batch_publishes_the_teams_and_dead_letters_what_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    faulty_worker.install(monkeypatch.setattr)
    reference = new_rollup()
    expected = reference.apply_many([("T1", u) for u in [*T1_UPDATES, T1_OUTCOME]])
    expected_heatmap = reference.heatmap(NOW)
    producer = StubProducer(acknowledge=False)
    store = Store(producer)

    async def scenario() -> None:
        handling = asyncio.ensure_future(
            handle_batch(batch(), TeamRollup(RollupConfig(), store), store, publisher(producer))  # type: ignore[arg-type]
        )
        for _ in range(10):
            await asyncio.sleep(0)  # the batch runs as far as it can
        assert producer.sent and not handling.done()  # done only once its sends are acknowledged
        producer.acknowledge_all()
        await handling

    asyncio.run(scenario())

    assert store.flushes == [0]  # the team state is written before anything is sent
    assert producer.values(TEAM_CREDIBILITY) == of(expected, TEAM_CREDIBILITY) != []
    assert producer.values(CREDIBILITY_HEATMAP) == [
        {**value, "request_id": "r1"} for value in of(expected_heatmap, CREDIBILITY_HEATMAP)
    ] != []
    assert producer.dead_letters() == [
        (TEAM_UPDATES, "internal_error", 0, 1), (TEAM_UPDATES, "internal_error", 0, 2)
    ]
    unreadable, poisoned = producer.values("dead-letter")
    assert unreadable["payload"] == "{oops"
    assert orjson.loads(poisoned["payload"]) == POISONED  # the update itself, not its batch
    assert store.load(f"{faulty_worker.POISON}T") is None  # rolled back
    (t1,) = of(expected, TEAM_CREDIBILITY)
    assert t1["score"] is not None
    assert REGISTRY.get_sample_value(
        "credence_team_credibility_score", {"team_id": "T1", "region": t1["region"]}
    ) == t1["score"]
