"""``credence topics apply|check``: make the cluster match ``topics.yaml``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from scoring.catalog import Catalog, TopicSpec
from streams.kafka.client import client_options
from streams.settings import Settings


@dataclass(frozen=True)
class Drift:
    topic: str
    problem: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.problem}"


def cluster_name(settings: Settings, spec: TopicSpec) -> str:
    return settings.topic_prefix + spec.name


async def apply_topics(settings: Settings, catalog: Catalog) -> list[str]:
    """Create every declared topic that is missing; return the names created."""
    admin = AIOKafkaAdminClient(**client_options(settings), client_id="credence-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=cluster_name(settings, spec),
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                topic_configs=dict(spec.config),
            )
            for spec in catalog.topics.values()
            if cluster_name(settings, spec) not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            partitions = await _wait_for_leaders(admin, [t.name for t in missing])
            await _wait_until_leaders_answer(settings, partitions)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: list[str], deadline_s: float = 30.0
) -> list[TopicPartition]:
    """Return every partition of ``names`` once each has a leader: a topic is not usable
    the moment CreateTopics answers (producers get NotLeaderForPartition)."""
    end = time.monotonic() + deadline_s
    while True:
        described = await admin.describe_topics(names)
        if all(
            t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ):
            return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
        if time.monotonic() > end:
            raise TimeoutError(f"topics without leaders after {deadline_s}s: {names}")
        await asyncio.sleep(0.1)


async def _wait_until_leaders_answer(
    settings: Settings, partitions: list[TopicPartition], deadline_s: float = 30.0
) -> None:
    """Return once every new partition's leader answers ListOffsets: a broker named
    leader in the metadata may still refuse requests for a moment."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        end = time.monotonic() + deadline_s
        while True:
            try:
                await consumer.end_offsets(partitions)
                return
            except KafkaError:
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await consumer.stop()


async def check_topics(settings: Settings, catalog: Catalog) -> list[Drift]:
    """Compare the cluster with ``topics.yaml``: missing topics, partitions, configs."""
    admin = AIOKafkaAdminClient(**client_options(settings), client_id="credence-admin")
    await admin.start()
    try:
        names = {cluster_name(settings, s): s for s in catalog.topics.values()}
        existing = set(await admin.list_topics())
        drift = [Drift(n, "missing") for n in names if n not in existing]
        present = [n for n in names if n in existing]
        if not present:
            return drift
        for meta in await admin.describe_topics(present):
            spec = names[meta["topic"]]
            partitions = len(meta["partitions"])
            if partitions != spec.partitions:
                drift.append(Drift(meta["topic"], f"partitions {partitions} != {spec.partitions}"))
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in present]
        )
        for response in responses:
            for resource in response.resources:
                _, _, _, name, entries = resource[:5]
                actual = {entry[0]: entry[1] for entry in entries}
                for key, wanted in names[name].config.items():
                    if actual.get(key) != wanted:
                        drift.append(Drift(name, f"{key}={actual.get(key)!r}, expected {wanted!r}"))
        return drift
    finally:
        await admin.close()
