"""Web views on the worker's web port: team scores, traceability lists, the heat map.

| path | answer |
|---|---|
| ``GET /teams`` | every scored team's ``team-credibility`` record as of now, sorted by team |
| ``GET /teams/{team_id}`` | the team page (HTML): score, components, monthly water levels, latest diagnosis (404 for a team that has sent nothing) |
| ``GET /teams/{team_id}.json`` | the same as JSON: ``credibility`` (the record, ``null`` without a score), ``water_levels``, ``diagnosis``, ``diagnosis_words`` |
| ``GET /teams/{team_id}/traceability.csv[?week=YYYY-MM-DD]`` | the team's signal traceability list (bearer token) |
| ``GET /heatmap`` | the regional heat map as of now, as an HTML page |
| ``GET /heatmap.json`` | the same data as JSON (without traceability lists: they hold IP addresses) |

``week`` picks the heat map week: its snapshot time ``at`` is the first Friday 17:00
(the configured schedule and zone, ``CREDENCE_TIME_ZONE``) at or after 00:00 local time
of that date, and the list holds the team's deltas with trigger time in
``[at - 7 days, at)``, the week the heat map published at ``at`` covers. Without
``week``: the latest snapshot time at or before now. Deltas older than the team's
trace retention (35 days) are gone. Without ``CREDENCE_WEB_TOKEN`` the endpoint
answers 403; without or with a wrong ``Authorization: Bearer`` token, 401.

Scores are computed when asked: ``TeamState.record(now)`` with ``now`` the wall clock.
(The team agent's periodic re-score uses the later of the wall clock and the newest
event time the team has seen: the two differ only for events stamped in the future.)

Routing between workers: :mod:`streams.web.routing`; the pages: :mod:`streams.web.pages`
(heat map), :mod:`streams.web.team_page`. A team id ending in ``.json`` has its page
as JSON only (``/teams/x.json.json``).

**Load.** The web server shares the event loop with event processing, so web work is
bounded: the answers built from every team (``/teams``, ``/heatmap``,
``/heatmap.json``) come from a snapshot of all teams' records computed at most once a
second (:data:`SNAPSHOT_SECONDS`), by one computation that concurrent requests share and
that yields to the loop every :data:`SCORE_CHUNK` teams; each answer is encoded once per
snapshot. At most :data:`~streams.web.routing.MAX_REQUESTS` requests are served at once; more are answered
503 with ``Retry-After`` at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

import orjson
from faust.types import AppT
from faust.web import Request, Response

from scoring.rollup.config import RollupConfig
from scoring.rollup.heatmap import WEEK_MS, last_boundary, traceability, traceability_csv
from scoring.rollup.team import TeamState
from scoring.rollup.team_rollup import TeamRollup, TeamStore
from scoring.team_page import team_page
from scoring.timeutil import format_ts, now_ms
from streams.processing.team_agent import TeamAgent
from streams.settings import Settings
from streams.web.auth import NO_STORE, check_bearer
from streams.web.pages import heatmap_data, heatmap_html
from streams.web.routing import TeamTableView
from streams.web.shared_result import SharedResult
from streams.web.team_page import not_found_html, team_page_html

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: the answers built from every team are at most this old
SNAPSHOT_SECONDS = 1.0
#: the headers of every HTML page: no script, no request to anywhere
HTML_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}
#: teams scored between two yields to the event loop while a snapshot is computed
SCORE_CHUNK = 200


def all_teams(store: TeamStore) -> list[TeamState]:
    """Every team, from the team store (the owner's table; no stream needed)."""
    return sorted(store.all(), key=lambda t: t.team_id)


@dataclass
class TeamsSnapshot:
    """Every scored team's ``team-credibility`` record at ``at`` (sorted by team), and
    the answers encoded from them."""

    at: int
    records: list[dict[str, Any]]
    _answers: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)

    async def answer(self, name: str, encode: Callable[[TeamsSnapshot], bytes]) -> bytes:
        """``encode(self)``, computed once per snapshot, in a thread: the records are not
        changed after the snapshot is taken, and rendering the page for 3 000 teams takes
        50 ms that the event loop would otherwise wait for."""
        if name not in self._answers:
            self._answers[name] = asyncio.ensure_future(asyncio.to_thread(encode, self))
        return await asyncio.shield(self._answers[name])


async def score_all_teams(store: TeamStore, cfg: RollupConfig) -> TeamsSnapshot:
    now = now_ms()
    records = []
    for i, team in enumerate(all_teams(store)):
        if i and i % SCORE_CHUNK == 0:
            await asyncio.sleep(0)  # event processing runs meanwhile
        record = team.record(now, cfg)
        if record is not None:
            records.append(record)
    return TeamsSnapshot(now, records)


def week_snapshot_time(day: date, cfg: RollupConfig) -> int:
    """The first heat map snapshot time at or after the start of ``day`` (local).

    With SPEC's schedule: the first Friday 17:00 in the configured zone on or after
    ``day`` (``day`` itself when it is a Friday). The week it closes is
    ``[at - 7 days, at)``.
    """
    tz = ZoneInfo(cfg.time_zone)
    ahead = (cfg.heatmap_weekday - day.weekday()) % 7
    local = datetime.combine(day + timedelta(days=ahead), datetime.min.time(), tz).replace(
        hour=cfg.heatmap_hour, minute=cfg.heatmap_minute
    )
    return int(local.timestamp() * 1000)


