"""The weekly heat map (``scoring.rollup.heatmap`` and ``TeamRollup.tick``): when it
is due in the configured zone, what a snapshot holds, the traceability list."""

from __future__ import annotations

import csv
import io

import pytest

from scoring.deltas import Owner
from scoring.rollup.config import RollupConfig
from scoring.rollup.heatmap import (
    CSV_COLUMNS,
    WEEK_MS,
    boundaries_crossed,
    last_boundary,
    snapshot,
    traceability,
    traceability_csv,
)
from scoring.rollup.team import TeamState
from tests.unit.rollup_fixtures import (
    D,
    H,
    action,
    customer,
    make_delta,
    new_rollup,
    outcome,
    trace_update,
    utc,
)

SHANGHAI = RollupConfig()
LA = RollupConfig(time_zone="America/Los_Angeles")
MIN = 60_000

#: Friday 2026-11-27 17:00 in Shanghai (UTC+8, no DST)
FRI = utc("2026-11-27T09:00:00Z")
PREV_FRI = utc("2026-11-20T09:00:00Z")


# --- when ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ["now", "expected"],
    [
        pytest.param("2026-11-27T08:59:00Z", "2026-11-20T09:00:00Z", id="Fri 16:59"),
        pytest.param("2026-11-27T08:59:59.999Z", "2026-11-20T09:00:00Z", id="Fri 16:59:59.999"),
        pytest.param("2026-11-27T09:00:00Z", "2026-11-27T09:00:00Z", id="Fri 17:00"),
        pytest.param("2026-11-27T09:00:00.001Z", "2026-11-27T09:00:00Z", id="Fri 17:00:00.001"),
        pytest.param("2026-11-27T15:59:59Z", "2026-11-27T09:00:00Z", id="Fri 23:59:59"),
        pytest.param("2026-11-27T16:00:00Z", "2026-11-27T09:00:00Z", id="Sat 00:00"),
        pytest.param("2026-11-26T20:00:00Z", "2026-11-20T09:00:00Z", id="Fri 04:00, UTC Thu"),
        pytest.param("2026-12-04T08:59:59Z", "2026-11-27T09:00:00Z", id="next Fri 16:59:59"),
        pytest.param("2026-11-30T00:00:00Z", "2026-11-27T09:00:00Z", id="Mon"),
        pytest.param("2026-12-31T23:00:00Z", "2026-12-25T09:00:00Z", id="over new year"),
    ],
)
def test_last_boundary_shanghai(now, expected):
    assert last_boundary(utc(now), SHANGHAI) == utc(expected)


@pytest.mark.parametrize(
    ["now", "expected"],
    [
        # Friday 17:00 PST is Saturday 01:00 UTC
        pytest.param("2026-11-14T00:59:59.999Z", "2026-11-07T01:00:00Z", id="Fri 16:59:59.999 PST"),
        pytest.param("2026-11-14T01:00:00Z", "2026-11-14T01:00:00Z", id="Fri 17:00 PST = Sat 01:00Z"),
        pytest.param("2026-11-13T09:00:00Z", "2026-11-07T01:00:00Z", id="Fri 09:00Z is Fri 01:00 PST"),
        # DST ends Sunday 2026-11-01: Fri 10-30 17:00 PDT = 10-31 00:00Z, Fri 11-06 17:00 PST = 11-07 01:00Z
        pytest.param("2026-10-31T00:00:00Z", "2026-10-31T00:00:00Z", id="Fri 17:00 PDT"),
        pytest.param("2026-11-07T00:30:00Z", "2026-10-31T00:00:00Z", id="Fri 16:30 PST, after DST end"),
        pytest.param("2026-11-07T01:00:00Z", "2026-11-07T01:00:00Z", id="first Fri 17:00 PST"),
        pytest.param("2026-11-01T09:30:00Z", "2026-10-31T00:00:00Z", id="on the fall-back Sunday"),
        # DST starts Sunday 2026-03-08: Fri 03-06 17:00 PST = 03-07 01:00Z, Fri 03-13 17:00 PDT = 03-14 00:00Z
        pytest.param("2026-03-14T00:00:00Z", "2026-03-14T00:00:00Z", id="first Fri 17:00 PDT"),
        pytest.param("2026-03-13T23:59:59Z", "2026-03-07T01:00:00Z", id="Fri 16:59:59 PDT"),
        pytest.param("2026-03-08T12:00:00Z", "2026-03-07T01:00:00Z", id="on the spring-forward Sunday"),
    ],
)
def test_last_boundary_los_angeles(now, expected):
    assert last_boundary(utc(now), LA) == utc(expected)


