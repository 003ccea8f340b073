"""Every record Credence writes stays below its topic's size limit by construction: the
worst case of each output topic, every input field at its ``max_length`` and made of
control characters (six bytes each once JSON-escaped), against the topic's value budget
(half its ``max.message.bytes`` in ``topics.yaml``). Dead letters: test_dead_letters.py;
the customer state's changelog: test_customer_capacity.py."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from scoring.catalog import DIRECTORY_TOPIC
from scoring.config import DAY_MS, HOUR_MS
from scoring.customer import CustomerState
from scoring.engine import DictStore, SignalEngine
from scoring.rollup.config import RollupConfig
from scoring.rollup.heatmap import split_regions
from scoring.rollup.ledger import MAX_ENTRIES, CustomerLedger
from scoring.rollup.records import (
    TEAM_UPDATE_RECORD_BYTES,
    TEAM_UPDATES,
    TEAM_UPDATES_PER_RECORD,
    Output,
    team_update_batches,
)
from scoring.rollup.team_rollup import DictTeamStore, TeamRollup
from scoring.schema import RecordSchema
from scoring.timeutil import format_ts
from tests.unit.fixtures import T0, catalog, rules

CFG = rules()
ROLLUP = RollupConfig()
#: a Friday 17:00 in Shanghai, the week's heat map
FRIDAY = T0 + DAY_MS - HOUR_MS // 2
CUSTOMER_ID = "c" + "\x01" * 127
TEAM_ID = "t" + "\x01" * 127


def longest(chars: int, tag: object = "") -> str:
    text = str(tag)
    return text + "\x01" * (chars - len(text))


def longest_value(schema: RecordSchema, tag: object, **fields: Any) -> dict[str, Any]:
    """A valid value with every field present and at its longest."""
    doc: dict[str, Any] = {}
    for spec in schema.fields:
        if spec.pattern is not None:  # only forecast periods have one: YYYY-MM
            doc[spec.name] = "2026-11"
        elif spec.type == "string":
            doc[spec.name] = longest(spec.max_length or 4096, tag)
        elif spec.type == "enum":
            doc[spec.name] = max(spec.values, key=len)
        elif spec.type == "timestamp":
            doc[spec.name] = T0
        else:
            doc[spec.name] = 1.7976931348623157e308
    return {**doc, "customer_id": CUSTOMER_ID, "team_id": TEAM_ID, **fields}


def budget(topic: str) -> int:
    return catalog()[topic].value_budget


def size(output: Output) -> int:
    return len(output.key.encode()) + len(orjson.dumps(output.value))


def hostile_customer() -> tuple[list[Output], list[dict[str, Any]]]:
    """One customer's every signal, from inputs with every field at its longest, with a
    full score window (the alert then has far more deltas than it lists)."""
    engine = SignalEngine(catalog(), CFG, DictStore(), ROLLUP)
    state = CustomerState(CUSTOMER_ID)
    state.ledger = CustomerLedger([[f"{i:032x}", "decision_chain", 0, T0 - i * 1000] for i in range(MAX_ENTRIES)])
    engine.store.save(state)
    schema = catalog().schema
    inputs = [(DIRECTORY_TOPIC, longest_value(schema(DIRECTORY_TOPIC), "d"))]
    inputs += [("role-login", longest_value(schema("role-login"), f"l{r}", role=r)) for r in CFG.rule("decision_chain").values]
    inputs += [("rush-delivery", longest_value(schema("rush-delivery"), "r", contract_id="K" + "-" * 127))]
    inputs += [
        ("document-open", longest_value(schema("document-open"), f"q{i}", document_type="quote", dwell_seconds=600))
        for i in range(CFG.rule("high_intent").count)
    ]
    opportunity = longest(128, "o")
    inputs += [
        ("stale-update", longest_value(schema("stale-update"), "p", kind="progress", opportunity_id=opportunity, ts=T0 - 3 * DAY_MS)),
        ("stale-update", longest_value(schema("stale-update"), "m", kind="communication", opportunity_id=opportunity, outcome="reconsider")),
    ]
    inputs += [(topic, longest_value(schema(topic), f"t{i}")) for i in range(3) for topic in ("sales-action", "forecast-outcome")]
    outputs: list[Output] = []
    deltas = []
    for topic, doc in inputs:
        key = TEAM_ID if topic == "forecast-outcome" else CUSTOMER_ID
        handled = engine.handle(topic, key.encode(), orjson.dumps(doc))
        assert handled.error is None, (topic, handled.error)
        outputs += handled.outputs
        deltas += handled.deltas
    fired = engine.fire_customer(CUSTOMER_ID, T0 + DAY_MS)
    outputs += fired.outputs + engine.release_alerts(CUSTOMER_ID)
    deltas += fired.deltas
    assert sorted({d.signal for d in deltas}) == ["decision_chain", "high_intent", "risk", "urgency"]
    return outputs, [d.to_record(T0) for d in deltas]


@pytest.fixture(scope="module")
def hostile() -> tuple[list[Output], list[dict[str, Any]]]:
    return hostile_customer()


def test_signal_deltas(hostile):
    _, records = hostile
    for record in records:
        assert len(CUSTOMER_ID.encode()) + len(orjson.dumps(record)) < budget("signal-deltas") / 50


@pytest.mark.parametrize("topic", ["customer-scores", "procurement-alerts"])
def test_customer_scores_and_alerts(hostile, topic):
    outputs, _ = hostile
    records = [o for o in outputs if o.topic == topic]
    assert records
    assert max(size(o) for o in records) < budget(topic) / 4
    if topic == "procurement-alerts":  # the longest list an alert may carry
        raised = [o.value for o in records if not o.value["retracted"]]
        assert raised and all(len(a["contributing_deltas"]) == ROLLUP.alert_max_contributing for a in raised)
        assert all(a["contributing_total"] > ROLLUP.alert_max_contributing for a in raised)


def team_updates(outputs: Iterable[Output]) -> dict[str, list[dict[str, Any]]]:
    held: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in outputs:
        if o.topic == TEAM_UPDATES:
            held[o.key].append(o.value)
    return held


def test_team_updates_of_every_kind_at_their_longest(hostile):
    outputs, _ = hostile
    held = team_updates(outputs)
    ((team, updates),) = held.items()
    assert {u["kind"] for u in updates} == {"customer", "delta", "action", "outcome"}
    many = updates * (5 * TEAM_UPDATES_PER_RECORD)
    records = team_update_batches({team: many})
    assert budget(TEAM_UPDATES) >= TEAM_UPDATE_RECORD_BYTES
    assert all(size(r) <= budget(TEAM_UPDATES) for r in records)
    assert all(len(r.value["updates"]) <= TEAM_UPDATES_PER_RECORD for r in records)
    assert [u for r in records for u in r.value["updates"]] == many
    # the count alone keeps no margin: so many of the largest updates pass the budget
    largest = max(updates, key=lambda u: len(orjson.dumps(u)))
    assert len(orjson.dumps([largest] * TEAM_UPDATES_PER_RECORD)) > budget(TEAM_UPDATES)


def red_teams(teams: int, rows_per_team: int, update: dict[str, Any], region: str) -> tuple[TeamRollup, list[Output]]:
    """``teams`` red teams of one region, each with ``rows_per_team`` copies of the
    ``delta`` update (new ids) in the heat map's week; their ``team-credibility`` records."""
    rollup = TeamRollup(ROLLUP, DictTeamStore())
    scores = []
    for t in range(teams):
        team = longest(128, f"T{t}")
        customer = {"kind": "customer", "customer_id": CUSTOMER_ID, "region": region, "net_points": 0,
                    "activity_ts": FRIDAY - DAY_MS, "as_of": FRIDAY - DAY_MS}  # fmt: skip
        scores += rollup.apply_many([(team, customer)])
        scores += rollup.apply_many([
            (team, {**update, "delta_id": f"{t:016x}{i:016x}", "ts": format_ts(FRIDAY - DAY_MS - i)})
            for i in range(rows_per_team)
        ])  # fmt: skip
    return rollup, scores


