"""The team agent: team updates in, ``team-credibility`` and the weekly heat map out.

All team state fits one worker (a few values per customer of each team, stored
piecewise: see ``streams.processing.team_store``), so its topic has one partition and one worker
holds every team: the heat map is then one consistent snapshot. A leader
timer sends clock ticks into the same topic; the agent re-scores teams as time passes
and publishes the heat map when a Friday 17:00 (configured zone) has passed.

An update whose application raises is dead-lettered (``internal_error``, the update as
payload) and its team rolled back (:meth:`TeamRollup._apply_team`); the batch's other
updates are applied, and the agent moves on.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple, Protocol

import orjson
from faust.types import AppT, EventT

from scoring.bulkhead import internal_error
from scoring.catalog import CREDIBILITY_HEATMAP, TEAM_CREDIBILITY, TEAM_UPDATES
from scoring.rollup.records import Output, records_per_batch
from scoring.rollup.team_rollup import TeamRollup, TeamStore
from scoring.schema import InvalidEvent
from scoring.timeutil import now_ms
from streams.faust_ext.table_options import table_options
from streams.kafka.dead_letters import send_dead_letter
from streams.kafka.publish import Publisher
from streams.kafka.topics import Topics, catalog
from streams.ops import metrics, water_metrics
from streams.processing.team_store import TableTeamStore
from streams.settings import Settings

#: updates applied between two yields to the event loop: a worker's first minutes report
#: every customer's first activity, and applying thousands at once held the signal
#: processor up for 150 ms (measured on Kafka 4.1 with bench/)
APPLY_CHUNK = 200
#: a failed update's dead letter at most (JSON bytes): a team update is under 1 KB, key
#: and detail take at most 3 KB (:mod:`scoring.dead_letters`)
DEAD_UPDATE_BUDGET = 8 * 1024


class _Failed(NamedTuple):
    message: Any  # the faust Message the update came in
    update: Any
    error: InvalidEvent


class FlushedTeamStore(TeamStore, Protocol):
    async def flush(self) -> None:
        """Write what changed since the last flush."""


class TeamAgent(NamedTuple):
    """The team agent's table, store and roll-up, as :func:`register` put them on the app."""

    table: Any  # a faust Table of bytes to bytes
    store: TableTeamStore
    rollup: TeamRollup


def register(app: AppT, settings: Settings, topics: Topics, publisher: Publisher) -> TeamAgent:
    """The team agent on ``app``: its table, the agent, the leader's clock and the
    rebalance hook."""
    table = app.Table(
        "team-state",
        partitions=catalog[TEAM_UPDATES].partitions,
        key_type=bytes,
        value_type=bytes,
        options=table_options(),
    )
    store = TableTeamStore(app, table)
    rollup = TeamRollup(settings.rollup, store)

    @app.agent(topics.team_updates, name=f"{__name__}.score_teams")
    async def score_teams(stream: Any) -> None:
        async for batch in stream.take_events(records_per_batch(settings.batch_max_events), within=settings.batch_within_seconds):
            await handle_batch(batch, rollup, store, publisher)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # mode's signal hints are narrower
    async def forget_cached_teams(sender: Any, **kwargs: Any) -> None:
        store.invalidate()
        metrics.TEAM_SCORE.clear()  # the worker that now owns the teams re-publishes them
        metrics.TEAM_BAND.clear()
        water_metrics.clear()

    @app.timer(settings.team_tick_seconds, on_leader=True)
    async def team_clock() -> None:
        """Move every team's clock to the wall clock (re-scoring, heat map schedule)."""
        now = now_ms()
        await topics.outputs[TEAM_UPDATES].send(key=b"\x00clock", value=orjson.dumps({"kind": "tick", "now": now}))

    return TeamAgent(table, store, rollup)


async def handle_batch(
    batch: list[EventT[Any]], rollup: TeamRollup, store: FlushedTeamStore, publisher: Publisher
) -> None:
    """Team updates are applied in order; teams are scored once per run of updates (of
    at most :data:`APPLY_CHUNK`, between which the event loop runs other tasks)."""
    published: list[Output] = []
    pending: list[tuple[str, dict[str, Any]]] = []
    sources: dict[int, Any] = {}  # id of a pending update -> the message it came in
    failed: list[_Failed] = []
    ticked = False

    def apply_pending() -> None:
        nonlocal published, pending
        published += rollup.apply_many(pending)
        failed.extend(_Failed(sources[id(f.update)], f.update, f.error) for f in rollup.take_failures())
        pending = []
        sources.clear()

    for event in batch:
        message = event.message
        try:
            update = orjson.loads(message.value or b"{}")
            kind = update["kind"]
            if kind in {"tick", "heatmap"}:
                apply_pending()
                if kind == "tick":
                    ticked = True
                    published += rollup.tick(update["now"])
                    failed.extend(_Failed(message, f.update | {"team_id": f.team_id}, f.error)
                                  for f in rollup.take_failures())
                else:
                    published += [
                        Output(o.topic, o.key, {**o.value, "request_id": update.get("request_id")})
                        for o in rollup.heatmap(update["at"])
                    ]
                continue
            team = (message.key or b"").decode()
            updates = update["updates"] if kind == "batch" else [update]  # a batch: one team's from one flush
            if not isinstance(updates, list):
                raise TypeError(f"updates is {type(updates).__name__}, not a list")
        except Exception as exc:  # an unusable record, or a clock tick or heat map request that raised
            failed.append(_Failed(message, None, internal_error(exc)))
            continue
        for u in updates:
            sources[id(u)] = message
            pending.append((team, u))
        if len(pending) >= APPLY_CHUNK:
            apply_pending()
            await asyncio.sleep(0)  # the signal processor's batches run meanwhile
    apply_pending()
    for record in published:
        if record.topic == TEAM_CREDIBILITY:
            _observe(record.value)
        elif record.topic == CREDIBILITY_HEATMAP:
            metrics.HEATMAPS.inc()
    water_metrics.after_batch(rollup, published, ticked)
    await store.flush()
    acks = await publisher.send_outputs(published)
    for failure in failed:
        acks.append(await _dead_letter(publisher, failure))
    await asyncio.gather(*acks)


async def _dead_letter(publisher: Publisher, failure: _Failed) -> Any:
    """Dead-letter a failed update (or an unusable record): the update is the payload,
    partition and offset are its record's; the whole is cut to :data:`DEAD_UPDATE_BUDGET`."""
    message = failure.message
    payload = message.value if failure.update is None else orjson.dumps(failure.update)
    return await send_dead_letter(
        publisher, TEAM_UPDATES, message.partition, message.offset, message.key, payload, failure.error, DEAD_UPDATE_BUDGET
    )


def _observe(team: dict[str, Any]) -> None:
    if team["score"] is None:
        return
    metrics.TEAM_SCORE.labels(team["team_id"], team["region"] or "unknown").set(team["score"])
    for band in ("red", "yellow", "green"):
        metrics.TEAM_BAND.labels(team["team_id"], band).set(1 if team["band"] == band else 0)