@pytest.mark.parametrize(
    ["cfg", "now", "expected"],
    [
        pytest.param(RollupConfig(time_zone="UTC"), "2026-11-27T17:00:00Z", "2026-11-27T17:00:00Z",
                     id="UTC"),
        pytest.param(RollupConfig(heatmap_weekday=0, heatmap_hour=9, heatmap_minute=30),
                     "2026-11-30T01:30:00Z", "2026-11-30T01:30:00Z", id="Monday 09:30 Shanghai"),
        pytest.param(RollupConfig(heatmap_weekday=0, heatmap_hour=9, heatmap_minute=30),
                     "2026-11-30T01:29:59Z", "2026-11-23T01:30:00Z", id="Monday 09:29:59 Shanghai"),
        pytest.param(RollupConfig(time_zone="Pacific/Kiritimati"), "2026-11-27T03:00:00Z",
                     "2026-11-27T03:00:00Z", id="UTC+14: Friday 17:00 is Friday 03:00Z"),
    ],
)  # fmt: skip
def test_last_boundary_configurable(cfg, now, expected):
    assert last_boundary(utc(now), cfg) == utc(expected)


@pytest.mark.parametrize(
    ["cfg", "after", "until", "expected"],
    [
        pytest.param(SHANGHAI, FRI, FRI, [], id="same instant"),
        pytest.param(SHANGHAI, PREV_FRI, FRI - 1, [], id="1 ms before"),
        pytest.param(SHANGHAI, PREV_FRI, FRI, [FRI], id="exactly at"),
        pytest.param(SHANGHAI, FRI - 1, FRI, [FRI], id="after is exclusive"),
        pytest.param(SHANGHAI, FRI, FRI + 6 * D, [], id="rest of the week"),
        pytest.param(SHANGHAI, PREV_FRI, FRI + 14 * D + MIN,
                     [FRI, FRI + 7 * D, FRI + 14 * D], id="three weeks"),
        pytest.param(SHANGHAI, FRI + D, FRI, [], id="until before after"),
        pytest.param(LA, utc("2026-10-24T00:00:00Z"), utc("2026-11-14T01:00:00Z"),
                     [utc("2026-10-31T00:00:00Z"), utc("2026-11-07T01:00:00Z"),
                      utc("2026-11-14T01:00:00Z")], id="across DST end: 7 d + 1 h gap"),
        pytest.param(LA, utc("2026-03-07T01:00:00Z"), utc("2026-03-21T00:00:00Z"),
                     [utc("2026-03-14T00:00:00Z"), utc("2026-03-21T00:00:00Z")],
                     id="across DST start: 7 d - 1 h gap"),
    ],
)  # fmt: skip
def test_boundaries_crossed(cfg, after, until, expected):
    assert boundaries_crossed(after, until, cfg) == expected


# --- the schedule: TeamRollup.tick with an injected clock ----------------------------


def two_regions():
    """T1 (east) and T2 (west), both with data that does not change with time."""
    rollup = new_rollup()
    rollup.apply("T1", customer("C1", 26, PREV_FRI - D, region="east"))
    rollup.apply("T1", outcome("2026-10", 100, 90))
    rollup.apply("T2", customer("C2", 13, PREV_FRI - D, region="west", as_of=PREV_FRI - D))
    rollup.apply("T2", outcome("2026-10", 100, 100, team_id="T2"))
    return rollup


