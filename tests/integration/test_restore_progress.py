"""A restore that cannot finish shows on /metrics (``credence_restore_remaining_records``),
and makes the worker rejoin its group a bounded number of times (``streams.ops.restore_watchdog``).

Only on Apache Kafka: it takes a transaction, which the embedded broker rejects.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.support.workers import Deployment

pytestmark = pytest.mark.kafka

REMAINING = "credence_restore_remaining_records"
STALL_SECONDS = 2
REJOINING = "restore made no progress for 2 s with 1 changelog records left: rejoining the consumer group"


async def commit_a_transaction(bootstrap: str, topic: str, partition: int) -> None:
    """One tombstone in a committed transaction: its commit marker takes the offset after it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="credence-test-marker")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, None, key=b"cust-0", partition=partition)
    finally:
        await producer.stop()


def test_a_stuck_restore_shows_its_remaining_records_and_rejoins_three_times(
    apache_kafka: str, tmp_path: Path
) -> None:
    d = Deployment(apache_kafka, tmp_path, env_extra={"CREDENCE_RESTORE_STALL_SECONDS": str(STALL_SECONDS)})
    d.apply_topics()
    try:
        first = d.start_worker("w1")  # creates the table's changelog topic
        first.wait_ready()
        first.stop()
        # The marker ends partition 0 of the changelog. Faust's recovery (at least once)
        # waits until it has read a record at the last offset before the end, which is the
        # marker's: it never comes, and the worker never processes input again.
        changelog = f"{d.group_id}-customer-signal-state-changelog"
        asyncio.run(commit_a_transaction(apache_kafka, changelog, 0))

        second = d.start_worker("w2")  # its own, empty data folder: restores from the changelog
        end = time.monotonic() + 60
        value = None
        while value != 1:
            assert second.alive, second.log_tail()
            assert time.monotonic() < end, f"{REMAINING} = {value}\n{second.log_tail()}"
            with contextlib.suppress(OSError):  # web server not up yet
                value = second.metric_value(REMAINING)
            time.sleep(0.2)
        # no rebalance can help this one: the worker rejoins its group three times, then
        # stays (with the gauge and the alert), rather than rebalancing the group for ever
        while (log := second.log_path.read_text(errors="replace")).count(REJOINING) < 3:
            assert second.alive, second.log_tail()
            assert time.monotonic() < end, second.log_tail(200)
            time.sleep(0.2)
        joined = re.findall(r"Joined group .* \(generation (\d+)\)", log)
        assert len(set(joined)) >= 4, joined  # the first join and one per rejoin
        assert "(3 of at most 3)" in log and "-- aiokafka partitions" in log  # with the report
        time.sleep(4 * STALL_SECONDS)  # a fourth would come after STALL_SECONDS
        log = second.log_path.read_text(errors="replace")
        assert log.count(REJOINING) == 3
        assert "Worker ready" not in log
        assert second.metric_value(REMAINING) == 1
    finally:
        d.stop()
