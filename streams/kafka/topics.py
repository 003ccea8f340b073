"""Every Faust topic object, built from ``topics.yaml``: agents never spell a name."""

from __future__ import annotations

from faust.types import TopicT

from scoring.catalog import (
    ALERTS,
    CREDIBILITY_HEATMAP,
    CUSTOMER_SCORES,
    DEAD_LETTER,
    RISK_TICKS,
    SIGNAL_DELTAS,
    TEAM_CREDIBILITY,
    TEAM_UPDATES,
    Catalog,
    load_catalog,
)
from scoring.engine import SIGNAL_INPUTS, TEAM_INPUTS
from streams.app import app, settings

catalog: Catalog = load_catalog()


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


#: The signal processor's input: every customer-keyed input and its timer ticks.
signal_inputs = _raw_topic(*SIGNAL_INPUTS, *TEAM_INPUTS, RISK_TICKS)
#: The team agent's input: team updates and its clock ticks, one partition.
team_updates = _raw_topic(TEAM_UPDATES)
#: Everything either agent writes, by SPEC topic name.
outputs: dict[str, TopicT] = {
    name: _raw_topic(name)
    for name in (
        SIGNAL_DELTAS, CUSTOMER_SCORES, ALERTS, TEAM_CREDIBILITY,
        CREDIBILITY_HEATMAP, DEAD_LETTER, TEAM_UPDATES, RISK_TICKS,
    )
}
