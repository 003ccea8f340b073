"""The risk deadline index (``scoring.deadlines``)."""

from __future__ import annotations

import pytest

from scoring.deadlines import DeadlineIndex


@pytest.mark.parametrize(
    ["pushes", "now", "popped", "left"],
    [
        pytest.param([], 100, [], 0, id="empty"),
        pytest.param([(100, "A", 0)], 99, [], 1, id="not yet due"),
        pytest.param([(100, "A", 0)], 100, [("A", 0)], 0, id="due exactly now"),
        pytest.param([(100, "A", 0)], 101, [("A", 0)], 0, id="overdue"),
        pytest.param(
            [(100, "A", 0), (50, "A", 0), (70, "A", 0)], 100, [("A", 0)], 0, id="each customer once"
        ),
        pytest.param(
            [(300, "C", 1), (100, "B", 0), (200, "A", 2)],
            250,
            [("B", 0), ("A", 2)],
            1,
            id="earliest first, later ones stay",
        ),
        pytest.param(
            [(100, "A", 0), (100, "A", 1)], 100, [("A", 0), ("A", 1)], 0, id="per partition"
        ),
    ],
)
def test_pop_due(pushes, now, popped, left):
    index = DeadlineIndex()
    for due, customer, partition in pushes:
        index.push(due, customer, partition)
    assert index.pop_due(now) == popped
    assert len(index) == left
    assert index.pop_due(now) == []


@pytest.mark.parametrize(
    ["dropped", "left"],
    [
        (set(), [("A", 0), ("B", 1), ("C", 2)]),
        ({1}, [("A", 0), ("C", 2)]),
        ({0, 1, 2}, []),
        ({7}, [("A", 0), ("B", 1), ("C", 2)]),
    ],
)
def test_drop_partitions(dropped, left):
    index = DeadlineIndex()
    for due, customer, partition in [(30, "C", 2), (10, "A", 0), (20, "B", 1)]:
        index.push(due, customer, partition)
    index.drop_partitions(dropped)
    assert index.pop_due(1_000) == left


def test_default_partition_is_zero():
    index = DeadlineIndex()
    index.push(1, "A")
    assert index.pop_due(1) == [("A", 0)]