def heatmaps(outputs):
    return [(o.key, o.value["at"], o.value["trigger"]) for o in outputs if o.topic == "credibility-heatmap"]


FRI_ISO = "2026-11-27T09:00:00.000Z"


@pytest.mark.parametrize(
    ["ticks", "expected"],
    [
        pytest.param([FRI - 3 * H], [[]], id="first tick: starts the schedule"),
        pytest.param([FRI], [[]], id="first tick at a boundary: nothing back-filled"),
        pytest.param([FRI - 3 * H, FRI - MIN], [[], []], id="16:59: nothing"),
        pytest.param([FRI - 3 * H, FRI - 1], [[], []], id="16:59:59.999: nothing"),
        pytest.param(
            [FRI - 3 * H, FRI],
            [[], [("east", FRI_ISO, "schedule"), ("west", FRI_ISO, "schedule")]],
            id="17:00: one record per region",
        ),
        pytest.param(
            [FRI - 3 * H, FRI + 5 * MIN, FRI + H, FRI + 6 * D],
            [[], [("east", FRI_ISO, "schedule"), ("west", FRI_ISO, "schedule")], [], []],
            id="later ticks the same week: nothing",
        ),
        pytest.param(
            [FRI - 3 * H, FRI + 14 * D + MIN],
            [[], [("east", FRI_ISO, "schedule"), ("west", FRI_ISO, "schedule"),
                  ("east", "2026-12-04T09:00:00.000Z", "schedule"),
                  ("west", "2026-12-04T09:00:00.000Z", "schedule"),
                  ("east", "2026-12-11T09:00:00.000Z", "schedule"),
                  ("west", "2026-12-11T09:00:00.000Z", "schedule")]],
            id="two weeks and a bit later: every missed week, oldest first",
        ),
        pytest.param(
            [FRI - 3 * H, FRI, FRI - H],
            [[], [("east", FRI_ISO, "schedule"), ("west", FRI_ISO, "schedule")], []],
            id="a clock going back publishes nothing again",
        ),
    ],
)  # fmt: skip
def test_tick_schedule(ticks, expected):
    rollup = two_regions()
    assert [heatmaps(rollup.tick(now)) for now in ticks] == expected


def test_tick_remembers_the_last_heatmap():
    rollup = two_regions()
    assert rollup.store.last_heatmap() is None
    rollup.tick(FRI - 3 * H)
    assert rollup.store.last_heatmap() == PREV_FRI
    rollup.tick(FRI + 14 * D + MIN)
    assert rollup.store.last_heatmap() == FRI + 14 * D


def test_tick_in_los_angeles():
    rollup = new_rollup(LA)
    rollup.apply("T1", outcome("2026-10", 100, 90))
    rollup.tick(utc("2026-11-06T12:00:00Z"))  # Friday 04:00 PST
    assert heatmaps(rollup.tick(utc("2026-11-07T00:59:59Z"))) == []  # Friday 16:59:59 PST
    assert heatmaps(rollup.tick(utc("2026-11-07T01:00:00Z"))) == [
        ("unknown", "2026-11-07T01:00:00.000Z", "schedule")
    ]


def test_heatmap_on_demand():
    rollup = two_regions()
    assert heatmaps(rollup.heatmap(FRI)) == [("east", FRI_ISO, "on_demand"), ("west", FRI_ISO, "on_demand")]
    assert rollup.store.last_heatmap() is None  # on demand does not move the schedule


def test_heatmap_without_teams():
    rollup = new_rollup()
    rollup.tick(FRI - H)
    assert rollup.tick(FRI) == []
    assert snapshot([], FRI, SHANGHAI) == []


# --- what a snapshot holds ---------------------------------------------------------


