"""The water-level gauges and the diagnosis counter (``streams.ops.water_metrics``)."""

from __future__ import annotations

import math

from prometheus_client import REGISTRY

from scoring.catalog import PROCESS_DIAGNOSIS
from streams.ops import water_metrics
from tests.unit.rollup_fixtures import of
from tests.unit.test_water_level import HISTORY, item, run, utc

LABELS = {"team_id": "T1", "action": "tech_request"}


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels or LABELS)


def test_gauges_show_the_current_month_and_the_latest_closed_one() -> None:
    rollup, out = run(HISTORY)
    before = sample("credence_process_diagnoses_total", action="tech_request") or 0.0
    water_metrics.after_batch(rollup, out, ticked=True)
    assert sample("credence_action_water_level") == 50.0  # December, decided so far
    assert sample("credence_action_water_target") == 95.0
    assert sample("credence_action_water_closed_below") == 0  # November: 100
    assert sample("credence_process_diagnoses_total", action="tech_request") == before + 1
    assert len(of(out, PROCESS_DIAGNOSIS)) == 1

    # a new month with nothing decided: NaN; December, closed below target: 1
    rollup.tick(utc("2027-01-02T00:00:00+08:00"))
    water_metrics.refresh(rollup)
    level = sample("credence_action_water_level")
    assert level is not None and math.isnan(level)
    assert sample("credence_action_water_closed_below") == 1

    water_metrics.clear()
    assert sample("credence_action_water_closed_below") is None


def test_a_batch_without_a_tick_sets_the_teams_it_published() -> None:
    rollup, _ = run(HISTORY)
    water_metrics.clear()
    out = rollup.apply("T1", item("d2", "2026-12-20T10:00:00+08:00", "2026-12-09T10:00:00+08:00",
                                  ts="2026-12-10T12:00:00+08:00"))
    water_metrics.after_batch(rollup, out, ticked=False)
    assert sample("credence_action_water_level") == round(2 / 3 * 100, 2)
