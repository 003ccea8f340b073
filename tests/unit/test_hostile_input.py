"""Issue #10's reproductions through the pure core, one row each: every one is
dead-lettered with its reason and leaves no trace in anyone's results."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from scoring.catalog import TEAM_UPDATES
from scoring.config import DAY_MS, HOUR_MS
from scoring.customer import Outcome
from scoring.engine import TEAM_FIELDS, DictStore, SignalEngine
from scoring.replay import LogRecord, ReplayResult, replay
from scoring.rollup.records import TEAM_UPDATES_PER_RECORD
from streams.cli.main import main
from tests.unit.fixtures import at, catalog, raw, raw_record, record, rules, value

CFG = rules()
#: the wall clock of these tests: a day after the last valid event
WALL = at(days=2)
FAR_FUTURE_ISO = "9999-12-30T00:00:00Z"


def run(log: list[LogRecord], now: int = WALL) -> ReplayResult:
    return replay(log, catalog(), CFG, now=now, wall_clock=WALL)


def published(result: ReplayResult) -> list[tuple[str, str, Any]]:
    return [(o.topic, o.key, o.value) for o in result.outputs]


def team_log() -> list[LogRecord]:
    """Two customers of team T1 with signals, sales actions and forecast outcomes: a team
    with every component, whose results a hostile record must not move."""
    log = [
        record("customer-directory", key=c, customer_id=c, team_id="T1", region="east", rep_id="R1")
        for c in ("C1", "C2")
    ]
    log += [
        record("role-login", key="C2", customer_id="C2", event_id=f"l{i}", ts=at(hours=i), role=role)
        for i, role in enumerate(("procurement", "technical", "legal"))
    ]
    log += [
        record("sales-action", key="C2", customer_id="C2", event_id="a1", ts=at(hours=4), opportunity_id="O2",
               team_id="T1", action="demo", due_ts=at(hours=5), done_ts=at(hours=4)),
        record("forecast-outcome", key="T1", customer_id=None, event_id="f1", ts=at(days=-20), team_id="T1",
               period="2026-10", forecast_amount=100.0, actual_amount=80.0),
        record("rush-delivery", key="C1", customer_id="C1", event_id="r1", ts=at(hours=6), contract_id="K-1"),
    ]  # fmt: skip
    return log


def with_hostile(rec: LogRecord, position: int = 3) -> list[LogRecord]:
    log = team_log()
    log.insert(position, rec)
    return log


HOSTILE = [
    # 4. a period int() cannot read crashed the team agent
    pytest.param(record("forecast-outcome", key="T1", customer_id=None, team_id="T1", period="²",
                        forecast_amount=100.0, actual_amount=50.0), "bad_value", id="period ²"),
    pytest.param(record("forecast-outcome", key="T1", customer_id=None, team_id="T1", period="2026-²",
                        forecast_amount=100.0, actual_amount=50.0), "bad_value", id="period 2026-²"),
    pytest.param(record("forecast-outcome", key="T1", customer_id=None, team_id="T1", period="2026-13",
                        forecast_amount=100.0, actual_amount=50.0), "bad_value", id="month 13"),
    pytest.param(record("forecast-outcome", key="T1", customer_id=None, team_id="T1", forecast_amount=0),
                 "bad_value", id="forecast 0"),
    # 5. a far-future event moved its team's clock and every later event of the customer became late
    pytest.param(record("role-login", key="C1", event_id="x", ts=FAR_FUTURE_ISO, role="procurement"),
                 "future_event", id="role-login ts 9999-12-30"),
    pytest.param(record("document-open", key="C1", event_id="x", ts=253_402_128_000_000),
                 "future_event", id="document-open ts 9999-12-30 in ms"),
    pytest.param(record("stale-update", key="C1", event_id="x", ts=WALL + DAY_MS + 1),
                 "future_event", id="a millisecond beyond the skew"),
    pytest.param(record("sales-action", key="C1", event_id="x", ts=FAR_FUTURE_ISO, team_id="T1"),
                 "future_event", id="sales-action ts"),
    pytest.param(record("sales-action", key="C1", event_id="x", ts=at(), team_id="T1", done_ts=FAR_FUTURE_ISO),
                 "future_event", id="sales-action done_ts"),
    pytest.param(record("forecast-outcome", key="T1", customer_id=None, team_id="T1", ts=FAR_FUTURE_ISO),
                 "future_event", id="forecast-outcome ts"),
    pytest.param(record("customer-directory", key="C1", team_id="T9", ts=FAR_FUTURE_ISO),
                 "future_event", id="directory ts"),
    # 6. a key other than the value's id split the customer's state across partitions
    pytest.param(record("rush-delivery", key="C1-other", event_id="r1", ts=at(hours=6), contract_id="K-1"),
                 "key_mismatch", id="re-sent with another key"),
    pytest.param(record("rush-delivery", key=None, event_id="r9", contract_id="K-9"),
                 "key_mismatch", id="null key"),
    pytest.param(record("rush-delivery", key="c1", event_id="r9", contract_id="K-9"),
                 "key_mismatch", id="key differs in case"),
    pytest.param(record("rush-delivery", key="C1 ", event_id="r9", contract_id="K-9"),
                 "key_mismatch", id="key with a trailing space"),
    pytest.param(LogRecord("rush-delivery", b"\xffC1", raw(value("rush-delivery", event_id="r9"))),
                 "key_mismatch", id="non-UTF-8 key"),
    pytest.param(record("customer-directory", key="C2", customer_id="C1", team_id="T9"),
                 "key_mismatch", id="directory value for another customer"),
    pytest.param(raw_record("customer-directory", None, key=None), "key_mismatch", id="tombstone without key"),
    pytest.param(LogRecord("customer-directory", b"\xc3", None), "key_mismatch", id="tombstone, non-UTF-8 key"),
    pytest.param(raw_record("customer-directory", None, key="C" * 129), "field_too_long",
                 id="tombstone, key longer than any customer id"),
    pytest.param(record("sales-action", key="T1", event_id="x", team_id="T1"), "key_mismatch",
                 id="sales-action keyed by team"),
    pytest.param(record("forecast-outcome", key="C1", team_id="T1"), "key_mismatch",
                 id="forecast-outcome keyed by customer"),
]  # fmt: skip


@pytest.mark.parametrize(["rec", "reason"], HOSTILE)
@pytest.mark.parametrize("position", [0, 3, 9], ids=["first", "middle", "last"])
def test_a_hostile_record_is_dead_lettered_and_changes_nothing(rec, reason, position):
    clean = run(team_log())
    hostile = run(with_hostile(rec, position))
    assert [(r, e.reason) for r, e in hostile.invalid] == [(rec, reason)]
    assert hostile.deltas == clean.deltas
    assert published(hostile) == published(clean)
    assert hostile.outcomes == {**clean.outcomes, "invalid": 1}


def test_the_team_scores_the_reproductions_bent_are_what_they_were():
    """Issue #10, 5: the team's score fell from 64.1 to 0.0 after a 9999-12-30 login."""
    teams = [o.value for o in run(team_log()).outputs if o.topic == "team-credibility"]
    assert teams[-1]["components_used"] == ["action_completion", "signal_strength", "fulfilment"]
    assert teams[-1]["score"] > 0


