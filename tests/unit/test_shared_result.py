"""SharedResult: one computation at a time, shared by concurrent callers."""

from __future__ import annotations

import asyncio

import pytest

from streams.web import shared_result
from streams.web.shared_result import SharedResult


class Computation:
    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        self.calls += 1
        await self.release.wait()
        return self.calls


def test_concurrent_callers_share_one_computation() -> None:
    async def main() -> None:
        compute = Computation()
        shared = SharedResult(compute)
        waiting = [asyncio.ensure_future(shared.get()) for _ in range(50)]
        await asyncio.sleep(0)
        compute.release.set()
        assert await asyncio.gather(*waiting) == [1] * 50
        assert await shared.get() == 2  # no max age: a later caller gets a fresh result

    asyncio.run(main())


def test_a_result_is_reused_until_max_age(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(shared_result.time, "monotonic", lambda: clock[0])

    async def main() -> None:
        compute = Computation()
        compute.release.set()
        shared = SharedResult(compute, max_age_s=1.0)
        assert [await shared.get(), await shared.get()] == [1, 1]
        clock[0] += 0.99
        assert await shared.get() == 1
        clock[0] += 0.01
        assert await shared.get() == 2

    asyncio.run(main())


def test_a_caller_that_goes_away_does_not_cancel_the_others() -> None:
    async def main() -> None:
        compute = Computation()
        shared = SharedResult(compute)
        leaving, staying = asyncio.ensure_future(shared.get()), asyncio.ensure_future(shared.get())
        await asyncio.sleep(0)
        leaving.cancel()
        compute.release.set()
        assert await staying == 1
        assert leaving.cancelled()

    asyncio.run(main())
