"""The team page: its data from hand-made records (scoring.team_page) and its HTML
(streams.web.team_page), hostile upstream strings included."""

from __future__ import annotations

import html.parser
import re
from typing import Any

import pytest

from scoring.rollup.config import RollupConfig
from scoring.team_page import diagnosis_words, fmt_hours, month_axis, team_page, water_series
from streams.web.pages import heatmap_data, heatmap_html
from streams.web.team_page import not_found_html, team_page_html

CFG = RollupConfig()
HOSTILE = '<script>alert("x")</script>&"\'><img src=x onerror=alert(1)>'


def level(month: str, due: int, on_time: int, *, action: str = "tech_request", target: float | None = 95.0,
          final: bool = True, team: str = "team-a") -> dict[str, Any]:
    """An ``action-water-levels`` value as SPEC has it (level x 100, 2 decimals)."""
    value = None if due == 0 else round(on_time / due * 100, 2)
    return {"team_id": team, "region": "east", "action": action, "month": month, "due": due, "on_time": on_time,
            "missed": due - on_time, "level": value, "target": target,
            "below": value is not None and target is not None and value < target, "final": final,
            "as_of": "2026-12-01T00:00:00.000Z"}


def diagnosis(stall_points: list[dict[str, Any]], never_done: int = 0, **extra: Any) -> dict[str, Any]:
    """A ``process-diagnosis`` value (``missed``: the total, when stall points are cut short)."""
    return {"team_id": "team-a", "region": "east", "action": "tech_request", "target": 95.0,
            "months": [{"month": "2026-10", "level": 80.0, "due": 10, "on_time": 8},
                       {"month": "2026-11", "level": 66.67, "due": 9, "on_time": 6}],
            "stall_points": stall_points, "never_done": never_done, "worst": [], **extra}


def stall(owner: str, missed: int, mean: float | None, top: float | None, never_done: int = 0) -> dict[str, Any]:
    return {"owner": owner, "missed": missed, "share_of_missed": 0.0, "never_done": never_done,
            "mean_hours_late": mean, "max_hours_late": top}


RECORD = {"team_id": "team-a", "region": "east", "score": 49.23, "band": "red",
          "components": {"action_completion": 25.0, "signal_strength": 69.23, "fulfilment": None},
          "components_used": ["action_completion", "signal_strength"],
          "weights": {"action_completion": 0.4, "signal_strength": 0.35, "fulfilment": 0.25},
          "ts": "2026-12-02T09:30:00.000Z"}


# -- data ---------------------------------------------------------------------


@pytest.mark.parametrize(("months", "axis"), [
    ([], []),
    (["2026-11"], ["2026-11"]),
    (["2026-11", "2026-10", "2026-11"], ["2026-10", "2026-11"]),
    (["2026-11", "2027-02"], ["2026-11", "2026-12", "2027-01", "2027-02"]),  # gaps keep their place
])
def test_month_axis(months: list[str], axis: list[str]) -> None:
    assert month_axis(months) == axis


def test_two_months_of_one_action_make_one_series_with_the_target_on_the_level_scale() -> None:
    series = water_series([level("2026-10", 5, 4), level("2026-11", 4, 4, final=False)])
    assert series == [{
        "action": "tech_request", "target": 95.0, "points": [
            {"month": "2026-10", "due": 5, "on_time": 4, "missed": 1, "level": 80.0, "target": 95.0,
             "below": True, "final": True},
            {"month": "2026-11", "due": 4, "on_time": 4, "missed": 0, "level": 100.0, "target": 95.0,
             "below": False, "final": False},
        ]}]


def test_series_per_action_with_a_null_level_and_no_target() -> None:
    page = team_page("team-a", None, [
        level("2026-09", 2, 1, action="legal_review", target=None),
        level("2026-11", 0, 0, action="legal_review", target=None),  # nothing due: level null
        level("2026-10", 4, 3),
    ], None)
    water = page["water_levels"]
    assert water["months"] == ["2026-09", "2026-10", "2026-11"]
    assert [(s["action"], s["target"], [(p["month"], p["level"]) for p in s["points"]]) for s in water["series"]] == [
        ("legal_review", None, [("2026-09", 50.0), ("2026-11", None)]),
        ("tech_request", 95.0, [("2026-10", 75.0)]),
    ]
    assert page["credibility"] is None and page["region"] == "east"  # region from the levels without a score
    assert page["diagnosis"] is None and page["diagnosis_words"] is None


@pytest.mark.parametrize(("hours", "words"), [
    (2.25, "2.3 h"),  # halves round up, not to even
    (2.35, "2.4 h"),
    (2.5, "2.5 h"),
    (3.0, "3 h"),
    (0.04, "0 h"),
    (71.96, "72 h"),
])
def test_hours_to_one_decimal(hours: float, words: str) -> None:
    assert fmt_hours(hours) == words


def test_diagnosis_in_words() -> None:
    words = diagnosis_words(diagnosis([stall("technical", 4, 2.25, 6.0), stall("sales", 1, 0.5, 0.5)]))
    assert words == {
        "summary": "tech_request was below its target of 95 % two closed months running: "
                   "2026-10 at 80 % (8 of 10 on time), 2026-11 at 66.67 % (6 of 9 on time).",
        "stall_points": ["technical: 4 of 5 misses, 2.3 h late on average (at most 6 h)",
                         "sales: 1 of 5 misses, 0.5 h late on average (at most 0.5 h)"],
        "never_done": None,
    }


