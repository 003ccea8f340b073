"""Fixtures of the unit suite; the data factories themselves live in ``fixtures.py``."""

from __future__ import annotations

import pytest

from scoring.catalog import Catalog
from scoring.config import RuleConfig
from scoring.customer import CustomerState
from scoring.engine import DictStore, SignalEngine
from tests.unit.fixtures import CUSTOMER, catalog


@pytest.fixture
def cfg() -> RuleConfig:
    return RuleConfig()


@pytest.fixture
def cat() -> Catalog:
    return catalog()


@pytest.fixture
def state() -> CustomerState:
    return CustomerState(CUSTOMER)


@pytest.fixture
def engine(cat: Catalog, cfg: RuleConfig) -> SignalEngine:
    return SignalEngine(cat, cfg, DictStore())
