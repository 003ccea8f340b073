"""Water-level gauges, read from the team roll-up's state by the worker that holds the
teams: a closed month's record is published once, and its gauge must survive restarts
and rebalances (every clock tick sets them all again)."""

from __future__ import annotations

from collections.abc import Iterable

from scoring.catalog import ACTION_WATER_LEVELS, PROCESS_DIAGNOSIS
from scoring.rollup.records import Output
from scoring.rollup.team_rollup import TeamRollup
from scoring.rollup.water_level import month_of
from streams.ops import metrics

_GAUGES = (metrics.WATER_LEVEL, metrics.WATER_TARGET, metrics.WATER_CLOSED_BELOW)


def after_batch(rollup: TeamRollup, published: list[Output], ticked: bool) -> None:
    """Count the batch's diagnoses; set the gauges of every team after a clock tick,
    else of the teams whose water levels were published."""
    for record in published:
        if record.topic == PROCESS_DIAGNOSIS:
            metrics.DIAGNOSES.labels(record.value["action"]).inc()
    if ticked:
        refresh(rollup)
    else:
        observe(rollup, {o.value["team_id"] for o in published if o.topic == ACTION_WATER_LEVELS})


def observe(rollup: TeamRollup, team_ids: Iterable[str]) -> None:
    """Set the gauges of ``team_ids`` from their water levels as last published."""
    zone = rollup.cfg.time_zone
    for team_id in team_ids:
        state = rollup.store.load(team_id)
        if state is None:
            continue
        current = month_of(state.clock, zone)
        latest_closed: dict[str, bool] = {}
        for record in rollup.water_levels(team_id):  # by action, then month
            action = record["action"]
            if record["final"]:
                latest_closed[action] = record["below"]
            if record["month"] == current:
                level = record["level"]
                metrics.WATER_LEVEL.labels(team_id, action).set(float("nan") if level is None else level)
            if record["target"] is not None:
                metrics.WATER_TARGET.labels(team_id, action).set(record["target"])
        for action, below in latest_closed.items():
            metrics.WATER_CLOSED_BELOW.labels(team_id, action).set(1 if below else 0)


def refresh(rollup: TeamRollup) -> None:
    """Every team's gauges anew (kinds whose months were all forgotten go)."""
    clear()
    observe(rollup, [state.team_id for state in rollup.store.all()])


def clear() -> None:
    for gauge in _GAUGES:
        gauge.clear()
