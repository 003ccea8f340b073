"""The weekly heat map: when it is due, and what it holds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

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
    teams = sorted(teams, key=lambda t: t.team_id)
    week_start = at - WEEK_MS
    regions: dict[str, dict[str, Any]] = {}
    lists: dict[str, list[dict[str, Any]]] | None = None
    for team in teams:
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
            if lists is None:
                lists = traceability_lists(teams, week_start, at)
            entry["traceability"][team.team_id] = lists.get(team.team_id, [])
    for entry in regions.values():
        entry["regions_total"] = len(regions)
    return [regions[r] for r in sorted(regions)]


def traceability_lists(teams: Iterable[TeamState], start: int, end: int) -> dict[str, list[dict[str, Any]]]:
    """Per team, every delta of its customers with trigger time in ``[start, end)``,
    oldest first.

    A delta belongs to the team its customer belongs to now (the team holding the
    customer's row: its directory record's team, ``unassigned`` after a tombstone),
    with the customer's region there, whichever team it was sent to when it fired: a
    delta that fired before its customer's directory record was applied, or before the
    customer moved, follows the customer. The lists are then the same whatever order
    the directory record and the events came in. A customer no team holds keeps its
    deltas where they were sent.
    """
    teams = sorted(teams, key=lambda t: t.team_id)
    home: dict[str, tuple[str, str | None]] = {}  # customer -> (team, region)
    for team in teams:
        for customer_id, row in team.customers.items():
            home.setdefault(customer_id, (team.team_id, row[3]))  # held twice only during a move
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for team in teams:
        for trace in team.trace.values():
            if start <= trace["ts_ms"] < end:
                found = home.get(trace["customer_id"])
                if found is None:
                    rows.setdefault(team.team_id, {})[trace["delta_id"]] = trace
                else:  # a delta sent again (to another team) is listed once
                    rows.setdefault(found[0], {})[trace["delta_id"]] = {**trace, "region": found[1]}
    return {
        team_id: [
            {k: v for k, v in t.items() if k != "ts_ms"}
            for t in sorted(held.values(), key=lambda t: (t["ts_ms"], t["delta_id"]))
        ]
        for team_id, held in rows.items()
    }


def traceability(teams: Iterable[TeamState], team_id: str, start: int, end: int) -> list[dict[str, Any]]:
    """One team's list of :func:`traceability_lists`."""
    return traceability_lists(teams, start, end).get(team_id, [])


#: what the fields added after the split (``trigger``, ``request_id``) take at most
_ADDED_BYTES = 1024


def split_regions(regions: list[dict[str, Any]], max_bytes: int) -> list[dict[str, Any]]:
    """The published form of :func:`snapshot`: each region in ``part`` 1 to ``parts``
    records of at most ``max_bytes`` encoded, each with the region's fields, in order a
    run of its teams, then of its red teams' traceability rows (a team's list may go on
    in the next part). A region that fits is one part, equal to its snapshot entry."""
    records = []
    for region in regions:
        header = {k: v for k, v in region.items() if k not in {"teams", "traceability"}}
        parts = _Parts(header, max_bytes - _ADDED_BYTES)
        for team in region["teams"]:
            parts.add(len(orjson.dumps(team)) + 1).teams.append(team)
        for team_id, rows in region["traceability"].items():
            opened = len(orjson.dumps(team_id)) + 4  # "team": [] and a comma
            if not rows:
                parts.add(opened).traceability[team_id] = []
            for row in rows:
                cost = len(orjson.dumps(row)) + 1
                part = parts.add(cost, team_id, opened)
                part.traceability.setdefault(team_id, []).append(row)
        records += [
            {**header, "teams": p.teams, "traceability": p.traceability, "part": i, "parts": len(parts.done)}
            for i, p in enumerate(parts.done, 1)
        ]
    return records


class _Part:
    __slots__ = ("teams", "traceability")

    def __init__(self) -> None:
        self.teams: list[dict[str, Any]] = []
        self.traceability: dict[str, list[dict[str, Any]]] = {}


class _Parts:
    """Greedy packing of a region's items into parts of bounded encoded size: one item
    (a team, a row) is bounded by its fields' lengths, far below a part."""

    def __init__(self, header: dict[str, Any], max_bytes: int) -> None:
        self._empty = len(orjson.dumps({**header, "teams": [], "traceability": {}, "part": 2**31, "parts": 2**31}))
        self._max = max_bytes
        self.done = [_Part()]
        self._size = self._empty

    def add(self, cost: int, team_id: str | None = None, opened: int = 0) -> _Part:
        """The part an item of ``cost`` bytes goes in; a row of ``team_id`` costs
        ``opened`` more in a part that has none of the team's rows yet."""
        part = self.done[-1]
        extra = opened if team_id is not None and team_id not in part.traceability else 0
        if (part.teams or part.traceability) and self._size + cost + extra > self._max:
            part = _Part()
            self.done.append(part)
            self._size = self._empty
            extra = opened if team_id is not None else 0
        self._size += cost + extra
        return part


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