def test_team_credibility_and_the_heat_map_of_a_hostile_region(hostile):
    outputs, _ = hostile
    (delta,) = [u for u in team_updates(outputs)[TEAM_ID] if u["kind"] == "delta"][:1]
    rollup, scores = red_teams(12, 300, delta, longest(128, "d"))
    assert len(scores) == 12 and all(s.value["band"] == "red" for s in scores)
    assert max(size(s) for s in scores) < budget("team-credibility") / 100
    records = rollup.heatmap(FRIDAY)
    assert len(records) > 1  # 3 600 rows of 4 KB: over one record's budget
    assert all(size(r) <= budget("credibility-heatmap") for r in records)
    assert [(r.value["part"], r.value["parts"]) for r in records] == [(i, len(records)) for i in range(1, len(records) + 1)]
    assert ROLLUP.heatmap_record_bytes <= budget("credibility-heatmap")
    rows = [row for r in records for rows in r.value["traceability"].values() for row in rows]
    assert len(rows) == 12 * 300


def test_a_heat_map_of_many_teams_is_split_too():
    rollup = TeamRollup(ROLLUP, DictTeamStore())
    rollup.apply_many([
        (longest(128, f"T{t}"), {"kind": "customer", "customer_id": "c", "region": "r", "net_points": 26,
                                 "activity_ts": FRIDAY - DAY_MS, "as_of": FRIDAY - DAY_MS})
        for t in range(6_000)
    ])  # fmt: skip
    records = rollup.heatmap(FRIDAY)
    assert len(records) > 1 and all(size(r) <= budget("credibility-heatmap") for r in records)
    assert sum(len(r.value["teams"]) for r in records) == 6_000


