"""RocksDB options of Credence's Faust tables (``app.Table(options=...)``).

Faust opens one RocksDB database per table partition, each with up to three 64 MiB
memtables and its own 2 GiB block cache. A worker that had restored a million
customers (six partitions) held 1.5 GiB, almost all of it there, though no decoded
state was in memory. The customer table is read on a miss of the decoded-state cache
above it (:class:`streams.processing.customer_cache.CustomerCache`), the team table once
per team and rebalance: a small block cache serves both, and the operating system's
page cache keeps the files themselves.
"""

from typing import Any


def table_options() -> dict[str, Any]:
    """``faust.stores.rocksdb.RocksDBOptions`` fields for each partition's database, a
    new mapping per table (Faust's store keeps the mapping it is given and pops from it).

    At a million customers (docs/benchmarks.md) two 16 MiB memtables restored at 48 000
    records/s, two of 32 MiB at 79 000 (the goal is 50 000) and held 1.2 GiB after filling.
    """
    return {
        "write_buffer_size": 32 * 1024 * 1024,
        "max_write_buffer_number": 2,
        "block_cache_size": 8 * 1024 * 1024,
    }
