"""``credence rules diff`` on a cluster: the retained input topics, read to their end,
give the same report as ``--log`` with the same events, and the read leaves no trace
(no consumer group, no committed offset, no record, no topic)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from scoring.replay import LogRecord
from streams.cli.main import main
from tests.support.workers import Deployment
from tests.unit.rulediff_fixtures import EXPECTED, NOW, log_text, rules_files, scenario, summarised


async def _produce(bootstrap: str, prefix: str, records: list[LogRecord]) -> None:
    """Each record stamped with its event time (the directory's with the first one):
    the order a worker, and the dry run, apply them in."""
    first = min(orjson.loads(r.value or b"{}").get("ts", NOW) for r in records)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)  # batches of several records
    await producer.start()
    try:
        sent = [await producer.send(prefix + r.topic, r.value, key=r.key,
                                    timestamp_ms=orjson.loads(r.value or b"{}").get("ts", first))
                for r in records]  # fmt: skip
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _cluster_state(bootstrap: str, prefix: str) -> tuple[Any, ...]:
    """Consumer groups, topics, and the end offset of every partition of the deployment."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        groups = sorted(g[0] for g in await admin.list_consumer_groups())
        topics = sorted(t["topic"] for t in await admin.describe_topics())
        partitions = [TopicPartition(t["topic"], p["partition"]) for t in await admin.describe_topics()
                      if t["topic"].startswith(prefix) for p in t["partitions"]]  # fmt: skip
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return groups, topics, sorted((tp.topic, tp.partition, end) for tp, end in ends.items())


def test_the_cluster_diff_equals_the_log_diff(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_files(monkeypatch, tmp_path)
    records = scenario()
    asyncio.run(_produce(deployment.bootstrap, deployment.prefix, records))
    log = tmp_path / "events.jsonl"
    log.write_bytes(log_text(records))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", deployment.bootstrap)
    monkeypatch.setenv("CREDENCE_TOPIC_PREFIX", deployment.prefix)
    before = asyncio.run(_cluster_state(deployment.bootstrap, deployment.prefix))

    assert main(["rules", "diff", "draft.yaml", "--now", str(NOW), "--json"]) == 0
    from_cluster = capsys.readouterr()
    assert main(["rules", "diff", "draft.yaml", "--now", str(NOW), "--json", "--log", str(log)]) == 0
    from_log = capsys.readouterr()

    assert from_cluster.out == from_log.out
    assert summarised(orjson.loads(from_cluster.out)) == EXPECTED
    assert f"read {len(records)} records from the input topics" in from_cluster.err
    assert asyncio.run(_cluster_state(deployment.bootstrap, deployment.prefix)) == before


def test_missing_topics_are_named(bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rules_files(monkeypatch, tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("CREDENCE_TOPIC_PREFIX", "never-applied.")
    with pytest.raises(SystemExit, match=r"no such topic on the cluster: never-applied\.document-open, "):
        main(["rules", "diff", "draft.yaml"])
