"""The team agent: team updates in, ``team-credibility`` and the weekly heat map out.

All team state fits one worker (a few values per customer of each team, stored
piecewise: see ``streams.team_store``), so its topic has one partition and one worker
holds every team: the heat map is then one consistent snapshot. A leader
timer sends clock ticks into the same topic; the agent re-scores teams as time passes
and publishes the heat map when a Friday 17:00 (configured zone) has passed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from faust.types import EventT

from scoring.rollup.records import TEAM_UPDATES, Output, records_per_batch
from scoring.rollup.team_rollup import TeamRollup
from scoring.timeutil import now_ms
from streams import metrics
from streams.app import app, settings
from streams.channels import catalog, outputs, team_updates
from streams.publish import send_outputs
from streams.team_store import TableTeamStore

team_table = app.Table(
    "team-state",
    partitions=catalog[TEAM_UPDATES].partitions,
    key_type=bytes,
    value_type=bytes,
)
store = TableTeamStore(app, team_table)
#: updates applied between two yields to the event loop: a worker's first minutes report
#: every customer's first activity, and applying thousands at once held the signal
#: processor up for 150 ms (measured on Kafka 4.1 with bench/)
APPLY_CHUNK = 200
rollup = TeamRollup(settings.rollup, store)


@app.agent(team_updates)
async def score_teams(stream: Any) -> None:
    async for batch in stream.take_events(records_per_batch(settings.batch_max_events), within=settings.batch_within_seconds):
        await handle_batch(batch)


async def handle_batch(batch: list[EventT[Any]]) -> None:
    """Team updates are applied in order; teams are scored once per run of updates (of
    at most :data:`APPLY_CHUNK`, between which the event loop runs other tasks)."""
    published: list[Output] = []
    pending: list[tuple[str, dict[str, Any]]] = []
    for event in batch:
        update = orjson.loads(event.message.value or b"{}")
        kind = update["kind"]
        if kind in {"tick", "heatmap"}:
            published += rollup.apply_many(pending)
            pending = []
            if kind == "tick":
                published += rollup.tick(update["now"])
            else:
                published += [
                    Output(o.topic, o.key, {**o.value, "request_id": update.get("request_id")})
                    for o in rollup.heatmap(update["at"])
                ]
            continue
        team = (event.message.key or b"").decode()
        if kind == "batch":  # the signal processor's updates for one team from one flush
            pending += [(team, u) for u in update["updates"]]
        else:
            pending.append((team, update))
        if len(pending) >= APPLY_CHUNK:
            published += rollup.apply_many(pending)
            pending = []
            await asyncio.sleep(0)  # the signal processor's batches run meanwhile
    published += rollup.apply_many(pending)
    for record in published:
        if record.topic == "team-credibility":
            _observe(record.value)
        elif record.topic == "credibility-heatmap":
            metrics.HEATMAPS.inc()
    await store.flush()
    await asyncio.gather(*await send_outputs(published))


def _observe(team: dict[str, Any]) -> None:
    if team["score"] is None:
        return
    metrics.TEAM_SCORE.labels(team["team_id"], team["region"] or "unknown").set(team["score"])
    for band in ("red", "yellow", "green"):
        metrics.TEAM_BAND.labels(team["team_id"], band).set(1 if team["band"] == band else 0)


@app.on_rebalance_complete.connect  # type: ignore[arg-type]  # mode's signal hints are narrower
async def forget_cached_teams(sender: Any, **kwargs: Any) -> None:
    store.invalidate()
    metrics.TEAM_SCORE.clear()  # the worker that now owns the teams re-publishes them
    metrics.TEAM_BAND.clear()


@app.timer(settings.team_tick_seconds, on_leader=True)
async def team_clock() -> None:
    """Move every team's clock to the wall clock (re-scoring, heat map schedule)."""
    now = now_ms()
    await outputs[TEAM_UPDATES].send(key=b"\x00clock", value=orjson.dumps({"kind": "tick", "now": now}))
