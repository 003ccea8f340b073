"""Faust's worker (``credence worker``), with Credence's logging and dump.

Names it depends on, and why: mode 0.7.1 ``Worker._cry``, the coroutine its SIGUSR1
handler runs to dump every thread's stack; overridden to end the dump with the consumer
report (:mod:`.diagnostics`). ``on_setup_root_logger`` is a public hook.
"""

from __future__ import annotations

import logging

import faust

from streams.faust_ext.diagnostics import consumer_report
from streams.ops import log_limit


class Worker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """Repeated warnings and errors are rate-limited (:mod:`streams.ops.log_limit`)."""
        super().on_setup_root_logger(logger, level)
        log_limit.install(logger)

    async def _cry(self) -> None:
        await super()._cry()
        print(consumer_report(self.app), file=self.stderr, flush=True)