def delta_at(name, ts, customer_id="C1", signal="risk", points=-5, ip="10.0.0.1", team="TR"):
    """A delta whose evidence is ``<name>p`` (no ip) and ``<name>c`` (``ip``)."""
    return make_delta(
        signal, points, ts, customer_id=customer_id, owner=Owner(team, "east", "R1"),
        evidence=[(f"{name}p", "stale-update", ts - 49 * H, None), (f"{name}c", "stale-update", ts - H, ip)],
    )  # fmt: skip


#: deltas of the red team TR around the week [FRI - 7 d, FRI)
IN_WEEK = [
    delta_at("a", FRI - 7 * D),
    delta_at("b", FRI - 3 * D, "C2", "urgency", 6, None),
    delta_at("c", FRI - 1),
]
OUT_OF_WEEK = [delta_at("x", FRI - 7 * D - 1), delta_at("y", FRI), delta_at("z", FRI + H)]


def snapshot_teams():
    """TR red (east), TG green (east), TY yellow (west), TN without any data."""
    rollup = new_rollup()
    # TR: action completion 0 (one due action not done), strength 50
    #     -> (0.4 * 0 + 0.35 * 50) / 0.75 = 23.33, red
    rollup.apply("TR", action("O1", "demo", FRI - 2 * D, team_id="TR"))
    rollup.apply("TR", customer("C1", 13, FRI - 10 * D))
    for delta in [*OUT_OF_WEEK[::-1], *IN_WEEK]:
        rollup.apply("TR", trace_update(delta))
    # TG: strength 100 and fulfilment 100 -> 100, green
    rollup.apply("TG", customer("C3", 26, FRI - 10 * D))
    rollup.apply("TG", outcome("2026-10", 100, 100, team_id="TG"))
    rollup.apply("TG", trace_update(delta_at("g", FRI - D, "C3", team="TG")))  # not red: no list
    # TY: strength 21 / 26 * 100 = 80.77, yellow
    rollup.apply("TY", customer("C4", 21, FRI - 10 * D, region="west"))
    # TN: its only customer is inactive at FRI
    rollup.apply("TN", customer("C5", 26, FRI - 31 * D, region="north"))
    return rollup


def row(delta):
    return {
        "delta_id": delta.delta_id,
        "customer_id": delta.customer_id,
        "signal": delta.signal,
        "points": delta.points,
        "ts": delta.to_record(None)["ts"],
        "ip": next((e.ip for e in reversed(delta.evidence) if e.ip), None),
        "evidence_ids": [e.event_id for e in delta.evidence],
        "region": "east",
    }


def test_snapshot_content():
    rollup = snapshot_teams()
    east, west = snapshot(rollup.store.all(), FRI, SHANGHAI)
    assert east == {
        "region": "east",
        "at": FRI_ISO,
        "week_start": "2026-11-20T09:00:00.000Z",
        "time_zone": "Asia/Shanghai",
        "teams": [
            {
                "team_id": "TG", "score": 100.0, "band": "green",
                "components": {"action_completion": None, "signal_strength": 100.0, "fulfilment": 100.0},
                "components_used": ["signal_strength", "fulfilment"],
            },
            {
                "team_id": "TR", "score": 23.33, "band": "red",
                "components": {"action_completion": 0.0, "signal_strength": 50.0, "fulfilment": None},
                "components_used": ["action_completion", "signal_strength"],
            },
        ],
        "traceability": {"TR": [row(d) for d in IN_WEEK]},
        "regions_total": 2,
    }  # fmt: skip
    assert west["region"] == "west"
    assert west["teams"] == [
        {
            "team_id": "TY", "score": 80.77, "band": "yellow",
            "components": {"action_completion": None, "signal_strength": 80.77, "fulfilment": None},
            "components_used": ["signal_strength"],
        }
    ]  # fmt: skip
    assert west["traceability"] == {}


