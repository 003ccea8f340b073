"""Process health diagnosis: where a team's required action stalls, from the items it
missed in two consecutive closed months below target.

Rounding and order (docs/contract.md): hours and shares to 2 decimals (Python's
``round``); stall points by most missed, then owner; the worst items never done first,
then by hours late (most first), then due time, then item identity.
"""

from __future__ import annotations

from typing import Any

from scoring.config import HOUR_MS
from scoring.rollup.action_items import ACTION_ID, DONE, DUE, OPPORTUNITY, OWNER
from scoring.rollup.records import UNASSIGNED
from scoring.timeutil import format_ts

#: stall points (owners) a diagnosis lists at most, so that its record stays bounded
MAX_STALL_POINTS = 50
#: the most-late items a diagnosis lists
WORST_ITEMS = 10


def diagnose(
    team_id: str,
    region: str | None,
    action: str,
    target: float | None,
    months: list[dict[str, Any]],
    missed: list[tuple[str, str, list[Any]]],
    as_of: int,
) -> dict[str, Any]:
    """The ``process-diagnosis`` value. ``months`` are the two months' water-level
    records, oldest first; ``missed`` their missed items as (month, identity, row)."""
    by_owner: dict[str, list[list[Any]]] = {}
    for _, _, row in missed:
        by_owner.setdefault(row[OWNER] or UNASSIGNED, []).append(row)
    stall_points = sorted(
        (_stall_point(owner, rows, len(missed)) for owner, rows in by_owner.items()),
        key=lambda p: (-p["missed"], p["owner"]),
    )
    worst = sorted(missed, key=lambda m: (m[2][DONE] is not None, -_late_ms(m[2]), m[2][DUE], m[1]))
    return {
        "team_id": team_id,
        "region": region,
        "action": action,
        "target": target,
        "months": [{k: m[k] for k in ("month", "level", "due", "on_time")} for m in months],
        "missed": len(missed),
        "never_done": sum(1 for _, _, row in missed if row[DONE] is None),
        "stall_points": stall_points[:MAX_STALL_POINTS],
        "worst": [_worst_item(month, row) for month, _, row in worst[:WORST_ITEMS]],
        "as_of": format_ts(as_of),
    }


def _late_ms(row: list[Any]) -> int:
    """How late a missed item was done (0 if never done)."""
    return 0 if row[DONE] is None else int(row[DONE] - row[DUE])


def _hours(ms: float) -> float:
    return round(ms / HOUR_MS, 2)


def _stall_point(owner: str, rows: list[list[Any]], total_missed: int) -> dict[str, Any]:
    late = [_late_ms(r) for r in rows if r[DONE] is not None]
    return {
        "owner": owner,
        "missed": len(rows),
        "share_of_missed": round(len(rows) / total_missed, 2),
        "never_done": len(rows) - len(late),
        "mean_hours_late": _hours(sum(late) / len(late)) if late else None,
        "max_hours_late": _hours(max(late)) if late else None,
    }


def _worst_item(month: str, row: list[Any]) -> dict[str, Any]:
    return {
        "month": month,
        "action_id": row[ACTION_ID],
        "opportunity_id": row[OPPORTUNITY],
        "owner": row[OWNER] or UNASSIGNED,
        "due_ts": format_ts(row[DUE]),
        "done_ts": None if row[DONE] is None else format_ts(row[DONE]),
        "hours_late": None if row[DONE] is None else _hours(_late_ms(row)),
    }
