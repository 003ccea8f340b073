"""The producer's partitioner picks what aiokafka's default picks, hash remembered."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from streams.kafka import partitioner
from streams.kafka.partitioner import KeyHashPartitioner


def test_every_key_goes_where_the_default_partitioner_sends_it() -> None:
    cached, default = KeyHashPartitioner(), DefaultPartitioner()
    for partitions in ([0], [0, 1, 2, 3, 4, 5], list(range(12))):
        for i in range(2_000):
            key = f"customer-{i}".encode()
            expected = default(key, partitions, partitions)
            assert cached(key, partitions, partitions) == expected
            assert cached(key, partitions, partitions) == expected  # from the remembered hash


def test_the_remembered_hashes_are_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(partitioner, "KEYS", 10)
    cached, default = KeyHashPartitioner(), DefaultPartitioner()
    for i in range(35):
        key = f"c{i}".encode()
        assert cached(key, [0, 1, 2], [0, 1, 2]) == default(key, [0, 1, 2], [0, 1, 2])
        assert len(cached._hashes) <= 10


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    cached = KeyHashPartitioner()
    assert {cached(None, [0, 1, 2, 3], [2, 3]) for _ in range(50)} <= {2, 3}
    assert {cached(None, [0, 1], []) for _ in range(50)} <= {0, 1}
