"""Every Faust topic object, built from ``topics.yaml``: agents never spell a name."""

from __future__ import annotations

from faust.types import TopicT

from scoring.catalog import Catalog, load_catalog
from scoring.engine import SIGNAL_INPUTS
from streams.app import app, settings

catalog: Catalog = load_catalog()
RISK_TICKS = "credence-risk-ticks"


def cluster_name(name: str) -> str:
    return settings.topic_prefix + catalog[name].name


def logical_name(cluster_topic: str) -> str:
    return cluster_topic[len(settings.topic_prefix):]


def _raw_topic(*names: str) -> TopicT:
    return app.topic(
        *(cluster_name(n) for n in names),
        key_serializer="raw",
        value_serializer="raw",
        partitions=catalog[names[0]].partitions,
    )


#: The signal agent's one input channel: behaviour topics, the directory and timer ticks.
signal_inputs = _raw_topic(*SIGNAL_INPUTS, RISK_TICKS)
risk_ticks = _raw_topic(RISK_TICKS)
signal_deltas = _raw_topic("signal-deltas")
dead_letter = _raw_topic("dead-letter")