def test_after_a_future_event_the_customer_s_next_events_still_count():
    log = [
        record("role-login", event_id="x", ts=FAR_FUTURE_ISO, role="procurement"),
        *(record("role-login", event_id=f"l{i}", ts=at(hours=i), role=role)
          for i, role in enumerate(("procurement", "technical", "legal"))),
    ]  # fmt: skip
    result = run(log)
    assert result.outcomes == {"invalid": 1, "accepted": 3}  # none late
    assert [d.signal for d in result.deltas] == ["decision_chain"]


def test_a_record_re_sent_with_another_key_fires_once():
    first = record("rush-delivery", key="C1", event_id="r1", contract_id="K-1")
    again = LogRecord("rush-delivery", b"C1-elsewhere", first.value)
    assert [d.signal for d in run([first, again]).deltas] == ["urgency"]


def test_the_skew_is_configurable_and_inclusive():
    login = record("role-login", event_id="l", ts=WALL + HOUR_MS)
    within = replay([login], catalog(), CFG, wall_clock=WALL, max_skew_ms=HOUR_MS)
    beyond = replay([login], catalog(), CFG, wall_clock=WALL, max_skew_ms=HOUR_MS - 1)
    assert (within.outcomes, [e.reason for _, e in beyond.invalid]) == ({"accepted": 1}, ["future_event"])


