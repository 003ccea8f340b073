"""A team page's data: the team's ``team-credibility`` record, its monthly action water
levels as chart series, and its latest process diagnosis in words.

Pure: records in (``team-credibility``, ``action-water-levels``, ``process-diagnosis``
values), one JSON-ready dict out; ``streams.web.team_page`` renders it as HTML.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

#: the fields of an ``action-water-levels`` record a chart point keeps
POINT_FIELDS = ("month", "due", "on_time", "missed", "level", "target", "below", "final")


def month_axis(months: Iterable[str]) -> list[str]:
    """Every calendar month from the first to the last of ``months`` (``YYYY-MM``): a
    month without a record keeps its place on the time axis."""
    present = sorted(set(months))
    if not present:
        return []
    year, month = map(int, present[0].split("-"))
    axis = []
    while (label := f"{year:04d}-{month:02d}") <= present[-1]:
        axis.append(label)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return axis


def water_series(levels: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One series per action kind, in the records' order (action, then month). A
    series' ``target`` is its newest month's; each point keeps its own month's, so a
    target changed in the rules file shows where it changed. Targets are in the
    levels' unit (percent: the rules file's 0.95 is 95.0)."""
    series: dict[str, dict[str, Any]] = {}
    for record in levels:
        entry = series.setdefault(record["action"], {"action": record["action"], "target": None, "points": []})
        point = {k: record.get(k) for k in POINT_FIELDS}
        entry["points"].append(point)
        entry["target"] = point["target"]
    return list(series.values())


def fmt_number(value: float) -> str:
    """``80``, ``93.33``, ``2.5``: at most 2 decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def fmt_percent(level: float | None) -> str:
    return "no items due" if level is None else f"{fmt_number(level)} %"


def fmt_hours(hours: float) -> str:
    """Hours to one decimal, halves rounded up (``2.25`` -> ``2.3 h``)."""
    rounded = Decimal(str(hours)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{fmt_number(float(rounded))} h"


def _count(value: Any) -> int:
    """``never_done`` as a number, whether a count or the list of those items."""
    if isinstance(value, int):
        return value
    return len(value) if isinstance(value, list) else 0


def stall_point_words(point: dict[str, Any], total_missed: int) -> str:
    """``technical: 4 of 5 misses, 2.5 h late on average (at most 6 h)``."""
    words = f"{point['owner']}: {point['missed']} of {total_missed} misses"
    never = _count(point.get("never_done"))
    if point.get("mean_hours_late") is None:
        return words + ", never done"  # no item of this owner's was done late: none was done
    words += f", {fmt_hours(point['mean_hours_late'])} late on average"
    if point.get("max_hours_late") is not None:
        words += f" (at most {fmt_hours(point['max_hours_late'])})"
    return words + (f", {never} never done" if never else "")


def diagnosis_words(diagnosis: dict[str, Any] | None) -> dict[str, Any] | None:
    """The diagnosis in words: ``summary`` (which months were below which target),
    ``stall_points`` (one line per owner, most missed first as in the record) and
    ``never_done`` (a sentence, or ``None`` when every missed item was done late)."""
    if diagnosis is None:
        return None
    months = diagnosis.get("months", [])
    detail = ", ".join(
        f"{m['month']} at {fmt_percent(m.get('level'))} ({m.get('on_time', 0)} of {m.get('due', 0)} on time)"
        for m in months
    )
    target = diagnosis.get("target")
    goal = f"its target of {fmt_percent(target)}" if target is not None else "its target"
    running = "two" if len(months) == 2 else str(len(months))
    points = diagnosis.get("stall_points", [])
    total = diagnosis.get("missed", sum(p["missed"] for p in points))  # the list may be cut short
    never = _count(diagnosis.get("never_done"))
    return {
        "summary": f"{diagnosis['action']} was below {goal} {running} closed months running: {detail}.",
        "stall_points": [stall_point_words(p, total) for p in points],
        "never_done": f"{never} of the {total} missed items {'was' if never == 1 else 'were'} never done."
        if never else None,
    }


def team_page(
    team_id: str,
    record: dict[str, Any] | None,
    levels: list[dict[str, Any]],
    diagnosis: dict[str, Any] | None,
) -> dict[str, Any]:
    """The page as data (also its ``.json``). ``record`` is ``None`` while no component
    of the team's score has data."""
    series = water_series(levels)
    return {
        "team_id": team_id,
        "region": (record or {}).get("region") or next((r["region"] for r in levels if r.get("region")), None),
        "credibility": record,
        "water_levels": {
            "months": month_axis(p["month"] for s in series for p in s["points"]),
            "series": series,
        },
        "diagnosis": diagnosis,
        "diagnosis_words": diagnosis_words(diagnosis),
    }
