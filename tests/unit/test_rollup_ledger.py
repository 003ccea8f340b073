"""A customer's ledger (``scoring.rollup.ledger``): ``customer-scores`` over the
trailing 30 days, procurement alerts, and what the customer's team is told."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.catalog import TEAM_UPDATES
from scoring.deltas import Owner
from scoring.engine import DictStore, SignalEngine
from scoring.rollup.alerts import effective_alerts
from scoring.rollup.config import RollupConfig
from scoring.rollup.ledger import CustomerLedger
from scoring.rollup.records import stable_id
from scoring.timeutil import format_ts
from tests.unit.fixtures import at, catalog, record, rules
from tests.unit.rollup_fixtures import NOW, D, H, make_delta, of

CFG = RollupConfig()
OWNER = Owner("T1", "east", "R1")
T = NOW


def ledger_with(deltas, cfg=CFG) -> tuple[CustomerLedger, list]:
    ledger = CustomerLedger()
    outputs = []
    for delta in deltas:
        outputs += ledger.add_delta(delta, delta.to_record(None), delta.owner, cfg)
    return ledger, outputs


def d(signal, points, ts, **kw):
    return make_delta(signal, points, ts, **kw)


# --- customer-scores ----------------------------------------------------------------


@pytest.mark.parametrize(
    ["deltas", "net", "breakdown", "in_window"],
    [
        pytest.param([d("decision_chain", 12, T)], 12, {"decision_chain": 12}, 1, id="one delta"),
        pytest.param(
            [d("decision_chain", 12, T), d("urgency", 6, T + D), d("risk", -5, T + 2 * D)],
            13, {"decision_chain": 12, "risk": -5, "urgency": 6}, 3, id="three signals",
        ),
        pytest.param([d("high_intent", 8, T), d("high_intent", 8, T + H)], 16, {"high_intent": 16},
                     2, id="one signal twice"),
        pytest.param([d("risk", -5, T)], -5, {"risk": -5}, 1, id="negative"),
        pytest.param([d("risk", -5, T), d("urgency", 5, T + H)], 0, {"risk": -5, "urgency": 5},
                     2, id="net zero"),
        pytest.param([d("high_intent", 8, T - 30 * D), d("decision_chain", 12, T)],
                     12, {"decision_chain": 12}, 1, id="30 days older than the newest: out"),
        pytest.param([d("high_intent", 8, T - 30 * D + 1), d("decision_chain", 12, T)],
                     20, {"decision_chain": 12, "high_intent": 8}, 2, id="30 days minus 1 ms: in"),
        pytest.param([d("decision_chain", 12, T), d("high_intent", 8, T - 31 * D)],
                     12, {"decision_chain": 12}, 1, id="an old delta arriving late is not counted"),
        pytest.param([d("decision_chain", 12, T), d("high_intent", 8, T - D)],
                     20, {"decision_chain": 12, "high_intent": 8}, 2, id="out of order, in window"),
    ],
)  # fmt: skip
def test_customer_score_net_and_breakdown(deltas, net, breakdown, in_window):
    ledger, outputs = ledger_with(deltas)
    scores = of(outputs, "customer-scores", "C1")
    assert len(scores) == len(deltas)  # every delta republishes the score
    last = scores[-1]
    assert (last["net_points"], last["breakdown"], last["deltas_in_window"]) == (
        net, breakdown, in_window,
    )  # fmt: skip
    # the last delta is the newest in event time, whatever order they arrived in
    newest = max(deltas, key=lambda x: x.ts)
    assert last["last_delta"] == newest.to_record(None)
    assert last["as_of"] == format_ts(max(x.ts for x in deltas))
    assert ledger.net_points() == net


def test_customer_score_record():
    first = d("decision_chain", 12, T, evidence=[("l1", "role-login", T - H, "10.0.0.1")])
    second = d("urgency", 6, T + D, evidence=[("k1", "rush-delivery", T + D, None)])
    _, outputs = ledger_with([first, second])
    assert of(outputs, "customer-scores")[-1] == {
        "customer_id": "C1",
        "team_id": "T1",
        "region": "east",
        "rep_id": "R1",
        "net_points": 18,
        "window_days": 30,
        "breakdown": {"decision_chain": 12, "urgency": 6},
        "deltas_in_window": 2,
        "last_delta": second.to_record(None),
        "as_of": "2026-11-27T09:30:00.000Z",
    }


def test_customer_score_without_owner():
    _, outputs = ledger_with([d("urgency", 6, T, owner=Owner())])
    score = of(outputs, "customer-scores")[0]
    assert (score["team_id"], score["region"], score["rep_id"]) == (None, None, None)


@pytest.mark.parametrize(
    ["now", "net", "breakdown"],
    [
        pytest.param(T + D, None, None, id="now is the newest delta: nothing to do"),
        pytest.param(T, None, None, id="now before the newest delta"),
        pytest.param(T + 30 * D - 1, None, None, id="1 ms before the first ages out"),
        pytest.param(T + 30 * D, 6, {"urgency": 6}, id="first delta exactly 30 days old"),
        pytest.param(T + 30 * D + H, 6, {"urgency": 6}, id="first delta aged out"),
        pytest.param(T + 31 * D, 0, {}, id="both aged out"),
        pytest.param(T + 400 * D, 0, {}, id="long after"),
    ],
)
def test_expire_republishes_a_lower_score(now, net, breakdown):
    ledger, _ = ledger_with([d("decision_chain", 12, T), d("urgency", 6, T + D)])
    outputs = ledger.expire("C1", OWNER, now, CFG)
    if net is None:
        assert outputs == []
        return
    (score,) = of(outputs, "customer-scores")
    assert (score["net_points"], score["breakdown"], score["as_of"]) == (net, breakdown, format_ts(now))
    assert score["last_delta"]["signal"] == "urgency"  # the last delta stays as it was
    (team,) = of(outputs, TEAM_UPDATES, "T1")
    assert (team["kind"], team["net_points"], team["as_of"]) == ("customer", net, now)
    assert ledger.expire("C1", OWNER, now, CFG) == []  # the same time again: nothing new


def test_next_expiry_follows_the_oldest_delta():
    assert CustomerLedger().next_expiry(CFG) is None
    one, _ = ledger_with([d("urgency", 6, T + D), d("decision_chain", 12, T)])
    other, _ = ledger_with([d("urgency", 6, T + D)])
    # the exact offset (30 d or 30 d + 1 ms) is what the xfail below is about
    assert other.next_expiry(CFG) - one.next_expiry(CFG) == D
    assert one.next_expiry(CFG) - T in (30 * D, 30 * D + 1)


# --- the engine: scores from behaviour events, ageing through fire_due --------------


def engine_log():
    """C1 owned by T1: urgency at at(), decision chain complete at at(days=1, hours=2)."""
    return [
        record("customer-directory", team_id="T1", region="east", rep_id="R1", event_id="dir"),
        record("rush-delivery", event_id="k1", ts=at(), contract_id="K-1", ip="10.0.0.9"),
        record("role-login", event_id="l1", ts=at(days=1), role="procurement"),
        record("role-login", event_id="l2", ts=at(days=1, hours=1), role="technical"),
        record("role-login", event_id="l3", ts=at(days=1, hours=2), role="legal", ip="10.0.0.7"),
    ]


def run(engine, log):
    outputs = []
    for rec in log:
        outputs += engine.handle(rec.topic, rec.key, rec.value).outputs
        for customer_id in list(engine.pending_alerts):  # as a flush releases them
            outputs += engine.release_alerts(customer_id)
    return outputs


@pytest.fixture
def engine():
    return SignalEngine(catalog(), rules(), DictStore())


def test_engine_publishes_customer_scores(engine):
    scores = of(run(engine, engine_log()), "customer-scores", "C1")
    assert [(s["net_points"], s["breakdown"], s["last_delta"]["signal"]) for s in scores] == [
        (6, {"urgency": 6}, "urgency"),
        (18, {"decision_chain": 12, "urgency": 6}, "decision_chain"),
    ]
    assert scores[-1]["last_delta"]["evidence"][-1] == {
        "event_id": "l3", "topic": "role-login", "ts": "2026-11-27T11:30:00.000Z", "ip": "10.0.0.7",
    }  # fmt: skip
    assert {s["team_id"] for s in scores} == {"T1"}


@pytest.mark.parametrize(
    ["now", "nets"],
    [
        pytest.param(at(days=29), [], id="nothing aged"),
        pytest.param(at(days=30) + 1, [12], id="urgency aged out"),
        pytest.param(at(days=31, hours=2) + 1, [0], id="both aged out"),
        pytest.param(at(days=90), [0], id="one jump past both"),
    ],
)
def test_engine_fire_due_republishes_aged_scores(engine, now, nets):
    run(engine, engine_log())
    fired = engine.fire_due(now)
    assert [s["net_points"] for s in of(fired.outputs, "customer-scores", "C1")] == nets
    assert [u["net_points"] for u in of(fired.outputs, TEAM_UPDATES, "T1")] == nets


def test_engine_fire_due_step_by_step(engine):
    run(engine, engine_log())
    steps = [at(days=30) + 1, at(days=31, hours=2) + 1, at(days=60)]
    nets = [[s["net_points"] for s in of(engine.fire_due(t).outputs, "customer-scores")] for t in steps]
    assert nets == [[12], [0], []]


def test_fire_customer_with_a_later_clock(engine):
    run(engine, engine_log())
    assert of(engine.fire_customer("C1", at(days=10)).outputs, "customer-scores") == []
    (score,) = of(engine.fire_customer("C1", at(days=30, hours=12)).outputs, "customer-scores")
    assert (score["net_points"], score["breakdown"]) == (12, {"decision_chain": 12})


def test_engine_ages_a_delta_out_exactly_when_the_ledger_does(engine):
    run(engine, engine_log())
    ledger = engine.store.load("C1").ledger
    expected = CustomerLedger.from_json(ledger.to_json()).expire("C1", OWNER, at(days=30), CFG)
    assert [s["net_points"] for s in of(expected, "customer-scores")] == [12]
    fired = engine.fire_due(at(days=30))
    assert [s["net_points"] for s in of(fired.outputs, "customer-scores")] == [12]


# --- procurement alerts -------------------------------------------------------------

DC, URG, HI, RISK = "decision_chain", "urgency", "high_intent", "risk"


@pytest.mark.parametrize(
    ["steps", "alerts"],
    [
        # steps: (signal, points, ts); alerts: per alert, (index of the delta that raised it,
        # the indices of the contributing deltas)
        pytest.param([], [], id="no deltas"),
        pytest.param([(DC, 12, T), (URG, 6, T + D)], [(1, [0, 1])], id="12 + 6 = 18"),
        pytest.param([(DC, 12, T), (URG, 5, T + D)], [], id="12 + 5 = 17"),
        pytest.param([(URG, 18, T)], [(0, [0])], id="one delta of 18"),
        pytest.param([(URG, 17, T)], [], id="one delta of 17"),
        pytest.param([(DC, 12, T), (URG, 6, T + 7 * D)], [(1, [0, 1])], id="exactly 7 days apart"),
        pytest.param([(DC, 12, T), (URG, 6, T + 7 * D + 1)], [], id="7 days + 1 ms apart"),
        pytest.param([(DC, 12, T), (RISK, -5, T + H), (URG, 6, T + D)], [], id="risk pulls to 13"),
        pytest.param(
            [(DC, 12, T), (RISK, -5, T + H), (HI, 8, T + 2 * H), (URG, 6, T + D)],
            [(3, [0, 1, 2, 3])], id="12 - 5 + 8 = 15, then + 6 = 21",
        ),
        pytest.param(
            [(DC, 12, T), (HI, 8, T + H), (RISK, -5, T + 2 * H)],
            [(1, [0, 1])], id="alert at 20, the risk after it changes nothing",
        ),
        # once per 7 days
        pytest.param(
            [(DC, 12, T), (URG, 6, T + D), (URG, 6, T + 2 * D)], [(1, [0, 1])],
            id="a second qualifying delta within 7 days: no alert",
        ),
        pytest.param(
            [(DC, 12, T), (URG, 6, T + D), (DC, 12, T + 8 * D - 1), (URG, 6, T + 8 * D - 1)],
            [(1, [0, 1])], id="cooldown 1 ms short",
        ),
        pytest.param(
            [(DC, 12, T), (URG, 6, T + D), (DC, 12, T + 7 * D), (DC, 12, T + 8 * D)],
            # at T+8d: window [T+1d, T+8d] holds 6 + 12 + 12 = 30
            [(1, [0, 1]), (3, [1, 2, 3])], id="after 7 days a new alert",
        ),
        pytest.param(
            [(DC, 12, T), (URG, 6, T + D), (DC, 12, T + 20 * D), (URG, 6, T + 21 * D)],
            [(1, [0, 1]), (3, [2, 3])], id="two separate episodes",
        ),
        pytest.param(
            [(URG, 6, T + D), (DC, 12, T)], [(1, [1, 0])], id="out of order: window is by ts",
        ),
    ],
)  # fmt: skip
def test_procurement_alerts(steps, alerts):
    deltas = [d(signal, points, ts, customer_id="C1") for signal, points, ts in steps]
    ledger = CustomerLedger()
    raised = []
    for i, delta in enumerate(deltas):
        for alert in of(ledger.add_delta(delta, delta.to_record(None), delta.owner, CFG), "procurement-alerts"):
            raised.append((i, [c["delta_id"] for c in alert["contributing_deltas"]]))
    assert raised == [(i, [deltas[j].delta_id for j in js]) for i, js in alerts]


@pytest.mark.parametrize(
    ["steps", "changes"],
    [
        # steps: (signal, points, ts) in arrival order; changes: (index of the delta whose
        # arrival caused it, "+" raised or "-" retracted, the alert's deltas by index)
        pytest.param([], [], id="no deltas"),
        pytest.param([(DC, 12, T), (URG, 6, T + D), (RISK, -5, T + 2 * H)],
                     [(1, "+", [0, 1]), (2, "-", [0, 1])], id="a late risk inside the window retracts"),
        pytest.param([(DC, 12, T), (URG, 6, T + D), (RISK, -5, T - 6 * D)],
                     [(1, "+", [0, 1]), (2, "-", [0, 1])], id="a late risk exactly 7 days before the end"),
        pytest.param([(DC, 12, T), (URG, 6, T + D), (RISK, -5, T - 6 * D - 1)],
                     [(1, "+", [0, 1])], id="a late risk 7 days + 1 ms before: outside the window"),
        pytest.param([(DC, 12, T), (URG, 6, T + D), (RISK, -5, T + D + 1)],
                     [(1, "+", [0, 1])], id="a risk after the alert's end changes nothing"),
        pytest.param([(DC, 12, T), (URG, 6, T + D), (RISK, -5, T + H), (HI, 8, T + 2 * D)],
                     [(1, "+", [0, 1]), (2, "-", [0, 1]), (3, "+", [0, 2, 1, 3])],
                     id="retracted, then a later window qualifies"),
        pytest.param([(DC, 12, T + 5 * D), (URG, 6, T + 6 * D), (URG, 18, T)],
                     [(1, "+", [0, 1]), (2, "-", [0, 1]), (2, "+", [2])],
                     id="a late earlier alert: the later one falls in its cool-down"),
        pytest.param([(DC, 12, T + 5 * D), (URG, 6, T + 6 * D), (URG, 18, T - D - 1)],
                     [(1, "+", [0, 1]), (2, "+", [2])],
                     id="a late alert 7 days + 1 ms earlier: both stand"),
        pytest.param([(URG, 6, T + D), (DC, 12, T)], [(1, "+", [1, 0])], id="late but positive: one alert"),
        pytest.param([(DC, 12, T), (URG, 6, T)], [(1, "+", [0, 1])], id="same time"),
        pytest.param([(DC, 12, T + 25 * D), (URG, 18, T + D)], [],
                     id="back-filled 24 days behind: counted, but its windows are final"),
        pytest.param([(DC, 12, T + 25 * D), (URG, 6, T + 3 * D), (DC, 12, T + 3 * D)],
                     [(2, "+", [1, 2])], id="back-filled 22 days behind: alerts"),
        pytest.param([(DC, 12, T + 40 * D), (URG, 18, T)], [], id="back-filled beyond the score window"),
        pytest.param([(DC, 12, T), (URG, 6, T + D), (HI, 0, T + 30 * D + 1), (HI, 1, T + D - H)],
                     [(1, "+", [0, 1])], id="an alert whose window lost a delta to the trim stands"),
        pytest.param([(DC, 12, T), (URG, 6, T + 7 * D), (HI, 0, T + 30 * D), (HI, 1, T + 7 * D - H)],
                     [(1, "+", [0, 1])], id="the same, the delta trimmed at the window's first ms"),
    ],
)  # fmt: skip
def test_procurement_alerts_out_of_order(steps, changes):
    deltas = [d(signal, points, ts) for signal, points, ts in steps]
    ledger = CustomerLedger()
    got = []
    for i, delta in enumerate(deltas):
        for alert in of(ledger.add_delta(delta, delta.to_record(None), delta.owner, CFG), "procurement-alerts"):
            got.append((i, "-" if alert["retracted"] else "+", alert["alert_id"]))
    expected = []
    for i, sign, js in changes:  # an alert's deltas in (ts, delta_id) order
        window = sorted((deltas[j].ts, deltas[j].delta_id) for j in js)
        expected.append((i, sign, stable_id("alert", "C1", *(delta_id for _, delta_id in window))))
    assert got == expected
    effective = {alert_id for _, sign, alert_id in got if sign == "+"} - {
        alert_id for _, sign, alert_id in got if sign == "-"
    }  # no alert here comes back after its retraction
    assert {alert_id for _, alert_id in ledger.alerts} == effective


def test_procurement_alert_retraction_record():
    chain, rush, risk = d(DC, 12, T), d(URG, 6, T + D), d(RISK, -5, T + H, owner=Owner("T2", "west", "R2"))
    ledger, outputs = ledger_with([chain, rush])
    (alert,) = of(outputs, "procurement-alerts")
    (retraction,) = of(ledger.add_delta(risk, risk.to_record(None), risk.owner, CFG), "procurement-alerts")
    assert retraction == {
        "alert_id": alert["alert_id"],
        "customer_id": "C1",
        "team_id": "T2",  # the customer's owner now
        "region": "west",
        "rep_id": "R2",
        "retracted": True,
        "retracted_by": risk.delta_id,
        "ts": alert["ts"],
    }
    assert effective_alerts([alert, retraction]) == {}
    assert effective_alerts([alert, retraction, alert]) == {alert["alert_id"]: alert}


def test_a_back_filled_delta_behind_the_clock_is_trimmed_without_an_alert():
    ledger, _ = ledger_with([d(URG, 6, T)])
    ledger.expire("C1", OWNER, T + 56 * D, CFG)  # the clock moved on: the delta aged out
    late = d(URG, 18, T + D)
    outputs = ledger.add_delta(late, late.to_record(None), late.owner, CFG)
    assert of(outputs, "procurement-alerts") == []
    assert of(outputs, "customer-scores")[0]["net_points"] == 0


@pytest.mark.parametrize(
    ["last_alert_ts", "later", "alerted"],
    [
        pytest.param(None, T + D, True, id="no alert before"),
        pytest.param(T, T + 7 * D - 1, False, id="within the old alert's cool-down"),
        pytest.param(T, T + 7 * D, True, id="after the old alert's cool-down"),
        pytest.param(T + 2 * D, T + D, False, id="before the old alert: final"),
    ],
)
def test_states_stored_with_last_alert_ts_load(last_alert_ts, later, alerted):
    ledger = CustomerLedger.from_json([[], T, None, last_alert_ts, None, None])
    assert ledger.alerts == ([] if last_alert_ts is None else [[last_alert_ts, None]])
    outputs = []
    for delta in (d(DC, 12, later), d(URG, 6, later)):
        outputs += ledger.add_delta(delta, delta.to_record(None), delta.owner, CFG)
    assert [a["retracted"] for a in of(outputs, "procurement-alerts")] == ([False] if alerted else [])
    assert CustomerLedger.from_json(ledger.to_json()) == ledger


def test_procurement_alert_record():
    chain = d(DC, 12, T, evidence=[("l3", "role-login", T, "10.0.0.7")])
    rush = d(URG, 6, T + D, evidence=[("k1", "rush-delivery", T + D, None)])
    _, outputs = ledger_with([chain, rush])
    (alert,) = [o for o in outputs if o.topic == "procurement-alerts"]
    assert alert.key == "C1"
    assert alert.value == {
        "alert_id": stable_id("alert", "C1", chain.delta_id, rush.delta_id),
        "customer_id": "C1",
        "team_id": "T1",
        "region": "east",
        "rep_id": "R1",
        "retracted": False,
        "net_points": 18,
        "threshold": 18,
        "window_days": 7,
        "ts": "2026-11-27T09:30:00.000Z",
        "contributing_deltas": [
            {"delta_id": chain.delta_id, "signal": DC, "points": 12, "ts": "2026-11-26T09:30:00.000Z"},
            {"delta_id": rush.delta_id, "signal": URG, "points": 6, "ts": "2026-11-27T09:30:00.000Z"},
        ],
    }


@pytest.mark.parametrize(
    ["owner", "team"],
    [
        pytest.param(Owner("T7", "west", "R9"), "T7", id="owned"),
        pytest.param(Owner(), "unassigned", id="no owner"),
        pytest.param(Owner(None, "west", "R9"), "unassigned", id="region but no team"),
    ],
)
def test_procurement_alert_team(owner, team):
    _, outputs = ledger_with([d(DC, 12, T, owner=owner), d(URG, 6, T + H, owner=owner)])
    (alert,) = of(outputs, "procurement-alerts")
    assert (alert["team_id"], alert["region"]) == (team, owner.region)


@pytest.mark.parametrize(
    ["cfg", "alerted"],
    [
        pytest.param(RollupConfig(alert_points=13), True, id="threshold 13"),
        pytest.param(RollupConfig(alert_points=14), False, id="threshold 14"),
        pytest.param(RollupConfig(alert_window_ms=H), False, id="1-hour window"),
    ],
)
def test_procurement_alert_is_configurable(cfg, alerted):
    _, outputs = ledger_with([d(HI, 8, T), d(URG, 5, T + 2 * H)], cfg)
    assert bool(of(outputs, "procurement-alerts")) is alerted


@pytest.mark.parametrize(
    ["directory", "team"],
    [pytest.param(True, "T1", id="directory owner"), pytest.param(False, "unassigned", id="no owner")],
)
def test_engine_raises_the_alert_of_decision_chain_plus_urgency(engine, directory, team):
    log = engine_log() if directory else engine_log()[1:]
    outputs = run(engine, log)
    (alert,) = of(outputs, "procurement-alerts", "C1")
    assert (alert["team_id"], alert["net_points"]) == (team, 18)
    assert [c["signal"] for c in alert["contributing_deltas"]] == ["urgency", "decision_chain"]
    assert alert["ts"] == "2026-11-27T11:30:00.000Z"


# --- what the team is told ----------------------------------------------------------


def test_add_delta_outputs_and_trace_entry():
    delta = d(
        DC, 12, T,
        evidence=[("l1", "role-login", T - 2 * H, "10.0.0.1"), ("l2", "role-login", T - H, "10.0.0.2"),
                  ("l3", "role-login", T, None)],
    )  # fmt: skip
    ledger = CustomerLedger()
    ledger.activity_ts = T
    outputs = ledger.add_delta(delta, delta.to_record(None), delta.owner, CFG)
    assert [(o.topic, o.key) for o in outputs] == [
        ("customer-scores", "C1"), (TEAM_UPDATES, "T1"), (TEAM_UPDATES, "T1"),
    ]  # fmt: skip
    assert outputs[1].value == {
        "kind": "delta",
        "delta_id": delta.delta_id,
        "customer_id": "C1",
        "signal": DC,
        "points": 12,
        "ts": "2026-11-26T09:30:00.000Z",
        "ip": "10.0.0.2",  # the newest evidence event that has an ip
        "evidence_ids": ["l1", "l2", "l3"],
        "region": "east",
    }
    assert outputs[2].value == {
        "kind": "customer", "customer_id": "C1", "region": "east", "net_points": 12,
        "activity_ts": T, "as_of": T,
    }  # fmt: skip


@pytest.mark.parametrize(
    ["steps", "reports"],
    [
        # steps: (activity ts, team); reports: the activity_ts told to a team, per step
        pytest.param([(T, "T1")], [T], id="first activity"),
        pytest.param([(T, "T1"), (T + H - 1, "T1")], [T, None], id="within the hour: quiet"),
        pytest.param([(T, "T1"), (T + H, "T1")], [T, T + H], id="an hour later: reported"),
        pytest.param([(T, "T1"), (T - D, "T1")], [T, None], id="older activity: ignored"),
        pytest.param([(T, "T1"), (T + 1, "T2")], [T, T + 1], id="new team: reported at once"),
    ],
)
def test_record_activity_reports(steps, reports):
    ledger = CustomerLedger()
    got = []
    for ts, team in steps:
        outputs, _ = ledger.record_activity("C1", ts, Owner(team, "east", "R1"), CFG)
        customers = [o.value for o in outputs if o.value["kind"] == "customer"]
        got.append(customers[0]["activity_ts"] if customers else None)
    assert got == reports


def test_record_activity_returns_the_recheck_when_it_moves():
    ledger, owner = CustomerLedger(), Owner("T1", "east", "R1")
    assert ledger.record_activity("C1", T, owner, CFG)[1] is None  # reported at once: nothing to recheck
    assert ledger.record_activity("C1", T + 1, owner, CFG)[1] == T + CFG.activity_window_ms  # held back
    assert ledger.record_activity("C1", T + 2, owner, CFG)[1] is None  # the same recheck
    assert ledger.activity_recheck_at(CFG) == T + CFG.activity_window_ms


@given(steps=st.lists(st.tuples(st.integers(-3 * H, 30 * H), st.sampled_from(["T1", "T2"])), max_size=12))
def test_record_activity_returns_exactly_the_moved_recheck(steps):
    """What it returns is activity_recheck_at after the call, when that differs from before it."""
    ledger = CustomerLedger()
    for offset, team in steps:
        before = ledger.activity_recheck_at(CFG)
        _, recheck = ledger.record_activity("C1", T + offset, Owner(team, "east", "R1"), CFG)
        after = ledger.activity_recheck_at(CFG)
        assert recheck == (after if after != before else None)


def test_moving_teams_tells_the_old_team_first():
    ledger = CustomerLedger()
    ledger.record_activity("C1", T, Owner("T1", "east", "R1"), CFG)
    outputs = ledger.owner_changed("C1", Owner("T2", "west", "R2"), CFG)
    assert [(o.key, o.value["kind"]) for o in outputs] == [("T1", "customer_left"), ("T2", "customer")]
    assert ledger.owner_changed("C1", Owner("T2", "west", "R2"), CFG) == []
    assert [(o.key, o.value["kind"]) for o in ledger.owner_changed("C1", Owner(), CFG)] == [
        ("T2", "customer_left"), ("unassigned", "customer"),
    ]  # fmt: skip


def test_ledger_round_trips_through_json():
    ledger, _ = ledger_with([d(DC, 12, T), d(URG, 6, T + D)])
    copy = CustomerLedger.from_json(ledger.to_json())
    assert copy == ledger
    assert copy.expire("C1", OWNER, T + 30 * D, CFG) == ledger.expire("C1", OWNER, T + 30 * D, CFG)


def alert_ids(deltas, cfg=CFG):
    ledger = CustomerLedger()
    ids = []
    for delta in deltas:
        ids += [a["alert_id"] for a in of(ledger.add_delta(delta, delta.to_record(None), delta.owner, cfg),
                                          "procurement-alerts")]  # fmt: skip
    return sorted(ids)


# alert at T+1d (12 + 6); X at T+5d is within the cooldown; Y at T+12d closes the window
# [T+5d, T+12d] of 12 + 6 = 18, 11 days after the first alert: a second alert
EPISODES = [d(DC, 12, T), d(URG, 6, T + D), d(DC, 12, T + 5 * D, customer_id="C1"),
            d(URG, 6, T + 12 * D)]  # fmt: skip


def test_alerts_in_event_time_order():
    first = stable_id("alert", "C1", EPISODES[0].delta_id, EPISODES[1].delta_id)
    second = stable_id("alert", "C1", EPISODES[2].delta_id, EPISODES[3].delta_id)
    assert alert_ids(EPISODES) == sorted([first, second])


def test_alerts_do_not_depend_on_arrival_order():
    late = [EPISODES[0], EPISODES[1], EPISODES[3], EPISODES[2]]  # X arrives after Y
    assert alert_ids(late) == alert_ids(EPISODES)


# --- running totals ------------------------------------------------------------------

_DELTAS = st.lists(
    st.tuples(st.sampled_from([DC, URG, HI, RISK]), st.sampled_from([-5, 0, 6, 8, 12]), st.integers(0, 90 * D)),
    max_size=40,
)


@given(_DELTAS, st.integers(0, 120 * D))
def test_running_totals_match_the_entries_in_any_arrival_order(rows, later):
    """The ledger keeps its entries in event-time order with running totals: whatever
    order deltas arrive in and however the window moves, the score equals a fresh count."""
    ledger, outputs = ledger_with(d(s, p, T + ts, customer_id="C1") for s, p, ts in rows)
    outputs += ledger.expire("C1", OWNER, T + later, CFG)
    assert [e[3] for e in ledger.entries] == sorted(e[3] for e in ledger.entries)
    assert ledger.net_points() == sum(e[2] for e in ledger.entries)
    fresh: dict[str, int] = {}
    for _, signal, points, _ in ledger.entries:
        fresh[signal] = fresh.get(signal, 0) + points
    scores = of(outputs, "customer-scores")
    if scores:
        assert scores[-1]["breakdown"] == dict(sorted(fresh.items()))
        assert scores[-1]["deltas_in_window"] == len(ledger.entries)
    assert CustomerLedger.from_json(ledger.to_json()) == ledger


def test_an_alert_lists_at_most_the_newest_contributing_deltas():
    cfg = RollupConfig(alert_max_contributing=3)
    deltas = [d(HI, 1, T + i * H, customer_id="C1") for i in range(17)] + [d(DC, 12, T + 17 * H, customer_id="C1")]
    _, outputs = ledger_with(deltas, cfg)
    (alert,) = of(outputs, "procurement-alerts")
    assert [c["delta_id"] for c in alert["contributing_deltas"]] == [x.delta_id for x in deltas[-3:]]
    assert alert["contributing_total"] == 18 and alert["net_points"] == 29
    assert alert["alert_id"] == stable_id("alert", "C1", *(x.delta_id for x in deltas))  # all of them
