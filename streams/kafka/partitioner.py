"""The producer's partitioner: aiokafka's default, its key hash remembered.

aiokafka's ``DefaultPartitioner`` hashes every key with a pure-Python murmur2 (about
6 µs): 2-3 % of a busy worker's CPU, since every delta, score and alert record is keyed
by a customer and the same customers recur. The hash of a key never changes, so it is
kept (for at most :data:`KEYS` keys, then forgotten at once); the partition it picks is
the default partitioner's, as every Kafka client's for the same key.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.partitioner import DefaultPartitioner, murmur2

#: keys whose hash is kept (about 150 bytes each)
KEYS = 100_000


class KeyHashPartitioner:
    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            chosen: int = DefaultPartitioner()(key, all_partitions, available)  # a random one
            return chosen
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= KEYS:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]
