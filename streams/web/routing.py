"""Views over the team table, answered by the one worker that holds it.

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
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import aiohttp
from faust.types import TP, AppT
from faust.web import Request, Response, View
from yarl import URL

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
#: requests this worker's views serve at once; more are answered 503 at once
MAX_REQUESTS = 16
_request_slots = asyncio.Semaphore(MAX_REQUESTS)


def _changelog_tp(team_table: Any) -> TP:
    return TP(team_table.changelog_topic.get_topic_name(), 0)


def _own_url(app: AppT) -> str:
    return str(app.conf.canonical_url)


def owns_team_table(app: AppT, team_table: Any) -> bool:
    """This worker holds the active ``team-state`` partition (the only one)."""
    return _changelog_tp(team_table) in app.assignor.assigned_actives()


def team_table_owner(app: AppT, team_table: Any) -> str | None:
    """The canonical URL of the worker that holds the team table, as of the last rebalance."""
    tp = _changelog_tp(team_table)
    for url, topics in app.router.table_metadata(team_table.name).items():
        if tp.partition in topics.get(tp.topic, ()):
            return url
    return None


class TeamTableView(View):
    """A view over the team table: served by its owner, forwarded to it by the others."""

    #: the ``team-state`` table, set on the subclass a worker registers
    team_table: ClassVar[Any]

    async def get(self, request: Request, **kwargs: Any) -> Response:
        return await self.routed(request, **kwargs)

    async def routed(self, request: Request, **kwargs: Any) -> Response:
        if _request_slots.locked():
            return self._unavailable(f"this worker is serving {MAX_REQUESTS} requests already; retry shortly")
        async with _request_slots:
            return await self._routed(request, **kwargs)

    async def _routed(self, request: Request, **kwargs: Any) -> Response:
        if owns_team_table(self.app, self.team_table):
            if getattr(self.app, "in_recovery", False) or getattr(self.app, "rebalancing", False):
                return self._unavailable("the team table is being recovered after a rebalance; retry shortly")
            response = await self.local(request, **kwargs)
            response.headers[SERVED_BY_HEADER] = _own_url(self.app)
            return response
        owner = team_table_owner(self.app, self.team_table)
        if owner is None or owner == _own_url(self.app):
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
        headers = {ROUTED_HEADER: _own_url(self.app)}
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
