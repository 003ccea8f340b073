"""The weekly heat map: when it is due, and what it holds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scoring.rollup.config import RollupConfig
from scoring.rollup.team import TeamState
from scoring.timeutil import format_ts

WEEK_MS = 7 * 86_400_000


def last_boundary(now: int, cfg: RollupConfig) -> int:
    """The latest snapshot time at or before ``now`` (Friday 17:00 local by default)."""
    tz = ZoneInfo(cfg.time_zone)
    local = datetime.fromtimestamp(now / 1000, tz)
    candidate = local.replace(hour=cfg.heatmap_hour, minute=cfg.heatmap_minute, second=0, microsecond=0)
    candidate -= timedelta(days=(local.weekday() - cfg.heatmap_weekday) % 7)
    if candidate > local:
        candidate -= timedelta(days=7)
    # re-anchor in the zone so a DST change between the dates is honoured
    candidate = candidate.replace(tzinfo=None).replace(tzinfo=tz)
    return int(candidate.timestamp() * 1000)


def boundaries_crossed(after: int, until: int, cfg: RollupConfig) -> list[int]:
    """Snapshot times ``t`` with ``after < t <= until``, oldest first."""
    found = []
    t = last_boundary(until, cfg)
    while t > after:
        found.append(t)
        t = last_boundary(t - 1, cfg)
    return found[::-1]


def snapshot(teams: Iterable[TeamState], at: int, cfg: RollupConfig) -> list[dict[str, Any]]:
    """One ``credibility-heatmap`` record per region, as of ``at``."""
    week_start = at - WEEK_MS
    regions: dict[str, dict[str, Any]] = {}
    for team in sorted(teams, key=lambda t: t.team_id):
        record = team.record(at, cfg)
        if record is None:
            continue
        region = record["region"] or "unknown"
        entry = regions.setdefault(
            region,
            {
                "region": region,
                "at": format_ts(at),
                "week_start": format_ts(week_start),
                "time_zone": cfg.time_zone,
                "teams": [],
                "traceability": {},
            },
        )
        entry["teams"].append(
            {k: record[k] for k in ("team_id", "score", "band", "components", "components_used")}
        )
        if record["band"] == "red":
            entry["traceability"][team.team_id] = traceability(team, week_start, at)
    for entry in regions.values():
        entry["regions_total"] = len(regions)
    return [regions[r] for r in sorted(regions)]


def traceability(team: TeamState, start: int, end: int) -> list[dict[str, Any]]:
    """Every delta of the team with trigger time in ``[start, end)``, oldest first."""
    rows = [t for t in team.trace.values() if start <= t["ts_ms"] < end]
    return [
        {k: v for k, v in t.items() if k != "ts_ms"}
        for t in sorted(rows, key=lambda t: (t["ts_ms"], t["delta_id"]))
    ]


CSV_COLUMNS = ("ts", "customer_id", "ip", "signal", "points", "delta_id", "evidence_ids")


def traceability_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV, one line (``\\n``-terminated) per row.

    A field holding the separator, a quote, ``\\r`` or ``\\n`` is quoted (RFC 4180);
    ``csv.writer`` quotes only the characters of its line terminator, so it would leave
    a bare ``\\r`` unquoted and a spreadsheet would start a new row there.
    """
    lines = [_csv_line(CSV_COLUMNS)]
    for row in rows:
        lines.append(_csv_line([
            row["ts"], _cell(row["customer_id"]), _cell(row.get("ip") or ""), row["signal"],
            row["points"], row["delta_id"], _cell(" ".join(row["evidence_ids"])),
        ]))
    return "".join(lines)


def _csv_line(fields: Iterable[Any]) -> str:
    return ",".join(_quoted(str(f)) for f in fields) + "\n"


def _quoted(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _cell(text: str) -> str:
    """Ids come from input: keep a spreadsheet from reading one as a formula."""
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text
