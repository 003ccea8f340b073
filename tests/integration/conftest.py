"""Broker fixtures: the same scenarios run against Tansu and Apache Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka.embedded_broker import EmbeddedBroker
from tests.support.apache_kafka import ApacheKafka
from tests.support.workers import Deployment


@pytest.fixture(scope="session")
def tansu() -> Iterator[str]:
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def apache_kafka() -> Iterator[str]:
    with ApacheKafka() as kafka:
        yield kafka.bootstrap


@pytest.fixture(
    params=[
        pytest.param("tansu", marks=pytest.mark.tansu),
        pytest.param("apache_kafka", marks=pytest.mark.kafka),
    ]
)
def bootstrap(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def deployment(bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    d = Deployment(bootstrap, tmp_path)
    d.apply_topics()
    yield d
    d.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for worker in d.workers:
            print(f"--- {worker.name} log ---\n{worker.log_tail(80)}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
