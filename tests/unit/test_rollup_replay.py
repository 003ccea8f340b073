"""The roll-up end to end: a recorded log of raw records through ``replay()``, with
the team's score computed by hand."""

from __future__ import annotations

import orjson
import pytest

from scoring.replay import LogRecord, read_log, replay
from scoring.rollup.team import COMPONENTS
from tests.unit.fixtures import catalog, record, rules
from tests.unit.rollup_fixtures import NOW, D, H, brief_team, of

CFG = rules()


def directory(customer_id, team="T1", region="east"):
    return record("customer-directory", key=customer_id, customer_id=customer_id, team_id=team,
                  region=region, rep_id="R1", event_id=f"dir-{customer_id}-{team}")  # fmt: skip


def quotes(customer_id, start, ip=None):
    """Three long quote opens an hour apart: high_intent (+8) at ``start + 2 h``."""
    return [
        record("document-open", key=customer_id, customer_id=customer_id, event_id=f"{customer_id}-q{i}",
               ts=start + i * H, dwell_seconds=300, ip=ip)
        for i in range(3)
    ]  # fmt: skip


def logins(customer_id, start, ip=None):
    """Procurement, technical, legal an hour apart: decision_chain (+12) at ``start + 2 h``."""
    return [
        record("role-login", key=customer_id, customer_id=customer_id, event_id=f"{customer_id}-l{i}",
               ts=start + i * H, role=role, ip=ip)
        for i, role in enumerate(("procurement", "technical", "legal"))
    ]  # fmt: skip


def rush(customer_id, ts, contract_id, ip=None):
    """urgency (+6) at ``ts``."""
    return [record("rush-delivery", key=customer_id, customer_id=customer_id,
                   event_id=f"{customer_id}-{contract_id}", ts=ts, contract_id=contract_id, ip=ip)]  # fmt: skip


def stale(customer_id, opportunity_id, start, ip=None):
    """A progress update, then a reconsider communication an hour later: risk (-5) at
    ``start + 48 h`` once the clock passes it."""
    return [
        record("stale-update", key=customer_id, customer_id=customer_id, event_id=f"{customer_id}-p",
               ts=start, opportunity_id=opportunity_id, kind="progress"),
        record("stale-update", key=customer_id, customer_id=customer_id, event_id=f"{customer_id}-c",
               ts=start + H, opportunity_id=opportunity_id, kind="communication",
               outcome="reconsider", ip=ip),
    ]  # fmt: skip


def sales_action(opportunity_id, name, due, done=None, team="T1", ts=None):
    fields = {"done_ts": done} if done is not None else {}
    return record("sales-action", event_id=f"sa-{opportunity_id}-{name}", ts=ts or done or due,
                  opportunity_id=opportunity_id, team_id=team, action=name, due_ts=due, **fields)  # fmt: skip


def forecast(period, forecast_amount, actual_amount, team="T1"):
    return record("forecast-outcome", key=team, event_id=f"fo-{team}-{period}", ts=NOW - 40 * D,
                  team_id=team, period=period, forecast_amount=forecast_amount,
                  actual_amount=actual_amount)  # fmt: skip


def behaviour_by_time(*groups):
    """Behaviour records of several customers merged in event-time order."""
    records = [r for group in groups for r in group]
    return sorted(records, key=lambda r: orjson.loads(r.value)["ts"])


