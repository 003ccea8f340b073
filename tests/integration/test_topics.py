"""``credence topics apply|check`` against a real broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from scoring.catalog import load_catalog


def _credence(bootstrap: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CREDENCE_TOPIC_PREFIX": prefix}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "topics", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )


async def _create(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs={"retention.ms": "1000"})])
    finally:
        await admin.close()


def test_apply_then_check_is_clean(bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    assert _credence(bootstrap, prefix, "check").returncode == 1  # nothing there yet
    applied = _credence(bootstrap, prefix, "apply")
    assert applied.returncode == 0, applied.stderr
    assert f"created {len(load_catalog().topics)} topic(s)" in applied.stdout
    again = _credence(bootstrap, prefix, "apply")
    assert "created 0 topic(s)" in again.stdout
    checked = _credence(bootstrap, prefix, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "topics match topics.yaml" in checked.stdout


def test_check_reports_drift(bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    asyncio.run(_create(bootstrap, prefix + "role-login", 2))
    assert _credence(bootstrap, prefix, "apply").returncode == 0
    checked = _credence(bootstrap, prefix, "check")
    assert checked.returncode == 1
    drift = [line for line in checked.stdout.splitlines() if line.startswith("drift:")]
    assert f"drift: {prefix}role-login: partitions 2 != 6" in drift
    assert f"drift: {prefix}role-login: retention.ms='1000', expected '604800000'" in drift
    assert all(prefix + "role-login" in line for line in drift)
