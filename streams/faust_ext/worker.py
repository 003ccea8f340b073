"""Faust's worker (``credence worker``), with the consumer report in its dump.

Names it depends on, and why: mode 0.7.1 ``Worker._cry``, the coroutine its SIGUSR1
handler runs to dump every thread's stack; overridden to end the dump with the consumer
report (:mod:`.diagnostics`).
"""

from __future__ import annotations

import faust

from streams.faust_ext.diagnostics import consumer_report


class Worker(faust.Worker):
    async def _cry(self) -> None:
        await super()._cry()
        print(consumer_report(self.app), file=self.stderr, flush=True)