def team_log() -> list[LogRecord]:
    behaviour = behaviour_by_time(
        # C5: decision chain 40 days ago, nothing since: inactive, its 12 points aged out
        logins("C5", NOW - 40 * D),
        # C1: 8 + 12 + 6 = 26 -> strength 100
        quotes("C1", NOW - 6 * D, ip="10.1.1.1"),
        logins("C1", NOW - 5 * D, ip="10.1.1.2"),
        rush("C1", NOW - 4 * D, "K-1", ip="10.1.1.3"),
        # C2: risk -5 (at NOW - 8 d) + 12 + 6 = 13 -> strength 50
        stale("C2", "O2", NOW - 10 * D, ip="10.2.2.2"),
        logins("C2", NOW - 5 * D),
        rush("C2", NOW - 4 * D + H, "K-2"),
        # C3: risk -5 (at NOW - 8 d + 2 h) -> strength 0
        stale("C3", "O3", NOW - 10 * D + 2 * H),
        # C4: 8 + 12 + 6 + 6 = 32 -> clamped to 100
        quotes("C4", NOW - 3 * D),
        logins("C4", NOW - 3 * D + 3 * H),
        rush("C4", NOW - 2 * D, "K-3"),
        rush("C4", NOW - 2 * D + H, "K-4"),
    )
    return [
        *(directory(c) for c in ("C1", "C2", "C3", "C4", "C5")),
        *behaviour,
        # actions due in (NOW - 30 d, NOW]: O1, O4, O7 on time; O2 late; O3 not done -> 3 / 5
        sales_action("O1", "demo", NOW - 10 * D, NOW - 11 * D),
        sales_action("O2", "demo", NOW - 5 * D, NOW - 4 * D),
        sales_action("O3", "call", NOW - 3 * D),
        sales_action("O4", "proposal", NOW - D, NOW - D),
        sales_action("O5", "demo", NOW - 31 * D, NOW - 32 * D),  # out of the window
        sales_action("O6", "demo", NOW + 2 * D, NOW - D),  # not yet due
        sales_action("O7", "call", NOW - 20 * D, NOW - 20 * D - H),
        # fulfilment: the last six periods, 2026-04 is the seventh
        forecast("2026-04", 100, 50),
        forecast("2026-05", 100, 90),  # 0.10
        forecast("2026-06", 200, 220),  # 0.10
        forecast("2026-07", 100, 100),  # 0
        forecast("2026-08", 50, 40),  # 0.20
        forecast("2026-09", 100, 130),  # 0.30
        forecast("2026-10", 400, 380),  # 0.05
    ]


# action completion  = 3 / 5 * 100                        = 60
# signal strength    = (100 + 50 + 0 + 100) / 4            = 62.5   (C5 inactive)
# fulfilment         = 100 - (0.1+0.1+0+0.2+0.3+0.05)/6*100 = 87.5
# score              = 0.4*60 + 0.35*62.5 + 0.25*87.5      = 24 + 21.875 + 21.875 = 67.75 -> red
HAND = (
    67.75,
    "red",
    {"action_completion": 60.0, "signal_strength": 62.5, "fulfilment": 87.5},
    list(COMPONENTS),
)


def as_lines(records):
    """The log as ``credence replay`` reads it: one JSON object per line."""
    return [
        orjson.dumps({"topic": r.topic, "key": r.key.decode(), "value": orjson.loads(r.value)})
        for r in records
    ]


def test_replay_gives_the_hand_computed_score():
    result = replay(read_log(as_lines(team_log())), catalog(), CFG, now=NOW)
    assert result.invalid == []
    records = of(result.outputs, "team-credibility", "T1")
    assert brief_team(records[-1]) == HAND
    assert (records[-1]["team_id"], records[-1]["region"]) == ("T1", "east")


def test_replay_customer_scores():
    result = replay(team_log(), catalog(), CFG, now=NOW)
    last = {}
    for value in of(result.outputs, "customer-scores"):
        last[value["customer_id"]] = (value["net_points"], value["breakdown"])
    assert last == {
        "C1": (26, {"decision_chain": 12, "high_intent": 8, "urgency": 6}),
        "C2": (13, {"decision_chain": 12, "risk": -5, "urgency": 6}),
        "C3": (-5, {"risk": -5}),
        "C4": (32, {"decision_chain": 12, "high_intent": 8, "urgency": 12}),
        "C5": (0, {}),  # aged out
    }
    assert sorted((d.customer_id, d.signal, d.ts) for d in result.deltas if d.signal == "risk") == [
        ("C2", "risk", NOW - 8 * D), ("C3", "risk", NOW - 8 * D + 2 * H),
    ]  # fmt: skip


