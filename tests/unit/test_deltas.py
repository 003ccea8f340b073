"""Signal deltas (``scoring.deltas``): deterministic ids and the ``signal-deltas`` record."""

from __future__ import annotations

import dataclasses
import re

import orjson
import pytest

from scoring.deltas import Owner, SignalDelta
from scoring.events import Evidence
from tests.unit.fixtures import T0, T0_ISO

#: SPEC "Output topics", ``signal-deltas``.
SPEC_FIELDS = {
    "delta_id", "customer_id", "opportunity_id", "signal", "points", "ts", "detected_at",
    "team_id", "region", "rep_id", "evidence", "rule_version",
}  # fmt: skip
SPEC_EVIDENCE_FIELDS = {"event_id", "topic", "ts", "ip"}

E1 = Evidence("e1", "rush-delivery", T0, "10.0.0.1")
E2 = Evidence("e2", "stale-update", T0 + 1, None)
E3 = Evidence("e3", "stale-update", T0 + 2, None)

BASE = SignalDelta(
    customer_id="C1",
    signal="risk",
    points=-5,
    ts=T0,
    evidence=(E2, E3),
    owner=Owner("T1", "east", "R1"),
    rule_version="v1-abc",
    opportunity_id="O1",
)


def test_delta_id_is_deterministic():
    twin = SignalDelta(**{f.name: getattr(BASE, f.name) for f in dataclasses.fields(BASE)})
    assert twin.delta_id == BASE.delta_id
    assert re.fullmatch(r"[0-9a-f]{32}", BASE.delta_id)


@pytest.mark.parametrize(
    ["changes", "same_id"],
    [
        pytest.param({}, True, id="nothing"),
        pytest.param({"evidence": (E2, E1)}, False, id="other evidence"),
        pytest.param({"evidence": (E3, E2)}, False, id="evidence order"),
        pytest.param({"evidence": (E2,)}, False, id="less evidence"),
        pytest.param({"evidence": ()}, False, id="no evidence"),
        pytest.param({"evidence": (E2._replace(topic="role-login"), E3)}, False,
                     id="same event id on another topic"),
        pytest.param({"signal": "urgency"}, False, id="signal"),
        pytest.param({"customer_id": "C2"}, False, id="customer"),
        pytest.param({"opportunity_id": "O2"}, False, id="opportunity"),
        pytest.param({"opportunity_id": None}, False, id="no opportunity"),
        # the id names the inputs, not how they were scored or who owns them
        pytest.param({"ts": T0 + 5}, True, id="ts"),
        pytest.param({"points": -9}, True, id="points"),
        pytest.param({"owner": Owner()}, True, id="owner"),
        pytest.param({"rule_version": "v1-other"}, True, id="rule version"),
        pytest.param({"evidence": (E2._replace(ip="1.1.1.1"), E3)}, True, id="ip"),
    ],
)  # fmt: skip
def test_delta_id_depends_on_its_inputs(changes, same_id):
    assert (dataclasses.replace(BASE, **changes).delta_id == BASE.delta_id) == same_id


@pytest.mark.parametrize(
    ["delta", "detected_at"],
    [
        pytest.param(BASE, T0 + 1000, id="risk"),
        pytest.param(
            dataclasses.replace(BASE, signal="urgency", points=6, evidence=(E1,), owner=Owner(),
                                opportunity_id=None),
            T0,
            id="no owner, no opportunity",
        ),  # fmt: skip
        pytest.param(dataclasses.replace(BASE, evidence=()), 0, id="empty evidence"),
    ],
)
def test_to_record_has_every_spec_field(delta, detected_at):
    rec = delta.to_record(detected_at)
    assert set(rec) == SPEC_FIELDS
    assert rec["delta_id"] == delta.delta_id
    assert (rec["customer_id"], rec["signal"], rec["points"]) == (
        delta.customer_id,
        delta.signal,
        delta.points,
    )
    assert rec["opportunity_id"] == delta.opportunity_id
    assert (rec["team_id"], rec["region"], rec["rep_id"]) == (
        delta.owner.team_id,
        delta.owner.region,
        delta.owner.rep_id,
    )
    assert rec["rule_version"] == delta.rule_version
    assert len(rec["evidence"]) == len(delta.evidence)
    for row, ev in zip(rec["evidence"], delta.evidence, strict=True):
        assert set(row) == SPEC_EVIDENCE_FIELDS
        assert (row["event_id"], row["topic"], row["ip"]) == (ev.event_id, ev.topic, ev.ip)
    assert orjson.loads(orjson.dumps(rec)) == rec


def test_to_record_times_are_iso_utc():
    rec = BASE.to_record(T0 + 1500)
    assert rec["ts"] == T0_ISO
    assert rec["detected_at"] == "2026-11-26T09:30:01.500Z"
    assert [e["ts"] for e in rec["evidence"]] == [
        "2026-11-26T09:30:00.001Z",
        "2026-11-26T09:30:00.002Z",
    ]


def test_detected_at_does_not_change_the_id():
    assert BASE.to_record(0)["delta_id"] == BASE.to_record(T0)["delta_id"]


@pytest.mark.parametrize(
    "row",
    [["e1", "rush-delivery", T0, "10.0.0.1"], ["e2", "stale-update", 0, None]],
)
def test_evidence_list_round_trip(row):
    assert Evidence.from_list(row).to_list() == row
