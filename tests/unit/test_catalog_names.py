"""The topic name constants of ``scoring.catalog`` are exactly the topics of ``topics.yaml``."""

from __future__ import annotations

from scoring import catalog


def test_every_topic_has_one_constant_and_every_constant_names_a_topic() -> None:
    declared = set(catalog.load_catalog().topics)
    constants = {
        name: value for name, value in vars(catalog).items()
        if name.isupper() and isinstance(value, str)
    }
    assert sorted(constants.values()) == sorted(declared)  # one constant per topic, none extra
    assert set(catalog.BEHAVIOUR_TOPICS) <= declared
