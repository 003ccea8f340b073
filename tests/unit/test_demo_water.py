"""The demo's technical requests (``streams.cli.demo``): through replay, team-east gets
one process diagnosis, and the console says where it stalls."""

from __future__ import annotations

import orjson

from scoring.catalog import PROCESS_DIAGNOSIS
from scoring.replay import LogRecord, replay
from scoring.rollup.config import RollupConfig
from streams.cli.demo import describe, directory_record, tech_request_history
from tests.unit.fixtures import catalog, rules
from tests.unit.rollup_fixtures import of, utc

ZONE = "Asia/Shanghai"


def test_the_demo_history_gives_team_east_a_diagnosis() -> None:
    now = utc("2026-12-02T22:00:00Z")
    records = [directory_record(n) for n in range(3)] + tech_request_history(now, ZONE)
    log = [LogRecord(t, k.encode(), orjson.dumps(v)) for t, k, v in records]
    result = replay(log, catalog(), rules(), now=now, wall_clock=now,
                    rollup=RollupConfig(time_zone=ZONE, water_targets={"tech_request": 0.95}))
    assert result.invalid == []
    [diagnosis] = of(result.outputs, PROCESS_DIAGNOSIS)
    assert describe(PROCESS_DIAGNOSIS, diagnosis) == (
        "DIAGNOSIS team-east tech_request below 95.0 two closed months running (2026-10 20.0, 2026-11 20.0): "
        "technical: 8 of 8 misses, 2.5 h late on average (max 3.5 h), 2 never done"
    )