def test_traceability_rows():
    rows = snapshot(snapshot_teams().store.all(), FRI, SHANGHAI)[0]["traceability"]["TR"]
    assert [(r["ts"], r["customer_id"], r["ip"], r["signal"], r["points"]) for r in rows] == [
        ("2026-11-20T09:00:00.000Z", "C1", "10.0.0.1", "risk", -5),  # exactly at week start: in
        ("2026-11-24T09:00:00.000Z", "C2", None, "urgency", 6),  # no ip on any evidence
        ("2026-11-27T08:59:59.999Z", "C1", "10.0.0.1", "risk", -5),  # 1 ms before: in
    ]
    assert [r["evidence_ids"] for r in rows] == [["ap", "ac"], ["bp", "bc"], ["cp", "cc"]]


@pytest.mark.parametrize(
    ["start", "end", "count"],
    [
        pytest.param(FRI - 7 * D, FRI, 3, id="the week"),
        pytest.param(FRI - 7 * D - 1, FRI, 4, id="1 ms earlier start"),
        pytest.param(FRI - 7 * D, FRI + 1, 4, id="1 ms later end"),
        pytest.param(FRI - 7 * D + 1, FRI, 2, id="1 ms later start"),
        pytest.param(FRI, FRI, 0, id="empty range"),
        pytest.param(FRI - 30 * D, FRI + 30 * D, 6, id="everything"),
    ],
)
def test_traceability_range(start, end, count):
    assert len(traceability(snapshot_teams().store.all(), "TR", start, end)) == count


def test_trace_is_deduplicated_by_delta_id():
    rollup = new_rollup()
    rollup.apply("TR", action("O1", "demo", FRI - 2 * D, team_id="TR"))
    rollup.apply("TR", trace_update(IN_WEEK[0]))
    rollup.apply("TR", trace_update(IN_WEEK[0]))
    assert len(traceability(rollup.store.all(), "TR", FRI - 7 * D, FRI)) == 1


def test_snapshot_of_an_unknown_region_and_no_red_team():
    rollup = new_rollup()
    rollup.apply("T9", outcome("2026-10", 100, 100, team_id="T9"))
    (only,) = snapshot(rollup.store.all(), FRI, SHANGHAI)
    assert (only["region"], only["traceability"], only["regions_total"]) == ("unknown", {}, 1)


def test_snapshot_through_tick_has_the_week_list():
    rollup = snapshot_teams()
    rollup.tick(FRI - H)
    (east,) = [o.value for o in rollup.tick(FRI) if o.topic == "credibility-heatmap" and o.key == "east"]
    assert east["traceability"]["TR"] == [row(d) for d in IN_WEEK]
    assert east["trigger"] == "schedule"


# --- CSV export ---------------------------------------------------------------------


def test_csv_columns():
    assert CSV_COLUMNS == ("ts", "customer_id", "ip", "signal", "points", "delta_id", "evidence_ids")


@pytest.mark.parametrize(
    ["rows", "expected"],
    [
        pytest.param([], "ts,customer_id,ip,signal,points,delta_id,evidence_ids\n", id="no rows"),
        pytest.param(
            [{"ts": "2026-11-20T09:00:00.000Z", "customer_id": "C1", "ip": "10.0.0.1",
              "signal": "risk", "points": -5, "delta_id": "abc", "evidence_ids": ["p1", "c1"]}],
            "ts,customer_id,ip,signal,points,delta_id,evidence_ids\n"
            "2026-11-20T09:00:00.000Z,C1,10.0.0.1,risk,-5,abc,p1 c1\n",
            id="one row",
        ),
        pytest.param(
            [{"ts": "t", "customer_id": "C,2", "ip": None, "signal": "urgency", "points": 6,
              "delta_id": "d", "evidence_ids": ['k"1']}],
            'ts,customer_id,ip,signal,points,delta_id,evidence_ids\nt,"C,2",,urgency,6,d,"k""1"\n',
            id="no ip, quoting",
        ),
        pytest.param(
            [{"ts": "t", "customer_id": "C3", "signal": "urgency", "points": 6, "delta_id": "d",
              "evidence_ids": []}],
            "ts,customer_id,ip,signal,points,delta_id,evidence_ids\nt,C3,,urgency,6,d,\n",
            id="ip key missing, no evidence",
        ),
    ],
)  # fmt: skip
def test_traceability_csv(rows, expected):
    assert traceability_csv(rows) == expected