class TeamsPage(TeamTableView):
    """A view of the teams; :func:`register` sets what it reads on the subclass it registers."""

    settings: ClassVar[Settings]
    store: ClassVar[TeamStore]
    rollup: ClassVar[TeamRollup]
    #: every team's record, computed at most every :data:`SNAPSHOT_SECONDS`
    snapshots: ClassVar[SharedResult[TeamsSnapshot]]


#: path -> view, put on the app by :func:`register`
ROUTES: dict[str, type[TeamsPage]] = {}
_View = TypeVar("_View", bound=type[TeamsPage])


def route(path: str) -> Callable[[_View], _View]:
    def add(view: _View) -> _View:
        ROUTES[path] = view
        return view

    return add


def register(app: AppT, settings: Settings, teams: TeamAgent) -> None:
    """Serve :data:`ROUTES` on ``app``, over the team agent's table and store."""
    snapshots = SharedResult(partial(score_all_teams, teams.store, settings.rollup), SNAPSHOT_SECONDS)
    context = {
        "settings": settings, "store": teams.store, "rollup": teams.rollup, "team_table": teams.table,
        "snapshots": snapshots,
    }
    for path, view in ROUTES.items():
        app.page(path)(type(view.__name__, (view,), context))


@route("/teams")
class TeamsView(TeamsPage):
    async def local(self, request: Request, **kwargs: Any) -> Response:
        snapshot = await self.snapshots.get()
        return self.bytes(await snapshot.answer("teams", lambda s: orjson.dumps(s.records)),
                          content_type="application/json")


@route("/teams/{team_id}")
class TeamView(TeamsPage):
    """The team page (:mod:`streams.web.team_page`); its data as JSON when the path ends
    in ``.json``. A team that has sent nothing is 404 either way."""

    async def local(self, request: Request, **kwargs: Any) -> Response:
        team_id = kwargs["team_id"]
        as_json = team_id.endswith(".json")
        team_id = team_id.removesuffix(".json")
        team = self.store.load(team_id)
        if team is None:
            if as_json:
                return self.json({"error": "not_found", "team_id": team_id, "detail": "unknown team"}, status=404)
            return self.bytes(not_found_html(team_id).encode("utf-8"), status=404, headers=HTML_HEADERS)
        page = team_page(team_id, team.record(now_ms(), self.settings.rollup), self.rollup.water_levels(team_id),
                         self.rollup.latest_diagnosis(team_id))
        if as_json:
            return self.json(page)
        return self.bytes(team_page_html(page, self.settings.rollup).encode("utf-8"), headers=HTML_HEADERS)


@route("/teams/{team_id}/traceability.csv")
class TraceabilityView(TeamsPage):
    """A team's signal traceability list: IP addresses, so only with the bearer token."""

    async def get(self, request: Request, **kwargs: Any) -> Response:
        denied = check_bearer(request.headers, self.settings.web_token)
        if denied is not None:
            return self.json(denied.body, status=denied.status, headers=denied.headers)
        return await self.routed(request, **kwargs)

    async def local(self, request: Request, **kwargs: Any) -> Response:
        team_id, cfg = kwargs["team_id"], self.settings.rollup
        week = request.query.get("week")
        if week is None:
            at = last_boundary(now_ms(), cfg)
        else:
            try:
                if not _DATE.fullmatch(week):
                    raise ValueError
                at = week_snapshot_time(date.fromisoformat(week), cfg)
            except ValueError:
                return self.json({"error": "bad_request", "detail": "week must be a date, YYYY-MM-DD"}, status=400)
        team = self.store.load(team_id)
        if team is None:
            return self.json({"error": "not_found", "team_id": team_id, "detail": "unknown team"}, status=404)
        start = at - WEEK_MS
        body = traceability_csv(traceability(all_teams(self.store), team_id, start, at))
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", team_id)[:80]
        local_day = datetime.fromtimestamp(at / 1000, ZoneInfo(cfg.time_zone)).date().isoformat()
        return self.bytes(
            body.encode("utf-8"),
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="traceability-{safe}-{local_day}.csv"',
                "X-Credence-Week-Start": format_ts(start),
                "X-Credence-Week-End": format_ts(at),
                **NO_STORE,
            },
        )


@route("/heatmap.json")
class HeatmapJsonView(TeamsPage):
    async def local(self, request: Request, **kwargs: Any) -> Response:
        snapshot, cfg = await self.snapshots.get(), self.settings.rollup
        body = await snapshot.answer("heatmap.json", lambda s: orjson.dumps(heatmap_data(s.records, s.at, cfg)))
        return self.bytes(body, content_type="application/json")


@route("/heatmap")
class HeatmapView(TeamsPage):
    async def local(self, request: Request, **kwargs: Any) -> Response:
        snapshot, cfg = await self.snapshots.get(), self.settings.rollup
        page = await snapshot.answer(
            "heatmap", lambda s: heatmap_html(heatmap_data(s.records, s.at, cfg), s.at, cfg).encode("utf-8")
        )
        return self.bytes(page, headers=HTML_HEADERS)
