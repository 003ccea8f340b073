"""Survivors of a full collection are frozen; the sweep still collects frozen cycles."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streams.ops import gc_freeze


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only a collection frees it


@pytest.fixture
def freezing() -> Iterator[None]:
    gc.callbacks.append(gc_freeze.freeze_survivors)
    try:
        yield
    finally:
        gc.callbacks.remove(gc_freeze.freeze_survivors)
        gc.unfreeze()
        gc.collect()


def test_a_full_collection_freezes_what_survives_it(freezing: None) -> None:
    survivors = [[i] for i in range(1_000)]
    gc.collect()
    frozen = gc.get_freeze_count()
    assert frozen >= len(survivors)
    gc.collect(1)  # a younger collection freezes nothing
    assert gc.get_freeze_count() == frozen


def test_the_sweep_collects_a_frozen_cycle_that_became_garbage(freezing: None) -> None:
    node = Node()
    alive = weakref.ref(node)
    gc.collect()  # node survives and is frozen
    del node
    gc.collect()
    assert alive() is not None  # frozen: no full collection looks at it any more
    gc_freeze.sweep()
    assert alive() is None
    assert gc.get_freeze_count() > 0  # what survived the sweep is frozen again


def test_batch_collections_collect_young_objects_less_often_and_leave_the_collector_as_it_was() -> None:
    before = gc.get_threshold()
    with gc_freeze.batch_collections():
        assert gc.get_threshold() == (gc_freeze.BATCH_YOUNG_THRESHOLD, *before[1:])
        survivors = [[i] for i in range(1_000)]
        gc.collect()
        assert gc.get_freeze_count() >= len(survivors)  # as in a worker
    assert gc.get_threshold() == before
    assert gc_freeze.freeze_survivors not in gc.callbacks
    assert gc.get_freeze_count() == 0