def test_replay_alerts():
    result = replay(team_log(), catalog(), CFG, now=NOW)
    alerts = {a["customer_id"]: a for a in of(result.outputs, "procurement-alerts")}
    # C1 and C4: high intent + decision chain = 20 within 7 days. C2: its risk (NOW - 8 d)
    # is within 7 days of its chain and urgency: -5 + 12 + 6 = 13. C3, C5 never reach 18.
    assert sorted(alerts) == ["C1", "C4"]
    assert [c["signal"] for c in alerts["C1"]["contributing_deltas"]] == ["high_intent", "decision_chain"]
    assert (alerts["C1"]["net_points"], alerts["C1"]["ts"]) == (20, "2026-11-21T11:30:00.000Z")
    assert {a["team_id"] for a in alerts.values()} == {"T1"}


@pytest.mark.parametrize(
    ["now", "expected"],
    [
        pytest.param(NOW, HAND, id="now"),
        pytest.param(NOW + H, HAND, id="an hour later: nothing changed"),
        # at NOW + 21 d: actions due in (NOW - 9 d, NOW + 21 d]: O2 late, O3 not done, O4 and
        # O6 (now due, done early) on time -> 2 / 4 = 50. C3 (last event NOW - 10 d + 3 h)
        # is inactive: (100 + 50 + 100) / 3 = 83.33.
        # score = 0.4 * 50 + 0.35 * 83.333 + 0.25 * 87.5 = 20 + 29.167 + 21.875 = 71.04
        pytest.param(
            NOW + 21 * D,
            (71.04, "yellow",
             {"action_completion": 50.0, "signal_strength": 83.33, "fulfilment": 87.5},
             list(COMPONENTS)),
            id="three weeks later",
        ),
        # at NOW + 40 d no action is due and no customer active: fulfilment alone
        pytest.param(
            NOW + 40 * D,
            (87.5, "green", {"action_completion": None, "signal_strength": None, "fulfilment": 87.5},
             ["fulfilment"]),
            id="forty days later: weights rescaled to fulfilment",
        ),
    ],
)  # fmt: skip
def test_replay_now_moves_the_team_clock(now, expected):
    result = replay(team_log(), catalog(), CFG, now=now)
    assert brief_team(of(result.outputs, "team-credibility", "T1")[-1]) == expected


def test_replay_heatmap_at_has_the_traceability_list():
    result = replay(team_log(), catalog(), CFG, now=NOW, heatmap_at=NOW)
    (east,) = of(result.outputs, "credibility-heatmap")
    assert east["trigger"] == "on_demand"
    assert [(t["team_id"], t["score"], t["band"]) for t in east["teams"]] == [("T1", 67.75, "red")]
    rows = east["traceability"]["T1"]
    # deltas in [NOW - 7 d, NOW), oldest first (ties by delta id); the two risks
    # (NOW - 8 d, NOW - 8 d + 2 h) and C5's chain (NOW - 40 d) are older
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    assert sorted(rows_key(rows)) == [
        ("2026-11-20T11:30:00.000Z", "C1", "high_intent", 8, "10.1.1.1"),
        ("2026-11-21T11:30:00.000Z", "C1", "decision_chain", 12, "10.1.1.2"),
        ("2026-11-21T11:30:00.000Z", "C2", "decision_chain", 12, None),
        ("2026-11-22T09:30:00.000Z", "C1", "urgency", 6, "10.1.1.3"),
        ("2026-11-22T10:30:00.000Z", "C2", "urgency", 6, None),
        ("2026-11-23T11:30:00.000Z", "C4", "high_intent", 8, None),
        ("2026-11-23T14:30:00.000Z", "C4", "decision_chain", 12, None),
        ("2026-11-24T09:30:00.000Z", "C4", "urgency", 6, None),
        ("2026-11-24T10:30:00.000Z", "C4", "urgency", 6, None),
    ]
    assert rows[0]["evidence_ids"] == ["C1-q0", "C1-q1", "C1-q2"]
    assert rows[-1]["evidence_ids"] == ["C4-K-4"]


