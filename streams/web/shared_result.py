"""One computation at a time for web answers that many requests may ask for at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedResult(Generic[T]):
    """``compute()``'s result, shared by every caller that asks while it runs and until
    ``max_age_s`` after it started; a caller after that starts the next computation.

    With ``max_age_s=0`` a lone caller always gets a fresh result and concurrent callers
    share one; a flood of requests then costs one computation at a time, not one each.
    """

    def __init__(self, compute: Callable[[], Awaitable[T]], max_age_s: float = 0.0) -> None:
        self._compute = compute
        self._max_age_s = max_age_s
        self._task: asyncio.Future[T] | None = None
        self._started = 0.0

    async def get(self) -> T:
        now = time.monotonic()
        if self._task is None or (self._task.done() and now - self._started >= self._max_age_s):
            self._task, self._started = asyncio.ensure_future(self._compute()), now
        # shielded: a client that goes away does not cancel the others' computation
        return await asyncio.shield(self._task)
