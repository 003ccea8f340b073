"""When the restore watchdog rejoins the group (``streams.ops.restore_stall.StallDetector``)."""

from __future__ import annotations

from streams.ops.restore_stall import StallDetector


def feed(detector: StallDetector, samples: list[tuple[float, int]]) -> list[float]:
    """The times at which it says to rejoin."""
    return [t for t, remaining in samples if detector.should_rejoin(remaining, t)]


def test_a_restore_that_keeps_reading_never_rejoins():
    samples = [(float(t), 10_000 - 100 * t) for t in range(100)]
    assert feed(StallDetector(30, 3), samples) == []


def test_a_restore_stuck_for_the_stall_time_rejoins_then_every_stall_time_at_most_three_times():
    samples = [(float(t), 500) for t in range(200)]
    assert feed(StallDetector(30, 3), samples) == [30.0, 60.0, 90.0]


def test_no_restore_is_never_stuck():
    assert feed(StallDetector(30, 3), [(float(t), 0) for t in range(100)]) == []


def test_progress_starts_the_count_again():
    detector = StallDetector(30, 1)
    stuck = [(float(t), 500) for t in range(40)]
    moving = [(40.0, 400)]
    stuck_again = [(float(t), 400) for t in range(41, 100)]
    assert feed(detector, stuck + moving + stuck_again) == [30.0, 70.0]


def test_a_new_restore_after_a_stuck_one_rejoins_once_it_is_stuck_itself():
    detector = StallDetector(30, 1)
    first = [(float(t), 500) for t in range(40)]  # rejoins at 30, then gives up
    done = [(40.0, 0)]
    second = [(float(t), 800) for t in range(41, 100)]
    assert feed(detector, first + done + second) == [30.0, 71.0]


def test_reading_again_after_a_rejoin_what_was_read_before_is_no_progress():
    detector = StallDetector(30, 1)
    stuck = [(float(t), 500) for t in range(40)]
    restarted = [(40.0, 900), (41.0, 700)] + [(float(t), 500) for t in range(42, 200)]
    assert feed(detector, stuck + restarted) == [30.0]  # and no more: the cap holds