def test_the_engine_reads_its_clock_for_every_record():
    now = [at()]
    engine = SignalEngine(catalog(), CFG, DictStore(), clock=lambda: now[0], max_skew_ms=0)
    login = record("role-login", event_id="l", ts=at(hours=1))
    assert engine.handle(login.topic, login.key, login.value).error.reason == "future_event"
    now[0] = at(hours=1)
    assert engine.handle(login.topic, login.key, login.value).outcome is Outcome.ACCEPTED


def test_very_old_events_are_accepted_where_they_fall():
    """1970 is a valid event time; only an event behind its topic's de-duplication
    horizon for the customer is late."""
    log = [record("rush-delivery", event_id="old", ts=0, contract_id="K-0"),
           record("rush-delivery", event_id="new", ts=at(), contract_id="K-1"),
           record("rush-delivery", event_id="older", ts=1, contract_id="K-2")]  # fmt: skip
    result = run(log)
    assert [d.ts for d in result.deltas] == [0, at()]
    assert result.outcomes == {"accepted": 2, "late": 1}


# --- team updates carry only declared, bounded fields --------------------------------


@pytest.mark.parametrize(
    ["topic", "key", "fields"],
    [
        ("sales-action", "C1", {"team_id": "T1", "action_id": "A-1", "owner": "legal", "done_ts": at()}),
        ("forecast-outcome", "T1", {"team_id": "T1", "customer_id": None}),
    ],
)
def test_team_updates_carry_only_declared_fields(topic, key, fields):
    """Issue #10: 30 sales actions with a 60 KB extra field each made a team-update
    record pass its topic's limit and crashed the worker."""
    engine = SignalEngine(catalog(), CFG, DictStore(), clock=lambda: WALL)
    doc = value(topic, **fields, kind="hostile", pad="x" * 60_000, nested={"a": [1, 2]})
    (update,) = engine.handle(topic, key.encode(), raw(doc)).outputs
    assert update.topic == TEAM_UPDATES and update.key == "T1"
    assert update.value["kind"] == ("action" if topic == "sales-action" else "outcome")
    assert {k: v for k, v in update.value.items() if k != "kind"} == {
        k: v for k, v in catalog().schema(topic).decode(raw(doc)).items() if k in TEAM_FIELDS[topic]
    }


def test_team_fields_are_declared_fields():
    for topic, names in TEAM_FIELDS.items():
        assert set(names) <= set(catalog().schema(topic).names)


def _longest(spec) -> Any:
    """The value of a declared field whose JSON is longest: control characters escape
    to six bytes each."""
    if spec.type == "string":
        return "\x01" * spec.max_length if spec.pattern is None else "2026-12"
    if spec.type == "timestamp":
        return -(2**63)
    if spec.type == "number":
        return -1.2345678901234567e-300
    return max(spec.values, key=len)


@pytest.mark.parametrize("topic", ["sales-action", "forecast-outcome"])
def test_a_record_of_the_largest_team_updates_fits_its_topic(topic):
    """What the team stage receives is bounded by topics.yaml alone: a batched record of
    the largest possible forwarded updates stays below the topic's message limit."""
    schema = catalog().schema(topic)
    update = {name: _longest(schema.spec(name)) for name in TEAM_FIELDS[topic]} | {"kind": "outcome"}
    batch = {"kind": "batch", "updates": [update] * TEAM_UPDATES_PER_RECORD}
    limit = int(catalog()[TEAM_UPDATES].config["max.message.bytes"])
    assert len(orjson.dumps(batch)) < limit


@pytest.mark.parametrize(
    ["now", "outcome"],
    [(at(hours=1), "'accepted': 1"), (at(hours=1) - 1, "'invalid': 1"), (at(), "'invalid': 1")],
)
def test_credence_replay_bounds_event_times_by_its_now(tmp_path, capfdbinary, now, outcome):
    """A login a day and an hour after T0 is at most the default skew (a day) ahead of
    ``--now`` from T0 + 1 h on."""
    log = tmp_path / "events.jsonl"
    login = value("role-login", event_id="l", ts=at(days=1, hours=1))
    log.write_bytes(orjson.dumps({"topic": "role-login", "key": "C1", "value": login}) + b"\n")
    assert main(["replay", str(log), "--now", str(now)]) == 0
    err = capfdbinary.readouterr().err.decode()
    assert outcome in err
    assert ("future_event" in err) == (outcome == "'invalid': 1")
