"""The heat map as data and as an HTML page (``templates/heatmap.html`` and ``.css``)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib.resources import files
from string import Template
from typing import Any
from zoneinfo import ZoneInfo

from scoring.rollup.config import RollupConfig
from scoring.timeutil import format_ts
from streams.web.team_page import team_url

_TEMPLATES = files(__package__) / "templates"
_PAGE = Template((_TEMPLATES / "heatmap.html").read_text("utf-8").removesuffix("\n"))
#: band colours: text contrast 6.5:1 (red), 10.4:1 (yellow), 5.3:1 (green), WCAG AA
_CSS = (_TEMPLATES / "heatmap.css").read_text("utf-8")

_BAND_TEXT = {"red": "Red", "yellow": "Yellow", "green": "Green"}
_COMPONENT_LABELS = (("action_completion", "Actions"), ("signal_strength", "Signals"),
                     ("fulfilment", "Fulfilment"))
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def heatmap_data(records: Iterable[dict[str, Any]], at: int, cfg: RollupConfig) -> dict[str, Any]:
    """The regions of ``snapshot()`` (``credibility-heatmap``) from the teams' records
    (sorted by team) as of ``at``, with the red teams' ids instead of their traceability
    lists: those hold IP addresses, and are not computed here at all."""
    by_region: dict[str, dict[str, Any]] = {}
    for record in records:
        region = record["region"] or "unknown"
        entry = by_region.setdefault(region, {"region": region, "teams": [], "red_teams": []})
        entry["teams"].append({k: record[k] for k in ("team_id", "score", "band", "components", "components_used")})
        if record["band"] == "red":
            entry["red_teams"].append(record["team_id"])
    regions = [by_region[r] for r in sorted(by_region)]
    return {
        "at": format_ts(at),
        "time_zone": cfg.time_zone,
        "thresholds": {"red_below": cfg.red_below, "yellow_below": cfg.yellow_below},
        "regions": regions,
        "traceability": "per red team: GET /teams/{team_id}/traceability.csv with a bearer token",
    }


def _fmt_score(value: float | None) -> str:
    """``37.12``, ``37.1``, ``60``; an em dash for a component without data."""
    if value is None:
        return "\u2014"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _regions_html(regions: list[dict[str, Any]]) -> str:
    esc = html.escape
    if not regions:
        return '<p class="empty-state">No team has a score yet.</p>'
    parts = [
        '<table class="heatmap"><caption>Teams by region, with score (0\u2013100) and band</caption>',
        '<thead><tr><th scope="col">Region</th><th scope="col">Teams</th></tr></thead>',
        "<tbody>",
    ]
    for region in regions:
        name = esc(region["region"])
        parts.append(
            f'<tr data-region="{name}"><th scope="row"><span class="region-name">{name}</span> '
            f'<span class="region-count">{_plural(len(region["teams"]), "team")}</span></th>'
            f'<td class="teams"><ul class="tiles" aria-label="Teams in {name}">'
        )
        for team in region["teams"]:
            b = esc(team["band"])
            comps = "".join(
                f"<div><dt>{label}</dt> <dd>{_fmt_score(team['components'].get(key))}</dd></div> "
                for key, label in _COMPONENT_LABELS
            )
            parts.append(
                f'<li class="team band-{b}" data-team="{esc(team["team_id"])}" data-band="{b}" '
                f'data-score="{team["score"]}">'
                f'<a class="team-id" href="{esc(team_url(team["team_id"]))}">{esc(team["team_id"])}</a> '
                f'<span class="headline"><span class="score">{_fmt_score(team["score"])}</span> '
                f'<span class="band-label">{_BAND_TEXT.get(team["band"], b)}</span></span> '
                f'<dl class="components">{comps}</dl></li>'
            )
        parts.append("</ul></td></tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def heatmap_html(data: dict[str, Any], at: int, cfg: RollupConfig) -> str:
    """A page a person reads at a glance: one row per region, a coloured tile per team
    with its id, score and band in words (colour is never the only cue)."""
    esc = html.escape
    local = datetime.fromtimestamp(at / 1000, ZoneInfo(cfg.time_zone))
    offset = local.strftime("%z")
    regions = data["regions"]
    weights = " \u00b7 ".join(
        f"{label.lower()} {_fmt_score(w * 100)} %"
        for (_, label), w in zip(_COMPONENT_LABELS, (cfg.weight_action_completion, cfg.weight_signal_strength,
                                                     cfg.weight_fulfilment), strict=True)
    )
    red_teams = [t for r in regions for t in r["red_teams"]]
    footer = ("Red teams export their signal traceability list (trigger time, IP address, customer) "
              "with <code>GET /teams/{team_id}/traceability.csv?week=YYYY-MM-DD</code> and "
              "<code>Authorization: Bearer &lt;CREDENCE_WEB_TOKEN&gt;</code>.")
    if red_teams:
        footer += " Red now: " + ", ".join(f"<strong>{esc(t)}</strong>" for t in red_teams) + "."
    return _PAGE.substitute(
        css=_CSS,
        at=esc(data["at"]),
        local=f"{local:%Y-%m-%d %H:%M}",
        time_zone=esc(cfg.time_zone),
        offset=f"UTC{offset[:3]}:{offset[3:]}",
        utc=f"{datetime.fromtimestamp(at / 1000, UTC):%Y-%m-%d %H:%M}",
        team_count=_plural(sum(len(r["teams"]) for r in regions), "team"),
        region_count=_plural(len(regions), "region"),
        weekday=_WEEKDAYS[cfg.heatmap_weekday],
        publish_time=f"{cfg.heatmap_hour:02d}:{cfg.heatmap_minute:02d}",
        red=_fmt_score(cfg.red_below),
        yellow=_fmt_score(cfg.yellow_below),
        weights=weights,
        regions=_regions_html(regions),
        footer=footer,
    )
