"""A worker's SIGUSR1 dump shows its consumer (``streams/faust_ext/diagnostics.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.workers import Deployment

pytestmark = pytest.mark.tansu


def test_the_stack_dump_shows_the_consumer_thread_and_each_partition(tansu: str, tmp_path: Path) -> None:
    d = Deployment(tansu, tmp_path)
    d.apply_topics()
    try:
        worker = d.start_worker()
        worker.wait_ready()
        dump = worker.stacks()
    finally:
        d.stop()
    report = dump[dump.rindex("CONSUMER\n"):]
    assert "unavailable" not in report, report  # faust or aiokafka changed what it reads
    assert f"{d.prefix}document-open/0: position=" in report
    assert "customer-signal-state-changelog/5: read up to" in report
    assert "_fetch_requests_routine" in report  # a task of the consumer thread's loop
