"""``GET /metrics``: the Prometheus exposition of :mod:`streams.ops.metrics`."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import AppT

from streams.ops import metrics, restore_progress
from streams.web.shared_result import SharedResult


def register(app: AppT) -> None:
    async def render() -> tuple[bytes, str]:
        restore_progress.refresh(app)  # on the loop: it reads Faust's recovery state
        return await asyncio.to_thread(metrics.exposition)

    #: the exposition, rendered in a thread (12 000 series with 3 000 teams: a flood of
    #: scrapes held the event loop for seconds), once for every scrape that asks meanwhile
    exposition = SharedResult(render)

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        body, content_type = await exposition.get()
        return web.bytes(body, content_type=content_type)