def rows_key(rows):
    return [(r["ts"], r["customer_id"], r["signal"], r["points"], r["ip"]) for r in rows]


# --- a customer moving teams ----------------------------------------------------------


def test_replay_customer_moving_teams():
    log = [
        directory("C1", "T1"),
        directory("C2", "T1"),
        # reported at NOW (its ts moves T1's clock): T1 keeps action completion 100
        sales_action("O1", "demo", NOW - 2 * D, NOW - 3 * D, ts=NOW),
        *behaviour_by_time(logins("C1", NOW - 5 * D), rush("C1", NOW - 4 * D, "K-1"),
                           logins("C2", NOW - 5 * D)),
        directory("C1", "T2"),  # C1 (18 points) moves to T2
    ]  # fmt: skip
    result = replay(log, catalog(), CFG, now=NOW)
    t1 = of(result.outputs, "team-credibility", "T1")
    t2 = of(result.outputs, "team-credibility", "T2")
    # T1 before: C1 18/26 = 69.23, C2 12/26 = 46.15 -> 57.69; after: C2 only -> 46.15
    # T1 score: (0.4 * 100 + 0.35 * 46.154) / 0.75 = (40 + 16.154) / 0.75 = 74.87
    assert [r["components"]["signal_strength"] for r in t1][-2:] == [57.69, 46.15]
    assert (t1[-1]["score"], t1[-1]["band"]) == (74.87, "yellow")
    # T2: C1 only, 18 / 26 * 100 = 69.23, red
    assert brief_team(t2[-1]) == (
        69.23, "red", {"action_completion": None, "signal_strength": 69.23, "fulfilment": None},
        ["signal_strength"],
    )  # fmt: skip


# --- deviations ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tick", "outcome", "customer_left", "whatever"])
def test_a_kind_field_in_a_sales_action_cannot_hijack_the_team_update(kind):
    log = [record("sales-action", ts=NOW, due_ts=NOW - D, done_ts=NOW - 2 * D, kind=kind,
                  customer_id="C1", period="2026-10")]  # fmt: skip
    result = replay(log, catalog(), CFG, now=NOW)
    (team,) = of(result.outputs, "team-credibility", "T1")
    assert team["components"]["action_completion"] == 100.0


def test_replay_activity_without_a_delta_keeps_the_signal_strength():
    log = [
        directory("C1"),
        forecast("2026-10", 100, 90),
        *logins("C1", NOW - 2 * D),  # decision chain: 12 points, strength 46.15
        # two hours later a quote open that fires nothing: the ledger re-reports activity
        record("document-open", event_id="q-short", ts=NOW - 2 * D + 4 * H, dwell_seconds=10),
    ]
    result = replay(log, catalog(), CFG)  # no final clock: the records' own time
    last = of(result.outputs, "team-credibility", "T1")[-1]
    assert last["components"]["signal_strength"] == 46.15


def test_throttled_activity_does_not_end_a_customer_early():
    log = [
        directory("C1"),
        forecast("2026-10", 100, 90),
        record("document-open", event_id="q1", ts=NOW, dwell_seconds=10),
        record("document-open", event_id="q2", ts=NOW + 30 * 60_000, dwell_seconds=10),
    ]
    # 30 days and 10 minutes after q1, q2 (20 minutes younger than 30 days) keeps C1 active
    result = replay(log, catalog(), CFG, now=NOW + 30 * D + 10 * 60_000)
    last = of(result.outputs, "team-credibility", "T1")[-1]
    assert last["components"]["signal_strength"] == 0.0  # active with 0 points


def test_unassigned_customers_form_a_team():
    """Observed behaviour: customers without an owner are scored as team 'unassigned'."""
    result = replay(logins("C9", NOW - D), catalog(), CFG, now=NOW)
    assert [r["team_id"] for r in of(result.outputs, "team-credibility")][-1:] == ["unassigned"]
    assert of(result.outputs, "procurement-alerts") == []


def test_replay_with_nothing_publishes_nothing():
    result = replay([], catalog(), CFG, now=NOW, heatmap_at=NOW)
    assert result.outputs == []
