"""A team's page (``templates/team.html``): its score and components, its monthly action
water levels against their targets as an inline SVG chart (no script), and its latest
process diagnosis in words. The data comes from :func:`scoring.team_page.team_page`.

Every upstream string (team id, region, action, owner, month) is escaped where it is
written, in text and in attributes alike.
"""

from __future__ import annotations

import html
from datetime import datetime
from importlib.resources import files
from string import Template
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from scoring.rollup.config import RollupConfig
from scoring.team_page import fmt_hours, fmt_number, fmt_percent
from scoring.timeutil import parse_ts

_TEMPLATES = files(__package__) / "templates"
_PAGE = Template((_TEMPLATES / "team.html").read_text("utf-8").removesuffix("\n"))
_NOT_FOUND = Template((_TEMPLATES / "team_not_found.html").read_text("utf-8").removesuffix("\n"))
_CSS = (_TEMPLATES / "heatmap.css").read_text("utf-8") + (_TEMPLATES / "team.css").read_text("utf-8")

_COMPONENTS = (("action_completion", "Action completion"), ("signal_strength", "Customer signal strength"),
               ("fulfilment", "Historical fulfilment"))
_BAND_TEXT = {"red": "Red", "yellow": "Yellow", "green": "Green"}
#: series colours, told apart by people with any common colour vision deficiency (Okabe-Ito)
_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#56b4e9", "#e69f00")
#: chart geometry (SVG user units)
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 720, 260, 52, 16, 14, 44
#: horizontal distance between the points of two series in the same month
_DODGE = 7
_SHOWN_ID_CHARS = 200


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def team_url(team_id: str) -> str:
    """The page's path: the team id percent-encoded as one path segment."""
    return "/teams/" + quote(team_id, safe="")


def _y(level: float) -> float:
    return _TOP + (100 - max(0.0, min(100.0, level))) / 100 * (_H - _TOP - _BOTTOM)


def _xs(months: list[str]) -> dict[str, float]:
    slot = (_W - _LEFT - _RIGHT) / max(1, len(months))
    return {m: _LEFT + (i + 0.5) * slot for i, m in enumerate(months)}