HEADER = "ts,customer_id,ip,signal,points,delta_id,evidence_ids\n"


@pytest.mark.parametrize(
    ["ip", "cell"],
    [
        pytest.param("10.0.0.1\r@SUM(1)", '"10.0.0.1\r@SUM(1)"', id="bare CR"),
        pytest.param("10.0.0.1\n=1+1", '"10.0.0.1\n=1+1"', id="LF"),
        pytest.param("10.0.0.1\r\n-2", '"10.0.0.1\r\n-2"', id="CRLF"),
        pytest.param('10.0.0.1"x', '"10.0.0.1""x"', id="quote"),
        pytest.param("10.0.0.1,=1", '"10.0.0.1,=1"', id="separator"),
        pytest.param("=HYPERLINK(1)", "'=HYPERLINK(1)", id="leading ="),
        pytest.param("+1", "'+1", id="leading +"),
        pytest.param("-1", "'-1", id="leading -"),
        pytest.param("@SUM(1)", "'@SUM(1)", id="leading @"),
        pytest.param("\t=1", "'\t=1", id="leading tab"),
        pytest.param("\r=1", '"\'\r=1"', id="leading CR"),
        pytest.param("=1,2", '"\'=1,2"', id="formula with separator"),
        pytest.param("10.0.0.1", "10.0.0.1", id="plain"),
    ],
)  # fmt: skip
def test_traceability_csv_hostile_fields(ip, cell):
    rows = [{"ts": "t", "customer_id": ip, "ip": ip, "signal": "risk", "points": -5, "delta_id": "d",
             "evidence_ids": [ip]}]
    text = traceability_csv(rows)
    assert text == f"{HEADER}t,{cell},{cell},risk,-5,d,{cell}\n"
    # a CSV reader (as a spreadsheet) sees one header and one row of seven fields, the
    # hostile text intact but for the formula guard
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    guarded = ip if ip[:1] not in "=+-@\t\r" else "'" + ip
    assert parsed == [list(CSV_COLUMNS), ["t", guarded, guarded, "risk", "-5", "d", guarded]]


def test_traceability_csv_of_a_snapshot():
    rows = snapshot(snapshot_teams().store.all(), FRI, SHANGHAI)[0]["traceability"]["TR"]
    lines = traceability_csv(rows).splitlines()
    assert lines[0] == "ts,customer_id,ip,signal,points,delta_id,evidence_ids"
    assert lines[1:] == [
        f"2026-11-20T09:00:00.000Z,C1,10.0.0.1,risk,-5,{IN_WEEK[0].delta_id},ap ac",
        f"2026-11-24T09:00:00.000Z,C2,,urgency,6,{IN_WEEK[1].delta_id},bp bc",
        f"2026-11-27T08:59:59.999Z,C1,10.0.0.1,risk,-5,{IN_WEEK[2].delta_id},cp cc",
    ]


# --- deviations ---------------------------------------------------------------------


def test_activity_after_the_boundary_does_not_hide_a_customer():
    rollup = new_rollup()
    rollup.tick(FRI - H)
    rollup.apply("T1", customer("C1", 13, FRI - H))  # active at 16:00: strength 50 at 17:00
    rollup.apply("T1", customer("C1", 13, FRI + 5_000))  # another event at 17:00:05
    (east,) = [o.value for o in rollup.tick(FRI + 10_000) if o.topic == "credibility-heatmap"]
    assert [(t["team_id"], t["score"]) for t in east["teams"]] == [("T1", 50.0)]


def test_week_length_and_an_empty_team():
    assert WEEK_MS == 7 * D
    assert TeamState("x").record(FRI, SHANGHAI) is None
