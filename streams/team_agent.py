"""The team agent: team updates in, ``team-credibility`` and the weekly heat map out.

Team state is small (one value per sales team), so its topic has one partition and
one worker holds every team: the heat map is then one consistent snapshot. A leader
timer sends clock ticks into the same topic; the agent re-scores teams as time passes
and publishes the heat map when a Friday 17:00 (configured zone) has passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import orjson
from faust.types import EventT

from scoring.rollup.records import TEAM_UPDATES, Output
from scoring.rollup.team import TeamState
from scoring.rollup.team_rollup import TeamRollup
from streams import metrics
from streams.app import app, settings
from streams.channels import catalog, outputs, team_updates
from streams.signal_agent import send_outputs

_HEATMAP_KEY = b"\x00last-heatmap"

team_table = app.Table(
    "team-state",
    partitions=catalog[TEAM_UPDATES].partitions,
    key_type=bytes,
    value_type=bytes,
)


class TableTeamStore:
    """Team states in the Faust table; written under the current (update) event."""

    def load(self, team_id: str) -> TeamState | None:
        raw = team_table.get(team_id.encode())
        return TeamState.from_json(orjson.loads(raw)) if raw else None

    def save(self, state: TeamState) -> None:
        team_table[state.team_id.encode()] = orjson.dumps(state.to_json())

    def all(self) -> Iterable[TeamState]:
        return [
            TeamState.from_json(orjson.loads(raw))
            for key, raw in list(team_table.items())
            if key != _HEATMAP_KEY
        ]

    def last_heatmap(self) -> int | None:
        raw = team_table.get(_HEATMAP_KEY)
        return int(raw) if raw else None

    def set_last_heatmap(self, at: int) -> None:
        team_table[_HEATMAP_KEY] = str(at).encode()


rollup = TeamRollup(settings.rollup, TableTeamStore())


@app.agent(team_updates)
async def score_teams(stream: Any) -> None:
    async for event in stream.events():
        await handle_update(event)


async def handle_update(event: EventT[Any]) -> None:
    update = orjson.loads(event.message.value or b"{}")
    kind = update["kind"]
    if kind == "tick":
        published = rollup.tick(update["now"])
    elif kind == "heatmap":
        published = [
            Output(o.topic, o.key, {**o.value, "request_id": update.get("request_id")})
            for o in rollup.heatmap(update["at"])
        ]
    else:
        published = rollup.apply((event.message.key or b"").decode(), update)
    for record in published:
        if record.topic == "team-credibility":
            _observe(record.value)
        elif record.topic == "credibility-heatmap":
            metrics.HEATMAPS.inc()
    await asyncio.gather(*await send_outputs(published))


def _observe(team: dict[str, Any]) -> None:
    if team["score"] is None:
        return
    metrics.TEAM_SCORE.labels(team["team_id"], team["region"] or "unknown").set(team["score"])
    for band in ("red", "yellow", "green"):
        metrics.TEAM_BAND.labels(team["team_id"], band).set(1 if team["band"] == band else 0)


@app.timer(settings.team_tick_seconds, on_leader=True)
async def team_clock() -> None:
    """Move every team's clock to the wall clock (re-scoring, heat map schedule)."""
    now = time.time_ns() // 1_000_000
    await outputs[TEAM_UPDATES].send(key=b"\x00clock", value=orjson.dumps({"kind": "tick", "now": now}))
