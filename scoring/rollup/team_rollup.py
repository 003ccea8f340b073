"""The team stage: team updates in; ``team-credibility``, ``action-water-levels``,
``process-diagnosis`` and heat map records out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from scoring.bulkhead import internal_error
from scoring.catalog import CREDIBILITY_HEATMAP, TEAM_CREDIBILITY
from scoring.rollup.config import RollupConfig
from scoring.rollup.heatmap import boundaries_crossed, last_boundary, snapshot, split_regions
from scoring.rollup.records import Output
from scoring.rollup.team import TeamState
from scoring.rollup.undo import UndoLog
from scoring.schema import InvalidEvent
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
    if kind == "tick":
        return int(update["now"])
    return None


class TeamFailure(NamedTuple):
    """A team update whose application raised: the team is as if it had never come."""

    team_id: str  # empty for a scheduled heat map
    update: dict[str, Any]
    error: InvalidEvent


class TeamRollup:
    def __init__(self, cfg: RollupConfig, store: TeamStore) -> None:
        self.cfg = cfg
        self.store = store
        #: updates that failed since the caller last took them (:meth:`take_failures`)
        self.failures: list[TeamFailure] = []

    def apply(self, team_id: str, update: dict[str, Any]) -> list[Output]:
        return self.apply_many([(team_id, update)])

    def apply_many(self, updates: list[tuple[str, dict[str, Any]]]) -> list[Output]:
        """Apply a batch, then score each touched team once: a big team is not
        re-scored for every one of its updates."""
        by_team: dict[str, list[dict[str, Any]]] = {}
        for team_id, update in updates:
            by_team.setdefault(team_id, []).append(update)
        outputs: list[Output] = []
        for team_id, team_updates in by_team.items():
            outputs += self._apply_team(team_id, team_updates)
        return outputs

    def take_failures(self) -> list[TeamFailure]:
        failures, self.failures = self.failures, []
        return failures

    def tick(self, now: int) -> list[Output]:
        """The clock moved every team to ``now``: re-score them, and publish the heat
        map for every snapshot time passed since the last one (the first tick only
        starts the schedule: a new deployment does not back-fill old weeks)."""
        outputs: list[Output] = []
        for state in self.store.all():
            outputs += self._apply_team(state.team_id, [{"kind": "tick", "now": now}])
        last = self.store.last_heatmap()
        if last is None:
            self.store.set_last_heatmap(last_boundary(now, self.cfg))
            return outputs
        for at in boundaries_crossed(last, now, self.cfg):
            try:
                outputs += self.heatmap(at, trigger="schedule")
            except Exception as exc:  # that week's heat map is missed, not every tick's scores
                self.failures.append(TeamFailure("", {"kind": "heatmap", "at": at}, internal_error(exc)))
            self.store.set_last_heatmap(at)
        return outputs

    def heatmap(self, at: int, trigger: str = "on_demand") -> list[Output]:
        """``credibility-heatmap`` records as of ``at``: one per region, or its parts
        when it would not fit one (:func:`~scoring.rollup.heatmap.split_regions`)."""
        return [
            Output(CREDIBILITY_HEATMAP, r["region"], {**r, "trigger": trigger})
            for r in split_regions(snapshot(self.store.all(), at, self.cfg), self.cfg.heatmap_record_bytes)
        ]

    def _apply_team(self, team_id: str, updates: list[dict[str, Any]]) -> list[Output]:
        """One team's updates (or clock tick), then its score, behind the bulkhead: an
        update that raises is reported and undone (the team's undo log, rolled back to
        where the update began). If scoring raises, the team goes back to where it was
        before the updates, which are applied again one at a time, to fail only the one
        that raises, as a replay (which applies one at a time) would."""
        stored = self.store.load(team_id)
        state = stored or TeamState(team_id)
        undo = state.undo = UndoLog()
        try:
            applied: list[dict[str, Any]] = []
            for update in updates:
                mark = len(undo)
                try:
                    self._accumulate(state, update)
                except Exception as exc:  # an InvalidEvent (over capacity) keeps its reason
                    error = exc if isinstance(exc, InvalidEvent) else internal_error(exc)
                    self.failures.append(TeamFailure(team_id, update, error))
                    state.rollback(mark)
                else:
                    applied.append(update)
            if not applied and stored is None:
                return []  # a new team that nothing was applied to
            try:
                return self._publish(state, diagnose=any(u["kind"] == "tick" for u in applied))
            except Exception as exc:
                state.rollback()
                if stored is not None:
                    self.store.save(state)
                if len(applied) <= 1:
                    self.failures += [TeamFailure(team_id, u, internal_error(exc)) for u in applied]
                    return []
        finally:
            state.undo = None
        outputs: list[Output] = []
        for update in applied:
            outputs += self._apply_team(team_id, [update])
        return outputs

    def water_levels(self, team_id: str) -> list[dict[str, Any]]:
        """The team's current ``action-water-levels`` values, by action then month."""
        state = self.store.load(team_id)
        if state is None:
            return []
        return [state.water.published[k] for k in sorted(state.water.published, key=lambda k: k.rpartition("|")[::2])]

    def latest_diagnosis(self, team_id: str) -> dict[str, Any] | None:
        """The team's latest ``process-diagnosis`` value (its latest pair of months)."""
        state = self.store.load(team_id)
        return state.water.latest_diagnosis() if state is not None else None

    def _accumulate(self, state: TeamState, update: dict[str, Any]) -> None:
        if update["kind"] != "tick":
            state.apply(update, self.cfg)
        state.advance_clock(update_time(update) or state.clock)

    def settle(self, at: int) -> list[Output]:
        """The end of a replay without ``--now``: every team's water levels and due
        diagnoses as of ``at`` (the replay's wall clock) where that is past the team's
        clock, as a live worker's clock ticks would have closed its months by now. Team
        scores stay as of the team's own clock (the newest event time)."""
        outputs: list[Output] = []
        for state in self.store.all():
            try:
                outputs += state.water.publish(state, self.cfg, clock=at)
            except Exception as exc:
                self.failures.append(TeamFailure(state.team_id, {"kind": "tick", "now": at}, internal_error(exc)))
                continue
            self.store.save(state)
        return outputs

    def _publish(self, state: TeamState, diagnose: bool) -> list[Output]:
        """Score the team as of its clock; publish only changed records. Diagnoses wait
        for a clock tick: a month closed by an event is often followed by late reports
        of its items, and a diagnosis is wanted once, on the whole month."""
        state.forget_before(state.clock, self.cfg)
        record = state.publish_if_changed(state.clock, self.cfg)
        water = state.water.publish(state, self.cfg, diagnose)
        self.store.save(state)
        return ([Output(TEAM_CREDIBILITY, state.team_id, record)] if record else []) + water