def _runs(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Polyline runs of consecutive points with a value: a gap where the value is null."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def _polyline(run: list[tuple[float, float]], css_class: str, colour: str) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
    return f'<polyline class="{css_class}" points="{coords}" stroke="{colour}"/>'


def water_chart(months: list[str], series: list[dict[str, Any]]) -> str:
    """Levels (0-100 %) by month, one line per action kind; its targets as a dashed step
    line in the same colour, a month wide each; closed months filled, open ones hollow."""
    xs, slot = _xs(months), (_W - _LEFT - _RIGHT) / max(1, len(months))
    open_months = {p["month"] for s in series for p in s["points"] if not p["final"]}
    parts = [f'<svg class="water-chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
             f'aria-labelledby="water-chart-title"><title id="water-chart-title">Monthly action water levels '
             f'against their targets</title>']
    for level in (0, 25, 50, 75, 100):
        y = _y(level)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{level} %</text>')
    for month, x in xs.items():
        parts.append(f'<text class="tick" x="{x:.1f}" y="{_H - _BOTTOM + 18}" text-anchor="middle">{_e(month)}</text>')
        if month in open_months:
            parts.append(f'<text class="tick open" x="{x:.1f}" y="{_H - _BOTTOM + 34}" '
                         f'text-anchor="middle">open</text>')
    for i, s in enumerate(series):
        colour, action = _COLOURS[i % len(_COLOURS)], _e(s["action"])
        parts.append(f'<g class="series" data-action="{action}">')
        target_runs = _runs([(xs[p["month"]] + dx, None if p["target"] is None else _y(p["target"]))
                             for p in s["points"] for dx in (-slot / 2, slot / 2)])
        parts += [_polyline(run, "target", colour) for run in target_runs]
        # each series a little apart, so that equal levels of two actions both show
        dodge = (i - (len(series) - 1) / 2) * _DODGE
        at = {m: x + dodge for m, x in xs.items()}
        parts += [_polyline(run, "level", colour) for run in _runs(_with_gaps(months, at, s["points"]))]
        for p in s["points"]:
            if p["level"] is None:
                continue
            state = "closed" if p["final"] else "open"
            fill = colour if p["final"] else "#ffffff"
            label = (f'{s["action"]} {p["month"]}: {fmt_percent(p["level"])} ({p["on_time"]} of {p["due"]} on time), '
                     f'target {fmt_percent(p["target"]) if p["target"] is not None else "none"}, {state}')
            parts.append(f'<circle class="point {state}" data-month="{_e(p["month"])}" data-level="{p["level"]}" '
                         f'data-below="{str(bool(p["below"])).lower()}" cx="{at[p["month"]]:.1f}" '
                         f'cy="{_y(p["level"]):.1f}" r="5" fill="{fill}" stroke="{colour}">'
                         f'<title>{_e(label)}</title></circle>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _with_gaps(months: list[str], xs: dict[str, float], points: list[dict[str, Any]]) -> list[tuple[float, float | None]]:
    """The series' levels on the whole month axis: ``None`` for a month without a record
    or without items due, so the line breaks there."""
    levels = {p["month"]: p["level"] for p in points}
    return [(xs[m], None if levels.get(m) is None else _y(levels[m])) for m in months]


def _legend(series: list[dict[str, Any]]) -> str:
    items = []
    for i, s in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        target = f"target {fmt_percent(s['target'])}" if s["target"] is not None else "no target"
        items.append(f'<li><span class="line-swatch" style="border-color:{colour}"></span>'
                     f'<span class="action">{_e(s["action"])}</span> <span class="target-text">{target}</span></li>')
    items.append('<li class="key"><span class="dot closed"></span> closed month <span class="dot open"></span> '
                 'open month (so far) <span class="dash"></span> target</li>')
    return f'<ul class="chart-legend" aria-label="Chart legend">{"".join(items)}</ul>'


def _levels_table(series: list[dict[str, Any]]) -> str:
    rows = []
    for s in series:
        for p in s["points"]:
            status = "closed" if p["final"] else "open"
            if p["below"]:
                status += ", below target"
            target = fmt_percent(p["target"]) if p["target"] is not None else "\u2014"
            rows.append(f'<tr data-action="{_e(s["action"])}" data-month="{_e(p["month"])}">'
                        f'<th scope="row">{_e(s["action"])}</th><td>{_e(p["month"])}</td><td>{p["due"]}</td>'
                        f'<td>{p["on_time"]}</td><td>{p["missed"]}</td><td>{fmt_percent(p["level"])}</td>'
                        f'<td>{target}</td><td>{status}</td></tr>')
    return ('<section class="levels" aria-labelledby="levels-title"><h2 id="levels-title">Water levels by month'
            '</h2><table class="levels"><caption>Items due per month, done by their due time (on time) or not '
            '(missed)</caption><thead><tr><th scope="col">Action</th><th scope="col">Month</th>'
            '<th scope="col">Due</th><th scope="col">On time</th><th scope="col">Missed</th>'
            '<th scope="col">Level</th><th scope="col">Target</th><th scope="col">Status</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _water_html(water: dict[str, Any]) -> str:
    if not water["series"]:
        return '<p class="empty-state">No required sales action of this team has fallen due yet.</p>'
    return water_chart(water["months"], water["series"]) + _legend(water["series"])


def _credibility_html(record: dict[str, Any] | None) -> str:
    if record is None:
        return ('<p class="empty-state">No score yet: none of the three components has data '
                '(no due actions or active customers in the last 30 days, no forecast outcome).</p>')
    b = _e(record["band"])
    rows = []
    for key, label in _COMPONENTS:
        value, weight = record["components"].get(key), record["weights"][key]
        used = key in record["components_used"]
        shown = fmt_number(value) if value is not None else "no data (left out)"
        rows.append(f'<tr data-component="{key}" data-used="{str(used).lower()}"><th scope="row">{label}</th>'
                    f'<td>{fmt_number(weight * 100)} %</td><td class="value">{shown}</td></tr>')
    return (f'<div class="score-card band-{b}" data-band="{b}"><span class="score">{fmt_number(record["score"])}</span>'
            f' <span class="band-label">{_BAND_TEXT.get(record["band"], b)}</span></div> '
            '<table class="components"><caption>Components (0\u2013100); missing ones are left out and the '
            'other weights rescaled</caption><thead><tr><th scope="col">Component</th><th scope="col">Weight</th>'
            f'<th scope="col">Value</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _diagnosis_html(words: dict[str, Any] | None, diagnosis: dict[str, Any] | None, cfg: RollupConfig) -> str:
    if words is None or diagnosis is None:
        return ('<p class="empty-state">No diagnosis: no action kind with a target has been below it in two '
                'closed months running.</p>')
    never = f'<p class="never-done">{_e(words["never_done"])}</p>' if words["never_done"] else ""
    return (f'<p class="summary">{_e(words["summary"])}</p>'
            '<p class="note">Where it stalls: who had to act, how many of the misses were theirs, and how late '
            'the items they did late were.</p>'
            f'<ul class="stall-points">{"".join(f"<li>{_e(w)}</li>" for w in words["stall_points"])}</ul>'
            f'{never}{_worst_html(diagnosis.get("worst", []), cfg)}')


def _worst_html(worst: list[dict[str, Any]], cfg: RollupConfig) -> str:
    if not worst:
        return ""
    rows = "".join(
        f'<tr class="worst-item"><th scope="row">{_e(item.get("action_id") or item.get("opportunity_id") or "")}</th>'
        f'<td>{_e(item["owner"])}</td><td>{_e(_local(item["due_ts"], cfg))}</td>'
        f'<td>{"never done" if item.get("hours_late") is None else fmt_hours(item["hours_late"])}</td></tr>'
        for item in worst
    )
    return ('<table class="levels worst"><caption>The worst items: never done first, then by how late they were'
            '</caption><thead><tr><th scope="col">Item</th><th scope="col">Owner</th><th scope="col">Due</th>'
            f'<th scope="col">Late by</th></tr></thead><tbody>{rows}</tbody></table>')


def _local(ts: str | int, cfg: RollupConfig) -> str:
    local = datetime.fromtimestamp(parse_ts(ts) / 1000, ZoneInfo(cfg.time_zone))
    return f"{local:%Y-%m-%d %H:%M} {cfg.time_zone}"


def team_page_html(page: dict[str, Any], cfg: RollupConfig) -> str:
    record = page["credibility"]
    return _PAGE.substitute(
        css=_CSS,
        team=_e(page["team_id"]),
        region=_e(page["region"] or "unknown"),
        as_of=_e(_local(record["ts"], cfg)) if record else "now",
        credibility=_credibility_html(record),
        water=_water_html(page["water_levels"]),
        levels=_levels_table(page["water_levels"]["series"]) if page["water_levels"]["series"] else "",
        diagnosis=_diagnosis_html(page["diagnosis_words"], page["diagnosis"], cfg),
        json_path=_e(team_url(page["team_id"]) + ".json"),
    )


def not_found_html(team_id: str) -> str:
    shown = team_id if len(team_id) <= _SHOWN_ID_CHARS else team_id[:_SHOWN_ID_CHARS] + "\u2026"
    return _NOT_FOUND.substitute(css=_CSS, team=_e(shown))