def test_diagnosis_with_items_never_done() -> None:
    """An owner all of whose misses were never done has no lateness to average."""
    words = diagnosis_words(diagnosis([stall("technical", 3, 2.0, 4.0, never_done=1),
                                       stall("unassigned", 2, None, None, never_done=2)], never_done=3))
    assert words is not None
    assert words["stall_points"] == ["technical: 3 of 5 misses, 2 h late on average (at most 4 h), 1 never done",
                                     "unassigned: 2 of 5 misses, never done"]
    assert words["never_done"] == "3 of the 5 missed items were never done."
    one = diagnosis_words(diagnosis([stall("legal", 1, None, None, never_done=1)], never_done=1))
    assert one is not None and one["never_done"] == "1 of the 1 missed items was never done."


def test_diagnosis_counts_all_misses_when_its_stall_points_are_cut_short() -> None:
    words = diagnosis_words(diagnosis([stall("technical", 4, 1.0, 1.0)], missed=60))
    assert words is not None and words["stall_points"] == ["technical: 4 of 60 misses, 1 h late on average (at most 1 h)"]


def test_no_diagnosis() -> None:
    assert diagnosis_words(None) is None


def test_a_team_without_score_or_levels_yet() -> None:
    text = " ".join("".join(Elements(team_page_html(team_page("team-a", None, [], None), CFG)).text).split())
    assert "No score yet" in text and "No required sales action of this team has fallen due yet." in text
    assert "No diagnosis" in text


# -- HTML ---------------------------------------------------------------------


class Elements(html.parser.HTMLParser):
    """Start tags (with attributes) and text of a page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, css_class: str = "") -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and (not css_class or css_class in (a.get("class") or "").split())]


def test_page_has_the_chart_with_one_point_per_month_with_items_due() -> None:
    levels = [level("2026-10", 2, 2, action="legal_review", target=None),  # ordered by action, then month
              level("2026-10", 5, 4), level("2026-11", 0, 0), level("2026-12", 4, 2, final=False)]
    page = Elements(team_page_html(team_page("team-a", RECORD, levels, None), CFG))
    points = page.find("circle", "point")
    assert [(p["data-month"], p["class"]) for p in points] == [
        ("2026-10", "point closed"),
        ("2026-10", "point closed"), ("2026-12", "point open"),  # 2026-11 had nothing due: no point
    ]
    assert [p["data-below"] for p in points] == ["false", "true", "true"]
    # tech_request's line breaks at the null month; its target is a dashed step line; legal_review has none
    assert len(page.find("polyline", "level")) == 3 and len(page.find("polyline", "target")) == 1
    assert [(a["data-action"], a["data-month"]) for t, a in page.tags if t == "tr" and "data-month" in a] == [
        ("legal_review", "2026-10"), ("tech_request", "2026-10"), ("tech_request", "2026-11"),
        ("tech_request", "2026-12")]  # the levels table: a row per record
    text = " ".join("".join(page.text).split())
    assert "target 95 %" in text and "no target" in text and "no items due" in text
    assert "49.23 Red" in text and "no data (left out)" in text
    assert "No diagnosis" in text


def test_page_states_the_diagnosis_in_words() -> None:
    worst = [{"month": "2026-11", "action_id": "tr-9", "opportunity_id": "o-9", "owner": "technical",
              "due_ts": "2026-11-03T04:00:00.000Z", "done_ts": None, "hours_late": None},
             {"month": "2026-10", "action_id": None, "opportunity_id": "o-3", "owner": "sales",
              "due_ts": "2026-10-03T04:00:00.000Z", "done_ts": "2026-10-03T05:00:00.000Z", "hours_late": 1.0}]
    d = diagnosis([stall("technical", 4, 2.5, 6.0), stall("sales", 1, 1.0, 1.0)], worst=worst)
    page = team_page_html(team_page("team-a", RECORD, [level("2026-10", 10, 8)], d), CFG)
    rows = [" ".join(re.sub("<[^>]+>", " ", row).split()) for row in re.findall('<tr class="worst-item">(.*?)</tr>', page)]
    assert rows == ["tr-9 technical 2026-11-03 12:00 Asia/Shanghai never done",
                    "o-3 sales 2026-10-03 12:00 Asia/Shanghai 1 h"]  # Shanghai is UTC+8
    assert ('<ul class="stall-points"><li>technical: 4 of 5 misses, 2.5 h late on average (at most 6 h)</li>'
            '<li>sales: 1 of 5 misses, 1 h late on average (at most 1 h)</li></ul>') in page
    assert "tech_request was below its target of 95 % two closed months running" in page
    assert "No diagnosis" not in page


def test_hostile_strings_are_escaped_everywhere() -> None:
    levels = [level("2026-10", 5, 4, action=HOSTILE, team=HOSTILE)]
    worst = [{"month": "2026-10", "action_id": HOSTILE, "opportunity_id": HOSTILE, "owner": HOSTILE,
              "due_ts": "2026-10-03T04:00:00.000Z", "done_ts": None, "hours_late": None}]
    d = {**diagnosis([stall(HOSTILE, 5, 1.0, 2.0)], worst=worst), "action": HOSTILE, "team_id": HOSTILE}
    record = {**RECORD, "team_id": HOSTILE, "region": HOSTILE}
    pages = [team_page_html(team_page(HOSTILE, record, levels, d), CFG), not_found_html(HOSTILE),
             heatmap_html(heatmap_data([record], 0, CFG), 0, CFG)]
    for page in pages:
        parsed = Elements(page)
        assert not parsed.find("script") and not parsed.find("img")
        assert all(not k.startswith("on") for _, attrs in parsed.tags for k in attrs)
        assert HOSTILE in "".join(parsed.text)  # shown as text, as it was sent
    link = Elements(pages[2]).find("a", "team-id")[0]["href"]
    assert link == "/teams/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E%26%22%27%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"


def test_unknown_team_page_cuts_a_long_id() -> None:
    page = not_found_html("x" * 5000)
    assert "x" * 200 + "\u2026" in page and "x" * 201 not in page
