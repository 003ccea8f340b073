"""Procurement alerts do not depend on arrival order: the alerts that stand (raised and
not retracted) are a function of the customer's set of deltas, whatever order the
ledger sees them in and however the topics of a replayed log interleave."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.customer import CustomerState
from scoring.deltas import SignalDelta
from scoring.engine import DictStore, SignalEngine
from scoring.replay import LogRecord, ReplayResult, read_log, replay
from scoring.rollup.alerts import effective_alerts
from scoring.rollup.config import RollupConfig
from scoring.rollup.ledger import CustomerLedger
from scoring.rollup.records import stable_id
from scoring.timeutil import parse_ts
from tests.unit.fixtures import catalog, record, rules
from tests.unit.rollup_fixtures import NOW, D, H, make_delta, of

CFG = RollupConfig()
PROPERTY = settings(max_examples=150, deadline=None, database=None)


def reference_alerts(deltas: Iterable[SignalDelta], cfg: RollupConfig = CFG) -> dict[str, tuple[Any, ...]]:
    """The alert rule as written, summed from scratch at every window end: ends in time
    order, the first whose 7-day window nets the threshold alerts, the next one at least
    the cool-down later. ``alert_id`` -> ``(ts, net points, delta ids)``."""
    rows = sorted((d.ts, d.delta_id, d.points, d.customer_id) for d in deltas)
    alerts: dict[str, tuple[Any, ...]] = {}
    last: dict[str, int] = {}
    for end in sorted({ts for ts, *_ in rows}):
        for customer in sorted({c for ts, _, _, c in rows if ts == end}):
            if customer in last and end < last[customer] + cfg.alert_cooldown_ms:
                continue
            window = [r for r in rows if r[3] == customer and end - cfg.alert_window_ms <= r[0] <= end]
            net = sum(points for _, _, points, _ in window)
            if net >= cfg.alert_points:
                ids = tuple(delta_id for _, delta_id, _, _ in window)
                alerts[stable_id("alert", customer, *ids)] = (end, net, ids)
                last[customer] = end
    return alerts


def summary(alerts: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """What :func:`reference_alerts` says of published alerts."""
    return {
        alert_id: (parse_ts(a["ts"]), a["net_points"], tuple(c["delta_id"] for c in a["contributing_deltas"]))
        for alert_id, a in alerts.items()
    }


def published(deltas: Iterable[SignalDelta]) -> tuple[CustomerLedger, list[dict[str, Any]]]:
    ledger = CustomerLedger()
    records = []
    for delta in deltas:
        records += of(ledger.add_delta(delta, delta.to_record(None), delta.owner, CFG), "procurement-alerts")
    return ledger, records


# --- one ledger, deltas in any order -------------------------------------------------

#: points and times on a 12-hour grid over 20 days (the 7-day window is 14 steps), give
#: or take a millisecond, so that window and cool-down boundaries are hit
_ROWS = st.lists(
    st.tuples(st.sampled_from([-5, -5, 6, 8, 12, 18]), st.integers(0, 40), st.sampled_from([0, 0, 1, -1])),
    max_size=25,
)


def deltas_of(rows: list[tuple[int, int, int]]) -> list[SignalDelta]:
    return [
        make_delta("risk" if points < 0 else "urgency", points, NOW + step * 12 * H + ms,
                   evidence=[(f"e{i}", "rush-delivery", NOW + step * 12 * H + ms, None)])
        for i, (points, step, ms) in enumerate(rows)
    ]  # fmt: skip


@PROPERTY
@given(_ROWS, st.data())
def test_the_alerts_that_stand_do_not_depend_on_arrival_order(rows, data):
    deltas = deltas_of(rows)
    expected = reference_alerts(deltas)
    in_order, raised = published(sorted(deltas, key=lambda x: (x.ts, x.delta_id)))
    assert summary(effective_alerts(raised)) == expected
    if len({x.ts for x in deltas}) == len(deltas):  # in event-time order, none is retracted
        assert not any(a["retracted"] for a in raised)
    shuffled = data.draw(st.permutations(deltas))
    ledger, records = published(shuffled)
    assert summary(effective_alerts(records)) == expected
    assert ledger.alerts == in_order.alerts == [[value[0], alert_id] for alert_id, value in
                                                sorted(expected.items(), key=lambda kv: kv[1][0])]  # fmt: skip
    assert CustomerLedger.from_json(ledger.to_json()) == ledger


# --- a replayed log, its topics interleaved in any order -------------------------------

BEHAVIOUR = ("document-open", "role-login", "rush-delivery", "stale-update")
_GAPS = (0, H, 6 * H, D, D, 2 * D)


@st.composite
def topic_logs(draw: st.DrawFn) -> dict[str, list[LogRecord]]:
    """Each behaviour topic's records in that topic's order (event time ascending), for
    two customers, within 18 days: quote opens, role logins, rush notes, and progress
    updates each followed by a `reconsider` (a risk once 48 h pass)."""
    logs: dict[str, list[LogRecord]] = {}
    for topic in BEHAVIOUR:
        ts, records = NOW, []
        for i in range(draw(st.integers(0, 8))):
            ts += draw(st.sampled_from(_GAPS))
            c = draw(st.sampled_from(["C1", "C1", "C2"]))
            eid = f"{topic}-{i}"
            if topic == "document-open":
                records.append(record(topic, c, customer_id=c, event_id=eid, ts=ts,
                                      dwell_seconds=draw(st.sampled_from([300, 300, 60]))))
            elif topic == "role-login":
                records.append(record(topic, c, customer_id=c, event_id=eid, ts=ts,
                                      role=draw(st.sampled_from(["procurement", "technical", "legal"]))))
            elif topic == "rush-delivery":
                records.append(record(topic, c, customer_id=c, event_id=eid, ts=ts,
                                      contract_id=draw(st.sampled_from(["K-1", "K-2", "K-3", "K-4"]))))
            else:
                records.append(record(topic, c, customer_id=c, event_id=eid + "p", ts=ts,
                                      opportunity_id=eid, kind="progress"))
                ts += draw(st.sampled_from(_GAPS))
                records.append(record(topic, c, customer_id=c, event_id=eid + "c", ts=ts, opportunity_id=eid,
                                      kind="communication", outcome="reconsider"))
        logs[topic] = records
    return logs  # fmt: skip


def interleave(logs: dict[str, list[LogRecord]], topics: list[str]) -> list[LogRecord]:
    """The records, taking the next one of ``topics[i]`` at step ``i``."""
    queues = {topic: iter(records) for topic, records in logs.items()}
    return [next(queues[topic]) for topic in topics]


def outcome(result: ReplayResult) -> tuple[Any, ...]:
    scores = {s["customer_id"]: s for s in of(result.outputs, "customer-scores")}
    return (
        sorted(d.delta_id for d in result.deltas),
        {c: (s["net_points"], s["breakdown"], s["deltas_in_window"], s["last_delta"]["delta_id"])
         for c, s in scores.items()},
        effective_alerts(of(result.outputs, "procurement-alerts")),
    )  # fmt: skip


@PROPERTY
@given(topic_logs(), st.data())
def test_replay_gives_the_same_alerts_whatever_the_interleaving_of_topics(logs, data):
    by_time = sorted((r for records in logs.values() for r in records), key=lambda r: _ts(r))
    topics = data.draw(st.permutations([topic for topic, records in logs.items() for _ in records]))
    end = NOW + 20 * D  # every risk is due
    expected = replay(by_time, catalog(), rules(), now=end)
    got = replay(interleave(logs, topics), catalog(), rules(), now=end)
    assert outcome(got) == outcome(expected)
    assert summary(outcome(got)[2]) == reference_alerts(expected.deltas)


def _ts(rec: LogRecord) -> int:
    return int(orjson.loads(rec.value or b"{}")["ts"])


def test_a_back_filled_delta_trimmed_at_once_does_not_stop_replay():
    """Issue #10: the clock (customer y's login) aged x's first delta out, so x's second,
    as old, was trimmed as soon as it was counted, and the alert check read an empty
    window (``IndexError`` in ``_maybe_alert``)."""
    log = read_log([
        '{"topic": "rush-delivery", "key": "x", "value": {"event_id": "r1", "ts": "2026-10-01T00:00:00Z", '
        '"customer_id": "x", "contract_id": "CT-A"}}',
        '{"topic": "role-login", "key": "y", "value": {"event_id": "l1", "ts": "2026-11-26T00:00:00Z", '
        '"customer_id": "y", "user_id": "u", "role": "legal"}}',
        '{"topic": "rush-delivery", "key": "x", "value": {"event_id": "r2", "ts": "2026-10-02T00:00:00Z", '
        '"customer_id": "x", "contract_id": "CT-B"}}',
    ])  # fmt: skip
    result = replay(log, catalog(), rules())
    assert [d.signal for d in result.deltas] == ["urgency", "urgency"]
    assert [s["net_points"] for s in of(result.outputs, "customer-scores", "x")] == [6, 0, 0]
    assert of(result.outputs, "procurement-alerts") == []


# --- re-processing after a crash: alerts leave only from a checkpointed state ----------


class _Run:
    """An engine driven as the worker drives it: event-time clock as in replay, alerts
    published only from a checkpoint (the live flush's order: state written, then its
    held alerts released)."""

    def __init__(self, states: dict[str, bytes] | None = None, watermark: int | None = None) -> None:
        self.engine = SignalEngine(catalog(), rules(), DictStore(), clock=lambda: NOW + 100 * D)
        self.published: list[dict[str, Any]] = []
        self.watermark = watermark  # a clock does not go back with a crash
        for raw in (states or {}).values():
            state = CustomerState.from_bytes(raw)
            self.engine.store.save(state)
            self.engine.index_state(state, 0)

    def feed(self, rec: LogRecord) -> None:
        handled = self.engine.receive(rec.topic, rec.key, rec.value)
        assert handled.error is None, handled.error
        self.watermark = max(self.watermark or _ts(rec), _ts(rec))
        self.engine.fire_due(self.watermark)

    def checkpoint(self) -> dict[str, bytes]:
        """Every state encoded; the alerts the encoded states hold are published."""
        states = {c: s.to_bytes() for c, s in self.engine.store.states.items()}
        for customer_id in list(self.engine.pending_alerts):
            self.published += [o.value for o in self.engine.release_alerts(customer_id)]
        return states

    def finish(self, now: int) -> list[dict[str, Any]]:
        self.engine.fire_due(now)
        self.checkpoint()
        return self.published


def published_across_a_crash(
    logs: dict[str, list[LogRecord]], first: list[str], k: int, crash: int, second: list[str]
) -> list[dict[str, Any]]:
    """Run 1 reads ``logs`` interleaved as ``first``, checkpoints after ``k`` records,
    reads on to ``crash`` and dies before its next checkpoint; run 2 starts from the
    checkpoint and reads the rest of every topic interleaved as ``second``. Returns
    what both published."""
    records = interleave(logs, first)
    run1 = _Run()
    for rec in records[:k]:
        run1.feed(rec)
    states = run1.checkpoint()
    for rec in records[k:crash]:
        run1.feed(rec)  # what these raise is held in a state the crash loses
    done = {topic: sum(r.topic == topic for r in records[:k]) for topic in logs}
    run2 = _Run(states, run1.watermark)
    for rec in interleave({topic: rs[done[topic]:] for topic, rs in logs.items()}, second):
        run2.feed(rec)
    return run1.published + run2.finish(NOW + 20 * D)


def replayed_alerts(logs: dict[str, list[LogRecord]]) -> dict[str, dict[str, Any]]:
    by_time = sorted((r for records in logs.values() for r in records), key=_ts)
    expected = replay(by_time, catalog(), rules(), now=NOW + 20 * D, wall_clock=NOW + 100 * D)
    return effective_alerts(of(expected.outputs, "procurement-alerts"))


@PROPERTY
@given(topic_logs(), st.data())
def test_alerts_published_across_a_crash_are_the_canonical_ones(logs, data):
    """None that only the lost state raised is left standing, whatever the
    interleavings before and after the crash."""
    order = [topic for topic, records in logs.items() for _ in records]
    first = data.draw(st.permutations(order))
    k = data.draw(st.integers(0, len(order)))
    crash = data.draw(st.integers(k, len(order)))
    done = {t: first[:k].count(t) for t in logs}
    rest = [t for t, rs in logs.items() for _ in rs[done[t]:]]
    second = data.draw(st.permutations(rest))
    assert effective_alerts(published_across_a_crash(logs, first, k, crash, second)) == replayed_alerts(logs)


def test_an_alert_only_a_lost_state_raised_is_never_published():
    """The chaos run's case: decision chain and urgency make 18 points, but a risk of the
    same week, read first after the crash, keeps the customer at 13. Published from the
    lost state, that alert would stand for ever: the re-run never raises it, so nothing
    retracts it."""
    c = "C1"
    logs = {
        "stale-update": [
            record("stale-update", c, customer_id=c, event_id="p", ts=NOW, opportunity_id="o", kind="progress"),
            record("stale-update", c, customer_id=c, event_id="m", ts=NOW + 49 * H, opportunity_id="o",
                   kind="communication", outcome="reconsider"),
        ],
        "role-login": [
            record("role-login", c, customer_id=c, event_id=f"l{i}", ts=NOW + (50 + i) * H, role=role)
            for i, role in enumerate(["procurement", "technical", "legal"])
        ],
        "rush-delivery": [record("rush-delivery", c, customer_id=c, event_id="r", ts=NOW + 53 * H, contract_id="K-1")],
    }  # fmt: skip
    first = ["role-login"] * 3 + ["rush-delivery"] + ["stale-update"] * 2
    second = ["stale-update"] * 2 + ["role-login"] * 3 + ["rush-delivery"]
    assert replayed_alerts(logs) == {}
    assert published_across_a_crash(logs, first, 0, 4, second) == []


def test_the_outbox_keeps_the_last_record_of_an_alert():
    ledger = CustomerLedger()
    raised = {"alert_id": "a", "retracted": False}
    retracted = {"alert_id": "a", "retracted": True}
    other = {"alert_id": "b", "retracted": False}
    ledger.hold([raised, other, retracted])
    assert ledger.outbox == [other, retracted]  # "a" may have left before a crash: retract it
    written = list(ledger.outbox)  # what a written state holds
    ledger.hold([raised])  # after the write: not released with it
    assert ledger.release(written) == [other] and ledger.outbox == [raised]
    assert CustomerLedger.from_json(ledger.to_json()).outbox == [raised]
    assert ledger.release() == [raised] and ledger.outbox == []
    assert len(ledger.to_json()) == 6  # an empty outbox keeps the stored form