REGION = {"region": "east", "at": "x", "week_start": "y", "time_zone": "z", "regions_total": 1}


def row(n: int) -> dict[str, Any]:
    return {"delta_id": f"{n:032x}", "customer_id": "c" * 100}


@pytest.mark.parametrize(
    ("teams", "traceability", "max_bytes", "parts"),
    [
        ([], {}, 10_000, [([], {})]),
        ([{"team_id": "A"}], {"A": []}, 10_000, [([{"team_id": "A"}], {"A": []})]),
        (
            [{"team_id": "A"}, {"team_id": "B"}],
            {"A": [row(i) for i in range(20)], "B": [row(i) for i in range(20, 25)]},
            1024 + 1_000,
            [
                ([{"team_id": "A"}, {"team_id": "B"}], {"A": [row(i) for i in range(4)]}),
                ([], {"A": [row(i) for i in range(4, 9)]}),
                ([], {"A": [row(i) for i in range(9, 14)]}),
                ([], {"A": [row(i) for i in range(14, 19)]}),
                ([], {"A": [row(19)], "B": [row(i) for i in range(20, 24)]}),
                ([], {"B": [row(24)]}),
            ],
        ),
    ],
)
def test_split_regions(teams, traceability, max_bytes, parts):
    records = split_regions([{**REGION, "teams": teams, "traceability": traceability}], max_bytes)
    assert [(r["teams"], r["traceability"]) for r in records] == parts
    assert all(r.items() >= {**REGION, "parts": len(parts)}.items() for r in records)
    # room for ``trigger`` and ``request_id``; each part full: the next row would not fit
    sizes = [len(orjson.dumps(r)) for r in records]
    assert all(n <= max_bytes - 1024 for n in sizes)
    assert all(n + len(orjson.dumps(row(0))) > max_bytes - 1024 - 40 for n in sizes[:-1])


def test_a_teams_stored_header_holds_only_the_periods_that_count():
    """Forecast periods without number (a hostile upstream: any year) in one hour of the
    team's clock: the header, one ``team-state`` changelog record, keeps the newest six."""
    rollup = TeamRollup(ROLLUP, DictTeamStore())
    periods = [f"{year:04d}-{month:02d}" for year in range(1000, 3000) for month in range(1, 13)]
    updates = [
        (TEAM_ID, {"kind": "outcome", "event_id": p, "ts": T0, "team_id": TEAM_ID, "period": p,
                   "forecast_amount": 1.7976931348623157e308, "actual_amount": 0.0})
        for p in periods
    ]  # fmt: skip
    for i in range(0, len(updates), 200):  # the team agent's runs (the hourly forgetting runs once)
        rollup.apply_many(updates[i : i + 200])
    state = rollup.store.load(TEAM_ID)
    assert state is not None and sorted(state.periods) == periods[-ROLLUP.fulfilment_periods :]
    assert len(orjson.dumps(state.header())) < 4 * 1024


def test_water_levels_and_a_diagnosis_of_hostile_items(hostile):
    """Two months of missed items, every field at its longest, 60 owners: the diagnosis
    lists at most 50 stall points and 10 items."""
    outputs, _ = hostile
    action = next(u for u in team_updates(outputs)[TEAM_ID] if u["kind"] == "action")
    rollup = TeamRollup(RollupConfig(water_targets={action["action"]: 0.95}), DictTeamStore())
    for i in range(120):
        due = T0 - (i % 2 + 1) * 31 * DAY_MS
        item = {**action, "ts": due, "due_ts": due, "action_id": longest(128, f"a{i}"), "owner": longest(64, f"o{i % 60}")}
        del item["done_ts"]
        rollup.apply(TEAM_ID, item)
    records = rollup.tick(T0)
    [diagnosis] = [r for r in records if r.topic == "process-diagnosis"]
    assert len(diagnosis.value["stall_points"]) == 50 and len(diagnosis.value["worst"]) == 10
    assert size(diagnosis) <= budget("process-diagnosis") / 10
    assert max(size(r) for r in records if r.topic == "action-water-levels") <= budget("action-water-levels") / 100
