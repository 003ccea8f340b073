"""Fixtures of the unit suite; the data factories themselves live in ``fixtures.py``."""

from __future__ import annotations

import pytest

from scoring.catalog import Catalog
from scoring.customer import CustomerState
from scoring.engine import DictStore, SignalEngine
from scoring.signal_catalogue import SignalCatalogue
from tests.unit.fixtures import CUSTOMER, catalog, rules


@pytest.fixture
def cfg() -> SignalCatalogue:
    return rules()


@pytest.fixture
def cat() -> Catalog:
    return catalog()


@pytest.fixture
def state() -> CustomerState:
    return CustomerState(CUSTOMER)


@pytest.fixture
def engine(cat: Catalog, cfg: SignalCatalogue) -> SignalEngine:
    return SignalEngine(cat, cfg, DictStore())
