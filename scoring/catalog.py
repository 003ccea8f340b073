"""Loads ``topics.yaml``: the one place topic names, configs and schemas are declared."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scoring.schema import RecordSchema

# Every topic of topics.yaml by name, so that code never spells one (a unit test holds
# these against the file).
DOCUMENT_OPEN = "document-open"
ROLE_LOGIN = "role-login"
RUSH_DELIVERY = "rush-delivery"
STALE_UPDATE = "stale-update"
DIRECTORY_TOPIC = "customer-directory"
SALES_ACTION = "sales-action"
FORECAST_OUTCOME = "forecast-outcome"
SIGNAL_DELTAS = "signal-deltas"
CUSTOMER_SCORES = "customer-scores"
TEAM_CREDIBILITY = "team-credibility"
#: procurement alerts, published from the customer's ledger outbox
ALERTS = "procurement-alerts"
CREDIBILITY_HEATMAP = "credibility-heatmap"
#: per team, action kind and month: the share of items done by their due time
ACTION_WATER_LEVELS = "action-water-levels"
#: a team's action below its water-level target two closed months running, and where it stalls
PROCESS_DIAGNOSIS = "process-diagnosis"
DEAD_LETTER = "dead-letter"
#: the internal topic that carries everything the team roll-up needs, keyed by team
TEAM_UPDATES = "credence-team-updates"
#: the internal topic of the signal processor's timer ticks
RISK_TICKS = "credence-risk-ticks"

#: The four behaviour topics whose events the signal rules consume.
BEHAVIOUR_TOPICS = (DOCUMENT_OPEN, ROLE_LOGIN, RUSH_DELIVERY, STALE_UPDATE)

_IN_CHECKOUT = Path(__file__).resolve().parent.parent / "topics.yaml"
_INSTALLED = Path(sys.prefix) / "share" / "credence" / "topics.yaml"
DEFAULT_PATH = _IN_CHECKOUT if _IN_CHECKOUT.exists() else _INSTALLED


@dataclass(frozen=True)
class TopicSpec:
    """One declared topic. ``name`` is SPEC's name; the cluster name may carry a prefix."""

    name: str
    role: str
    partitions: int
    replication_factor: int
    config: dict[str, str]
    key: str
    value: str
    schema: RecordSchema | None = None

    @property
    def compacted(self) -> bool:
        return self.config.get("cleanup.policy") == "compact"

    @property
    def max_message_bytes(self) -> int:
        return int(self.config["max.message.bytes"])

    @property
    def value_budget(self) -> int:
        """The most a record value Credence writes here may encode to: half the topic's
        ``max.message.bytes``, so that the key and Kafka's record overhead always fit."""
        return self.max_message_bytes // 2


@dataclass(frozen=True)
class Catalog:
    topics: dict[str, TopicSpec] = field(default_factory=dict)

    def __getitem__(self, name: str) -> TopicSpec:
        return self.topics[name]

    def schema(self, name: str) -> RecordSchema:
        schema = self.topics[name].schema
        if schema is None:
            raise KeyError(f"topic {name} has no input schema")
        return schema

    @property
    def inputs(self) -> list[TopicSpec]:
        return [t for t in self.topics.values() if t.role == "input"]


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Read and check ``topics.yaml`` (``CREDENCE_TOPICS_FILE`` overrides the path)."""
    source = Path(path or os.environ.get("CREDENCE_TOPICS_FILE") or DEFAULT_PATH)
    doc: dict[str, Any] = yaml.safe_load(source.read_text())
    defaults = doc.get("defaults", {})
    topics: dict[str, TopicSpec] = {}
    for name, spec in doc["topics"].items():
        config = {**defaults.get("config", {}), **spec.get("config", {})}
        schema = spec.get("schema")
        topics[name] = TopicSpec(
            name=name,
            role=spec["role"],
            partitions=int(spec.get("partitions", defaults.get("partitions", 1))),
            replication_factor=int(
                spec.get("replication_factor", defaults.get("replication_factor", 1))
            ),
            config={k: str(v) for k, v in config.items()},
            key=spec["key"],
            value=spec["value"],
            schema=RecordSchema.from_yaml(name, schema) if schema else None,
        )
    return Catalog(topics)
