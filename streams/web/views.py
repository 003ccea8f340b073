"""Web views on the worker's web port: team scores, traceability lists, the heat map.

| path | answer |
|---|---|
| ``GET /teams`` | every scored team's ``team-credibility`` record as of now, sorted by team |
| ``GET /teams/{team_id}`` | one team's record (404 JSON if the team has no score) |
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

**Routing.** Every team lives in the one-partition ``team-state`` table, so one worker
holds them all. Any worker answers: the worker that owns the table's partition reads
its RocksDB; any other worker forwards the request to the owner's web server, found
in the partition assignor's changelog distribution (``app.router.table_metadata``,
shared with every member at each rebalance; a member's address is Faust's
``canonical_url``, ``http://<CREDENCE_WEB_HOST>:<CREDENCE_WEB_PORT>``, so the web host
must be reachable from the other workers). ``@app.table_route`` does the same
lookup, but it hashes the key with the producer's cached topic metadata (a
``TypeError``, so a 500, if that lacks the changelog topic), forwards every request
header and rebuilds the answer as text with only status and content type (no
``WWW-Authenticate``, ``Content-Disposition``, ``Retry-After``), has no loop guard,
and serves a half-recovered table. Here: the one partition's owner is looked up
directly, forwarded requests carry only ``Authorization`` and ``Accept`` plus a
marker (a forwarded request is never forwarded again), answers keep their bytes and
headers, and ``X-Credence-Served-By`` names the worker that read the table. While a
rebalance or table recovery is running, or when the owner cannot be reached, the
answer is 503 JSON with ``Retry-After``.

**Load.** The web server shares the event loop with event processing, so web work is
bounded: the answers built from every team (``/teams``, ``/heatmap``,
``/heatmap.json``) come from a snapshot of all teams' records computed at most once a
second (:data:`SNAPSHOT_SECONDS`), by one computation that concurrent requests share and
that yields to the loop every :data:`SCORE_CHUNK` teams; each answer is encoded once per
snapshot. At most :data:`MAX_REQUESTS` requests are served at once; more are answered
503 with ``Retry-After`` at once.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from faust.types import TP
from faust.web import Request, Response, View
from yarl import URL

from scoring.rollup.config import RollupConfig
from scoring.rollup.heatmap import WEEK_MS, last_boundary, traceability, traceability_csv
from scoring.rollup.team import TeamState
from scoring.timeutil import format_ts, now_ms
from streams.app import app, settings
from streams.processing.team_agent import store, team_table
from streams.web.shared_result import SharedResult

#: set on a forwarded request: the receiver answers itself or says 503, never forwards again
ROUTED_HEADER = "X-Credence-Routed-By"
#: the web server (canonical URL) that read the team table for this answer
SERVED_BY_HEADER = "X-Credence-Served-By"
#: response headers a forwarded answer keeps
_KEPT_HEADERS = ("Content-Type", "Content-Disposition", "WWW-Authenticate", "Retry-After",
                 "Cache-Control", "Content-Security-Policy", "X-Content-Type-Options",
                 "X-Credence-Week-Start", "X-Credence-Week-End", SERVED_BY_HEADER)
_PROXY_TIMEOUT = aiohttp.ClientTimeout(total=10)
_RETRY_AFTER = {"Retry-After": "2"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NO_STORE = {"Cache-Control": "no-store"}
#: the answers built from every team are at most this old
SNAPSHOT_SECONDS = 1.0
#: teams scored between two yields to the event loop while a snapshot is computed
SCORE_CHUNK = 200
#: requests this worker's views serve at once; more are answered 503 at once
MAX_REQUESTS = 16


# -- the team table, locally -------------------------------------------------------


def _changelog_tp() -> TP:
    return TP(team_table.changelog_topic.get_topic_name(), 0)


def _own_url() -> str:
    return str(app.conf.canonical_url)


def owns_team_table() -> bool:
    """This worker holds the active ``team-state`` partition (the only one)."""
    return _changelog_tp() in app.assignor.assigned_actives()


def team_table_owner() -> str | None:
    """The canonical URL of the worker that holds the team table, as of the last rebalance."""
    tp = _changelog_tp()
    for url, topics in app.router.table_metadata(team_table.name).items():
        if tp.partition in topics.get(tp.topic, ()):
            return url
    return None


def all_teams() -> list[TeamState]:
    """Every team, from the team store (the owner's table; no stream needed)."""
    return sorted(store.all(), key=lambda t: t.team_id)


def one_team(team_id: str) -> TeamState | None:
    return store.load(team_id)


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


async def score_all_teams() -> TeamsSnapshot:
    now, cfg = now_ms(), settings.rollup
    records = []
    for i, team in enumerate(all_teams()):
        if i and i % SCORE_CHUNK == 0:
            await asyncio.sleep(0)  # event processing runs meanwhile
        record = team.record(now, cfg)
        if record is not None:
            records.append(record)
    return TeamsSnapshot(now, records)


snapshots = SharedResult(score_all_teams, SNAPSHOT_SECONDS)
_request_slots = asyncio.Semaphore(MAX_REQUESTS)


# -- pure helpers (unit-testable) --------------------------------------------------


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


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(given: str | None, expected: str) -> bool:
    if given is None or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def heatmap_data(records: Iterable[dict[str, Any]], at: int, cfg: RollupConfig) -> dict[str, Any]:
    """The regions of ``snapshot()`` (``credibility-heatmap``) from the teams' records
    (sorted by team) as of ``at``, with the red teams' ids instead of their traceability
    lists: those hold IP addresses, and are not computed here at all."""
    by_region: dict[str, dict[str, Any]] = {}
    for record in records:
        region = record["region"] or "unknown"
        entry = by_region.setdefault(region, {"region": region, "teams": [], "red_teams": []})
        entry["teams"].append({k: record[k] for k in ("team_id", "score", "band", "components", "components_used")})
        if record["band"] == "red":
            entry["red_teams"].append(record["team_id"])
    regions = [by_region[r] for r in sorted(by_region)]
    return {
        "at": format_ts(at),
        "time_zone": cfg.time_zone,
        "thresholds": {"red_below": cfg.red_below, "yellow_below": cfg.yellow_below},
        "regions": regions,
        "traceability": "per red team: GET /teams/{team_id}/traceability.csv with a bearer token",
    }


_BAND_TEXT = {"red": "Red", "yellow": "Yellow", "green": "Green"}
_COMPONENT_LABELS = (("action_completion", "Actions"), ("signal_strength", "Signals"),
                     ("fulfilment", "Fulfilment"))

#: band colours: text contrast 6.5:1 (red), 10.4:1 (yellow), 5.3:1 (green), WCAG AA
_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 16px/1.4 system-ui, -apple-system, "Segoe UI",
       Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: #1f1f1f; background: #ffffff; }
h1 { font-size: 26px; margin: 0 0 4px; }
.meta { margin: 0 0 2px; color: #3d3d3d; }
.meta strong { color: #1f1f1f; }
.note { margin: 0 0 14px; color: #555555; font-size: 14px; }
.legend { display: flex; gap: 8px 20px; list-style: none; padding: 0; margin: 0 0 18px;
          flex-wrap: wrap; align-items: center; }
.legend li { display: flex; align-items: center; gap: 8px; font-size: 15px; }
.legend .weights { color: #3d3d3d; font-size: 14px; }
.swatch { display: inline-block; min-width: 76px; padding: 3px 10px; border-radius: 6px;
          font-weight: 700; text-align: center; }
table.heatmap { border-collapse: separate; border-spacing: 0 10px; width: 100%; }
table.heatmap caption { text-align: left; color: #555555; font-size: 14px; }
table.heatmap th[scope=col] { text-align: left; font-size: 14px; color: #3d3d3d; padding: 0 12px; }
table.heatmap th[scope=row] { text-align: left; vertical-align: top; padding: 12px 14px;
                              background: #eef0f3; border-radius: 8px 0 0 8px; width: 150px; }
td.teams { padding: 8px 10px; background: #f6f7f9; border-radius: 0 8px 8px 0; }
.region-name { display: block; font-size: 19px; }
.region-count { display: block; font-size: 13px; font-weight: 400; color: #3d3d3d; }
ul.tiles { display: flex; flex-wrap: wrap; gap: 10px; list-style: none; margin: 0; padding: 0; }
li.team { width: 208px; padding: 10px 12px; border-radius: 8px; border: 2px solid transparent; }
.team-id { display: block; font-weight: 700; font-size: 16px; overflow-wrap: anywhere; }
.headline { display: flex; align-items: baseline; gap: 10px; white-space: nowrap; margin: 2px 0 6px; }
.score { font-size: 32px; font-weight: 800; line-height: 1.1; font-variant-numeric: tabular-nums; }
.band-label { font-size: 13px; font-weight: 700; text-transform: uppercase; letter-spacing: 0.06em; }
dl.components { margin: 0; font-size: 13px; font-variant-numeric: tabular-nums; }
dl.components div { display: flex; justify-content: space-between; }
dl.components dt, dl.components dd { margin: 0; }
dl.components dd { font-weight: 600; }
.band-red { background: #b3261e; color: #ffffff; }
.band-yellow { background: #f2c94c; color: #1f1f1f; }
.band-green { background: #1e7b34; color: #ffffff; }
li.band-red { border-color: #7a1a14; }
li.band-yellow { border-color: #b8922a; }
li.band-green { border-color: #145224; }
.empty-state { padding: 24px; background: #eef0f3; border-radius: 8px; max-width: 640px; }
footer { margin-top: 12px; font-size: 14px; color: #3d3d3d; max-width: 1000px; }
footer p { margin: 4px 0; }
code { font-size: 13px; background: #eef0f3; padding: 1px 4px; border-radius: 4px; white-space: nowrap; }
"""


def _fmt_score(value: float | None) -> str:
    """``37.12``, ``37.1``, ``60``; an em dash for a component without data."""
    if value is None:
        return "\u2014"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def heatmap_html(data: dict[str, Any], at: int, cfg: RollupConfig) -> str:
    """A page a person reads at a glance: one row per region, a coloured tile per team
    with its id, score and band in words (colour is never the only cue)."""
    esc = html.escape
    tz = ZoneInfo(cfg.time_zone)
    local = datetime.fromtimestamp(at / 1000, tz)
    utc = datetime.fromtimestamp(at / 1000, UTC)
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}"
    weekday = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")[cfg.heatmap_weekday]
    regions = data["regions"]
    team_count = sum(len(r["teams"]) for r in regions)
    red, yellow = _fmt_score(cfg.red_below), _fmt_score(cfg.yellow_below)
    weights = " \u00b7 ".join(
        f"{label.lower()} {_fmt_score(w * 100)} %"
        for (_, label), w in zip(_COMPONENT_LABELS, (cfg.weight_action_completion, cfg.weight_signal_strength,
                                                     cfg.weight_fulfilment), strict=True)
    )

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="refresh" content="60">',
        "<title>Credence \u2014 forecast credibility heat map</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>Forecast credibility heat map</h1>",
        f'<p class="meta">Snapshot at <strong><time datetime="{esc(data["at"])}">'
        f"{local:%Y-%m-%d %H:%M}</time> {esc(cfg.time_zone)}</strong> ({offset}) "
        f"\u00b7 {utc:%Y-%m-%d %H:%M} UTC \u00b7 {_plural(team_count, 'team')} "
        f"in {_plural(len(regions), 'region')}</p>",
        f'<p class="note">Live scores as of the snapshot time; the page refreshes every minute. '
        f"The weekly heat map is published every {weekday} at {cfg.heatmap_hour:02d}:"
        f"{cfg.heatmap_minute:02d} {esc(cfg.time_zone)}.</p></header>",
        '<ul class="legend" aria-label="Legend">',
        f'<li><span class="swatch band-red">Red</span> below {red}</li>',
        f'<li><span class="swatch band-yellow">Yellow</span> {red} to below {yellow}</li>',
        f'<li><span class="swatch band-green">Green</span> {yellow} or more</li>',
        f'<li class="weights">Score weights: {weights} (components without data are left out)</li>',
        "</ul>",
    ]
    if not regions:
        parts.append('<p class="empty-state">No team has a score yet.</p>')
    else:
        parts += [
            '<table class="heatmap"><caption>Teams by region, with score (0\u2013100) and band</caption>',
            '<thead><tr><th scope="col">Region</th><th scope="col">Teams</th></tr></thead>',
            "<tbody>",
        ]
        for region in regions:
            name = esc(region["region"])
            parts.append(
                f'<tr data-region="{name}"><th scope="row"><span class="region-name">{name}</span> '
                f'<span class="region-count">{_plural(len(region["teams"]), "team")}</span></th>'
                f'<td class="teams"><ul class="tiles" aria-label="Teams in {name}">'
            )
            for team in region["teams"]:
                b = esc(team["band"])
                comps = "".join(
                    f"<div><dt>{label}</dt> <dd>{_fmt_score(team['components'].get(key))}</dd></div> "
                    for key, label in _COMPONENT_LABELS
                )
                parts.append(
                    f'<li class="team band-{b}" data-team="{esc(team["team_id"])}" data-band="{b}" '
                    f'data-score="{team["score"]}">'
                    f'<span class="team-id">{esc(team["team_id"])}</span> '
                    f'<span class="headline"><span class="score">{_fmt_score(team["score"])}</span> '
                    f'<span class="band-label">{_BAND_TEXT.get(team["band"], b)}</span></span> '
                    f'<dl class="components">{comps}</dl></li>'
                )
            parts.append("</ul></td></tr>")
        parts.append("</tbody></table>")
    red_teams = [t for r in regions for t in r["red_teams"]]
    footer = ("Red teams export their signal traceability list (trigger time, IP address, customer) "
              "with <code>GET /teams/{team_id}/traceability.csv?week=YYYY-MM-DD</code> and "
              "<code>Authorization: Bearer &lt;CREDENCE_WEB_TOKEN&gt;</code>.")
    if red_teams:
        footer += " Red now: " + ", ".join(f"<strong>{esc(t)}</strong>" for t in red_teams) + "."
    parts += [f"<footer><p>{footer}</p><p>As JSON: <code>/heatmap.json</code>, <code>/teams</code>.</p>"
              "</footer></body></html>"]
    return "\n".join(parts)


# -- routing -----------------------------------------------------------------------


class TeamTableView(View):
    """A view over the team table: served by its owner, forwarded to it by the others."""

    async def get(self, request: Request, **kwargs: Any) -> Response:
        return await self.routed(request, **kwargs)

    async def routed(self, request: Request, **kwargs: Any) -> Response:
        if _request_slots.locked():
            return self._unavailable(f"this worker is serving {MAX_REQUESTS} requests already; retry shortly")
        async with _request_slots:
            return await self._routed(request, **kwargs)

    async def _routed(self, request: Request, **kwargs: Any) -> Response:
        if owns_team_table():
            if getattr(self.app, "in_recovery", False) or getattr(self.app, "rebalancing", False):
                return self._unavailable("the team table is being recovered after a rebalance; retry shortly")
            response = await self.local(request, **kwargs)
            response.headers[SERVED_BY_HEADER] = _own_url()
            return response
        owner = team_table_owner()
        if owner is None or owner == _own_url():
            return self._unavailable("no worker holds the team table yet (rebalancing); retry shortly")
        if request.headers.get(ROUTED_HEADER):
            # forwarded here by a worker whose view of the assignment is older or newer than ours
            return self._unavailable(f"the team table moved; this worker forwards to {owner}")
        return await self._forward(request, owner)

    async def local(self, request: Request, **kwargs: Any) -> Response:
        raise NotImplementedError

    def _unavailable(self, message: str) -> Response:
        return self.json({"error": "unavailable", "detail": message}, status=503, headers=dict(_RETRY_AFTER))

    async def _forward(self, request: Request, owner: str) -> Response:
        target = URL(owner)
        url = request.url.with_scheme(target.scheme).with_host(target.host or "").with_port(target.port)
        headers = {ROUTED_HEADER: _own_url()}
        for name in ("Authorization", "Accept"):
            if name in request.headers:
                headers[name] = request.headers[name]
        try:
            async with self.app.http_client.get(
                url, headers=headers, timeout=_PROXY_TIMEOUT, allow_redirects=False
            ) as answer:
                body = await answer.read()
                kept = {k: answer.headers[k] for k in _KEPT_HEADERS if k in answer.headers}
                return self.bytes(body, status=answer.status, headers=kept)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return self._unavailable(f"the worker holding the team table ({owner}) did not answer: "
                                     f"{type(exc).__name__}")


@app.page("/teams")
class TeamsView(TeamTableView):
    async def local(self, request: Request, **kwargs: Any) -> Response:
        snapshot = await snapshots.get()
        return self.bytes(await snapshot.answer("teams", lambda s: orjson.dumps(s.records)),
                          content_type="application/json")


@app.page("/teams/{team_id}")
class TeamView(TeamTableView):
    async def local(self, request: Request, **kwargs: Any) -> Response:
        team_id = kwargs["team_id"]
        team = one_team(team_id)
        record = team.record(now_ms(), settings.rollup) if team is not None else None
        if record is None:
            detail = "unknown team" if team is None else "the team has no score yet (no component has data)"
            return self.json({"error": "not_found", "team_id": team_id, "detail": detail}, status=404)
        return self.json(record)


@app.page("/teams/{team_id}/traceability.csv")
class TraceabilityView(TeamTableView):
    """A team's signal traceability list: IP addresses, so only with the bearer token."""

    async def get(self, request: Request, **kwargs: Any) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        return await self.routed(request, **kwargs)

    def _denied(self, request: Request) -> Response | None:
        token = settings.web_token
        if not token:
            return self.json(
                {"error": "disabled", "detail": "traceability lists hold IP addresses and are served only "
                 "with a bearer token: set CREDENCE_WEB_TOKEN on the workers to enable this endpoint"},
                status=403,
            )
        given = bearer_token(request.headers)
        if token_matches(given, token):
            return None
        if given is None:
            challenge, detail = 'Bearer realm="credence"', "send Authorization: Bearer <CREDENCE_WEB_TOKEN>"
        else:
            challenge, detail = 'Bearer realm="credence", error="invalid_token"', "wrong token"
        return self.json({"error": "unauthorized", "detail": detail}, status=401,
                         headers={"WWW-Authenticate": challenge, **_NO_STORE})

    async def local(self, request: Request, **kwargs: Any) -> Response:
        team_id, cfg = kwargs["team_id"], settings.rollup
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
        team = one_team(team_id)
        if team is None:
            return self.json({"error": "not_found", "team_id": team_id, "detail": "unknown team"}, status=404)
        start = at - WEEK_MS
        body = traceability_csv(traceability(all_teams(), team_id, start, at))
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", team_id)[:80]
        local_day = datetime.fromtimestamp(at / 1000, ZoneInfo(cfg.time_zone)).date().isoformat()
        return self.bytes(
            body.encode("utf-8"),
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="traceability-{safe}-{local_day}.csv"',
                "X-Credence-Week-Start": format_ts(start),
                "X-Credence-Week-End": format_ts(at),
                **_NO_STORE,
            },
        )


@app.page("/heatmap.json")
class HeatmapJsonView(TeamTableView):
    async def local(self, request: Request, **kwargs: Any) -> Response:
        snapshot = await snapshots.get()
        body = await snapshot.answer("heatmap.json", lambda s: orjson.dumps(heatmap_data(s.records, s.at, settings.rollup)))
        return self.bytes(body, content_type="application/json")


@app.page("/heatmap")
class HeatmapView(TeamTableView):
    async def local(self, request: Request, **kwargs: Any) -> Response:
        snapshot, cfg = await snapshots.get(), settings.rollup
        page = await snapshot.answer(
            "heatmap", lambda s: heatmap_html(heatmap_data(s.records, s.at, cfg), s.at, cfg).encode("utf-8")
        )
        return self.bytes(
            page,
            headers={
                "Content-Type": "text/html; charset=utf-8",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff",
            },
        )
