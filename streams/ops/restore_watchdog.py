"""Rejoin the consumer group when a table restore stops making progress.

A safety net. test_scale_out saw a restore stop for good about once in a hundred
take-overs (no changelog record reached it: the fetch loop had dropped them, fixed in
``streams.faust_ext.transport``; README, "Scaling out"). A rebalance rebuilds every stage between
the broker and the restore — aiokafka's assignment, fetch positions and committed-offset
refresh; Faust's flow, partition sets and recovery — so when the records a restore still
needs (``credence_restore_remaining_records``) have not reached a new low for
``CREDENCE_RESTORE_STALL_SECONDS``, the worker logs its consumer report
(``streams.faust_ext.diagnostics``) and asks to rejoin its group; at most :data:`MAX_REJOINS`
times while the restore stays stuck, so that a restore no rebalance can help (the alert
``CredenceRestoreStuck`` then fires) does not rebalance the group for ever. It cleared
the stall above in 0.2 s.

A Faust sensor, because sensors start with the app; timers start only after a worker's
first restore has finished.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust import Sensor
from faust.types import AppT
from mode import Service

from streams.faust_ext import access
from streams.faust_ext.diagnostics import consumer_report
from streams.ops.restore_progress import remaining_records
from streams.ops.restore_stall import StallDetector

#: rejoins for one stuck restore; the count starts again once a restore progresses or ends
MAX_REJOINS = 3
#: how often progress is checked (seconds)
CHECK_SECONDS = 1.0

log = logging.getLogger(__name__)


class RestoreWatchdog(Sensor):
    def __init__(self, app: AppT, stall_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.detector = StallDetector(stall_seconds, MAX_REJOINS)

    @Service.timer(CHECK_SECONDS)
    async def _watch(self) -> None:
        remaining = remaining_records(self.app)
        if not self.detector.should_rejoin(remaining, time.monotonic()):
            return
        log.warning(
            "restore made no progress for %.0f s with %d changelog records left: rejoining the "
            "consumer group (%d of at most %d)\n%s",
            self.detector.stall_seconds, remaining, self.detector.rejoins, MAX_REJOINS, consumer_report(self.app),
        )
        access.request_rejoin(self.app)


def register(app: AppT, stall_seconds: float) -> None:
    app.sensors.add(RestoreWatchdog(app, stall_seconds))
