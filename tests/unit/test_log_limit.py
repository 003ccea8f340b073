"""Repeated log messages are rate-limited (``streams.ops.log_limit``)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from streams.ops import log_limit
from streams.ops.log_limit import RepeatFilter

CONNECT = "Unable connect to node with id %s: %s"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(log_limit, "monotonic", clock)
    return clock


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose one handler writes to a buffer, with the filter installed as the
    worker installs it (on the root logger's handlers, here on a private logger's)."""
    out = io.StringIO()
    logger = logging.getLogger("test_log_limit")
    logger.propagate = False
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    log_limit.install(logger)
    yield logger, out
    logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_an_outage_logs_a_few_lines_then_a_summary_per_window(
    logged: tuple[logging.Logger, io.StringIO], clock: Clock
) -> None:
    logger, out = logged
    for i in range(1000):
        logger.error(CONNECT, 1, f"attempt {i}")
        clock.now += 0.005  # 1 000 attempts in 5 s
    assert lines(out) == [f"Unable connect to node with id 1: attempt {i}" for i in range(5)]
    clock.now += 6
    logger.error(CONNECT, 1, "again")
    assert lines(out)[5] == "Unable connect to node with id 1: again (suppressed 995 similar in the last 11s)"
    logger.error(CONNECT, 1, "once more")
    assert len(lines(out)) == 7  # a new window


def test_other_messages_and_lower_levels_are_not_held_back(
    logged: tuple[logging.Logger, io.StringIO], clock: Clock
) -> None:
    logger, out = logged
    logger.setLevel(logging.INFO)
    for _ in range(20):
        logger.error(CONNECT, 1, "refused")
        logger.warning("Heartbeat failed")
        logger.info("Fetched %s records", 5)
    text = lines(out)
    assert text.count("Unable connect to node with id 1: refused") == 5
    assert text.count("Heartbeat failed") == 5
    assert text.count("Fetched 5 records") == 20


def test_a_record_gets_the_same_answer_from_every_handler(clock: Clock) -> None:
    repeat = RepeatFilter(repeats=1)
    first, second = logging.makeLogRecord({"msg": "x", "levelno": logging.ERROR}), \
        logging.makeLogRecord({"msg": "x", "levelno": logging.ERROR})
    assert [repeat.filter(first), repeat.filter(first)] == [True, True]
    assert [repeat.filter(second), repeat.filter(second)] == [False, False]


def test_kinds_whose_window_ended_are_forgotten_when_there_are_many(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    monkeypatch.setattr(log_limit, "MAX_KINDS", 10)
    repeat = RepeatFilter()
    for i in range(10):
        assert repeat.filter(logging.makeLogRecord({"msg": f"seek failed: {i}", "levelno": logging.WARNING}))
    clock.now += 5
    for i in range(10, 15):  # still within the first ones' window: nothing to forget
        repeat.filter(logging.makeLogRecord({"msg": f"seek failed: {i}", "levelno": logging.WARNING}))
    assert len(repeat._windows) == 15
    clock.now += 6  # the first ten windows have ended
    repeat.filter(logging.makeLogRecord({"msg": "seek failed: 15", "levelno": logging.WARNING}))
    assert len(repeat._windows) == 6
