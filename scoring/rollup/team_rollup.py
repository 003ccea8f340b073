"""The team stage: team updates in, ``team-credibility`` and heat map records out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from scoring.rollup.config import RollupConfig
from scoring.rollup.heatmap import boundaries_crossed, last_boundary, snapshot, split_regions
from scoring.rollup.records import Output
from scoring.rollup.team import TeamState
from scoring.timeutil import parse_ts


class TeamStore(Protocol):
    def load(self, team_id: str) -> TeamState | None: ...

    def save(self, state: TeamState) -> None: ...

    def all(self) -> Iterable[TeamState]: ...

    def last_heatmap(self) -> int | None: ...

    def set_last_heatmap(self, at: int) -> None: ...


class DictTeamStore:
    def __init__(self) -> None:
        self.teams: dict[str, TeamState] = {}
        self._last_heatmap: int | None = None

    def last_heatmap(self) -> int | None:
        return self._last_heatmap

    def set_last_heatmap(self, at: int) -> None:
        self._last_heatmap = at

    def load(self, team_id: str) -> TeamState | None:
        return self.teams.get(team_id)

    def save(self, state: TeamState) -> None:
        self.teams[state.team_id] = state

    def all(self) -> Iterable[TeamState]:
        return list(self.teams.values())


def update_time(update: dict[str, Any]) -> int | None:
    """The event time an update speaks for (it moves the team's clock)."""
    kind = update["kind"]
    if kind == "customer":
        times = [t for t in (update.get("as_of"), update.get("activity_ts")) if t is not None]
        return max(times) if times else None
    if kind == "delta":
        return parse_ts(update["ts"])
    if kind in {"action", "outcome"}:
        return int(update["ts"])
    return None


class TeamRollup:
    def __init__(self, cfg: RollupConfig, store: TeamStore) -> None:
        self.cfg = cfg
        self.store = store

    def apply(self, team_id: str, update: dict[str, Any]) -> list[Output]:
        return self.apply_many([(team_id, update)])

    def apply_many(self, updates: list[tuple[str, dict[str, Any]]]) -> list[Output]:
        """Apply a batch, then score each touched team once: a big team is not
        re-scored for every one of its updates."""
        touched: dict[str, TeamState] = {}
        for team_id, update in updates:
            state = touched.get(team_id) or self.store.load(team_id) or TeamState(team_id)
            state.apply(update, self.cfg)
            state.advance_clock(update_time(update) or state.clock)
            touched[team_id] = state
        outputs: list[Output] = []
        for state in touched.values():
            outputs += self._publish(state)
        return outputs

    def tick(self, now: int) -> list[Output]:
        """The clock moved every team to ``now``: re-score them, and publish the heat
        map for every snapshot time passed since the last one (the first tick only
        starts the schedule: a new deployment does not back-fill old weeks)."""
        outputs: list[Output] = []
        for state in self.store.all():
            state.advance_clock(now)
            outputs += self._publish(state)
        last = self.store.last_heatmap()
        if last is None:
            self.store.set_last_heatmap(last_boundary(now, self.cfg))
            return outputs
        for at in boundaries_crossed(last, now, self.cfg):
            outputs += self.heatmap(at, trigger="schedule")
            self.store.set_last_heatmap(at)
        return outputs

    def heatmap(self, at: int, trigger: str = "on_demand") -> list[Output]:
        """``credibility-heatmap`` records as of ``at``: one per region, or its parts
        when it would not fit one (:func:`~scoring.rollup.heatmap.split_regions`)."""
        return [
            Output("credibility-heatmap", r["region"], {**r, "trigger": trigger})
            for r in split_regions(snapshot(self.store.all(), at, self.cfg), self.cfg.heatmap_record_bytes)
        ]

    def _publish(self, state: TeamState) -> list[Output]:
        """Score the team as of its clock; publish only a changed record."""
        state.forget_before(state.clock, self.cfg)
        record = state.publish_if_changed(state.clock, self.cfg)
        self.store.save(state)
        return [Output("team-credibility", state.team_id, record)] if record else []
