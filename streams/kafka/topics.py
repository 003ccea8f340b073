"""Every Faust topic object, built from ``topics.yaml``: agents never spell a name."""

from __future__ import annotations

from faust.types import AppT, TopicT

from scoring.catalog import (
    ACTION_WATER_LEVELS,
    ALERTS,
    CREDIBILITY_HEATMAP,
    CUSTOMER_SCORES,
    DEAD_LETTER,
    PROCESS_DIAGNOSIS,
    RISK_TICKS,
    SIGNAL_DELTAS,
    TEAM_CREDIBILITY,
    TEAM_UPDATES,
    Catalog,
    load_catalog,
)
from scoring.engine import SIGNAL_INPUTS, TEAM_INPUTS

catalog: Catalog = load_catalog()

#: Everything either agent writes, by SPEC topic name.
OUTPUTS = (
    SIGNAL_DELTAS, CUSTOMER_SCORES, ALERTS, TEAM_CREDIBILITY,
    CREDIBILITY_HEATMAP, ACTION_WATER_LEVELS, PROCESS_DIAGNOSIS, DEAD_LETTER, TEAM_UPDATES, RISK_TICKS,
)


class Topics:
    """The deployment's topics (SPEC names behind its ``topic_prefix``) on one app."""

    def __init__(self, app: AppT, prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        #: The signal processor's input: every customer-keyed input and its timer ticks.
        self.signal_inputs = self._raw_topic(*SIGNAL_INPUTS, *TEAM_INPUTS, RISK_TICKS)
        #: The team agent's input: team updates and its clock ticks, one partition.
        self.team_updates = self._raw_topic(TEAM_UPDATES)
        #: Everything either agent writes, by SPEC topic name.
        self.outputs: dict[str, TopicT] = {name: self._raw_topic(name) for name in OUTPUTS}

    def cluster_name(self, name: str) -> str:
        return self.prefix + catalog[name].name

    def logical_name(self, cluster_topic: str) -> str:
        return cluster_topic[len(self.prefix):]

    def _raw_topic(self, *names: str) -> TopicT:
        return self.app.topic(
            *(self.cluster_name(n) for n in names),
            key_serializer="raw",
            value_serializer="raw",
            partitions=catalog[names[0]].partitions,
        )
