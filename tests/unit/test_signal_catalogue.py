"""The signal catalogue file: SPEC's default accepted as written, and every mistake
refused with the rule and the field named (``credence rules check``, worker start)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scoring.customer import CustomerState
from scoring.patterns.spec import Spec
from scoring.signal_catalogue import (
    DEFAULT_PATH,
    CatalogueError,
    build_signal_catalogue,
    load_signal_catalogue,
)
from streams.cli.main import main
from tests.unit.fixtures import Tick, at, catalog, communication, default_rules_doc, feed, progress, rules

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_catalogue_is_the_projects_rules_yaml() -> None:
    assert DEFAULT_PATH == ROOT / "rules.yaml"
    cat = load_signal_catalogue()
    assert [(r.rule_id, r.kind, r.topic, r.points) for r in cat.rules] == [
        ("high_intent", "streak", "document-open", 8),
        ("decision_chain", "all_of", "role-login", 12),
        ("urgency", "first_per", "rush-delivery", 6),
        ("risk", "silence", "stale-update", -5),
    ]
    assert cat.water_levels == {"tech_request": 0.95}
    assert [r.timed for r in cat.rules] == [False, False, False, True]


def changed(rule_id: str, **keys: Any) -> dict[str, Any]:
    """The default document with one entry's keys set (``None`` removes a key)."""
    doc = default_rules_doc()
    (entry,) = [e for e in doc["signals"] if e["id"] == rule_id]
    for key, value in keys.items():
        if value is None:
            entry.pop(key)
        else:
            entry[key] = value
    return doc


QUOTE = {"document_type": "quote"}


@pytest.mark.parametrize(
    ["doc", "message"],
    [
        pytest.param(changed("high_intent", pattern="sequence"), "signal 'high_intent': pattern: unknown pattern 'sequence'", id="unknown pattern"),
        pytest.param(changed("high_intent", match={"dwell_seconds": {"gte": 120}}), "signal 'high_intent': match.dwell_seconds: unknown operator 'gte'", id="unknown operator"),
        pytest.param(changed("urgency", topic="sales-action"), "signal 'urgency': topic: unknown topic 'sales-action'", id="not a behaviour topic"),
        pytest.param(changed("urgency", topic="rush"), "signal 'urgency': topic: unknown topic 'rush'", id="unknown topic"),
        pytest.param(changed("urgency", field="contract"), "signal 'urgency': field: unknown field 'contract' for topic rush-delivery", id="unknown field"),
        pytest.param(changed("high_intent", scope={"role": "legal"}), "signal 'high_intent': scope.role: unknown field 'role' for topic document-open", id="field of another topic"),
        pytest.param(changed("risk", per="ts"), "signal 'risk': per: unknown field 'ts'", id="an envelope field"),
        pytest.param(changed("risk", after="48"), "signal 'risk': after: expected a duration", id="duration without unit"),
        pytest.param(changed("risk", after="2w"), "signal 'risk': after: expected a duration", id="unknown unit"),
        pytest.param(changed("risk", after="0h"), "signal 'risk': after: expected a duration", id="zero duration"),
        pytest.param(changed("risk", after=48), "signal 'risk': after: expected a duration", id="duration a number"),
        pytest.param(changed("urgency", regex="[A-Z"), "signal 'urgency': regex: bad regular expression", id="bad regex"),
        pytest.param(changed("high_intent", match={"document_type": {"regex": "(q"}}), "signal 'high_intent': match.document_type.regex: bad regular expression", id="bad regex operator"),
        pytest.param(changed("decision_chain", id="high_intent"), "signal 'high_intent': id: duplicate id", id="duplicate ids"),
        pytest.param(changed("high_intent", points="8"), "signal 'high_intent': points: expected an integer, got '8'", id="points a string"),
        pytest.param(changed("high_intent", points=8.5), "signal 'high_intent': points: expected an integer", id="points a float"),
        pytest.param(changed("high_intent", points=True), "signal 'high_intent': points: expected an integer", id="points a bool"),
        pytest.param(changed("high_intent", count=0), "signal 'high_intent': count: expected an integer >= 1", id="count zero"),
        pytest.param(changed("high_intent", count="3"), "signal 'high_intent': count: expected an integer >= 1", id="count a string"),
        pytest.param(changed("decision_chain", values="legal"), "signal 'decision_chain': values: expected a non-empty list", id="values not a list"),
        pytest.param(changed("decision_chain", values=[]), "signal 'decision_chain': values: expected a non-empty list", id="values empty"),
        pytest.param(changed("decision_chain", values=["legal", "Legal"]), "signal 'decision_chain': values: values repeat", id="values repeat"),
        pytest.param(changed("high_intent", match="quote"), "signal 'high_intent': match: expected a mapping", id="match not a mapping"),
        pytest.param(changed("high_intent", match={"dwell_seconds": {"gt": "120"}}), "signal 'high_intent': match.dwell_seconds.gt: expected a number", id="operand not a number"),
        pytest.param(changed("high_intent", match={"document_type": {"gt": 1}}), "signal 'high_intent': match.document_type.gt: document_type is not a number field", id="ordering a string field"),
        pytest.param(changed("high_intent", match={"document_type": {"in": "quote"}}), "signal 'high_intent': match.document_type.in: expected a non-empty list", id="in not a list"),
        pytest.param(changed("high_intent", match={"dwell_seconds": {"gt": 1, "lt": 9}}), "signal 'high_intent': match.dwell_seconds: expected a value or one operator", id="two operators"),
        pytest.param(changed("high_intent", count=None), "signal 'high_intent': count: missing (required)", id="missing count"),
        pytest.param(changed("risk", clock=None), "signal 'risk': clock: missing (required)", id="missing clock"),
        pytest.param(changed("urgency", points=None), "signal 'urgency': points: missing (required)", id="missing points"),
        pytest.param(changed("urgency", pattern=None), "signal 'urgency': pattern: missing (required)", id="missing pattern"),
        pytest.param(changed("urgency", id=None), "signals[3]: id: expected a non-empty string", id="missing id"),
        pytest.param(changed("urgency", within="7d"), "signal 'urgency': within: unknown key", id="a key of another kind"),
        pytest.param(changed("risk", afer="48h"), "signal 'risk': afer: unknown key", id="misspelt key"),
        pytest.param({**default_rules_doc(), "signal": []}, "signal: unknown key", id="unknown top-level key"),
        pytest.param({"signals": []}, "signals: expected a non-empty list", id="no signals"),
        pytest.param({**default_rules_doc(), "water_levels": {"tech_request": 95}}, "water_levels: tech_request: expected a number in (0, 1]", id="water level a percentage"),
        pytest.param({**default_rules_doc(), "water_levels": {"tech_request": 0}}, "water_levels: tech_request: expected a number in (0, 1]", id="water level zero"),
        pytest.param({**default_rules_doc(), "water_levels": {"tech_request": "high"}}, "water_levels: tech_request: expected a number in (0, 1]", id="water level a string"),
        pytest.param({**default_rules_doc(), "water_levels": [0.9]}, "water_levels: expected a mapping", id="water levels a list"),
        pytest.param([], "the rules file must be a mapping", id="not a mapping"),
    ],
)  # fmt: skip
def test_a_bad_catalogue_is_refused_naming_the_rule_and_field(doc: Any, message: str) -> None:
    with pytest.raises(CatalogueError) as caught:
        build_signal_catalogue(doc, catalog())
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(changed("high_intent", scope=None), id="streak without scope"),
        pytest.param(changed("urgency", regex=None), id="first_per without regex"),
        pytest.param(changed("urgency", match={"note": {"regex": "(?i).*asap.*"}}), id="first_per with match"),
        pytest.param(changed("decision_chain", match={"user_id": {"in": ["u1", "u2"]}}), id="all_of with match"),
        pytest.param({**default_rules_doc(), "water_levels": {"a": 1, "b": 0.5}}, id="water levels of 1"),
        pytest.param({"signals": default_rules_doc()["signals"]}, id="without water levels"),
    ],
)
def test_optional_keys_may_be_left_out_or_added(doc: Any) -> None:
    assert len(build_signal_catalogue(doc, catalog()).rules) == 4


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_rules_check_accepts_a_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(DEFAULT_PATH)]) == 0
    out = capsys.readouterr().out
    assert "4 signal(s), valid" in out and "risk" in out and rules().rule("risk").version in out
    assert main(["rules", "check", "--rules", str(write(tmp_path, changed("urgency", points=7)))]) == 0
    assert "+7" in capsys.readouterr().out


def test_rules_check_refuses_a_bad_file_naming_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, changed("risk", clock={"kind": {"like": "progress"}}))
    assert main(["rules", "check", str(path)]) == 1
    assert f"{path}: signal 'risk': clock.kind: unknown operator 'like'" in capsys.readouterr().err
    assert main(["rules", "check", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("signals: [\n")
    assert main(["rules", "check", str(tmp_path / "broken.yaml")]) == 1
    assert "not valid YAML" in capsys.readouterr().err


def test_a_worker_with_a_bad_rules_file_stops_at_start_naming_the_rule(tmp_path: Path) -> None:
    path = write(tmp_path, changed("high_intent", within="a week"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # never reached: the file is checked first
        "CREDENCE_RULES_FILE": str(path),
        "CREDENCE_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "worker"], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 1
    assert f"{path}: signal 'high_intent': within: expected a duration" in done.stderr
    assert not (tmp_path / "data").exists()


def test_replay_takes_the_rules_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"topic": "rush-delivery", "key": "C1", "value": {"event_id": "r1", "ts": "2026-11-26T09:30:00Z", "customer_id": "C1", "contract_id": "K-1"}}\n')
    assert main(["replay", str(log), "--now", "2026-11-27T00:00:00Z", "--rules", str(write(tmp_path, changed("urgency", points=2)))]) == 0
    assert '"points":2' in capsys.readouterr().out
    bad = write(tmp_path, changed("urgency", field="nope"))
    with pytest.raises(SystemExit) as stopped:
        main(["replay", str(log), "--rules", str(bad)])
    assert "signal 'urgency': field: unknown field 'nope'" in str(stopped.value.code)


@pytest.mark.parametrize(
    ["condition", "fields", "holds"],
    [
        ({"document_type": "Quote"}, {"document_type": "quote"}, True),
        ({"document_type": "quote"}, {"document_type": "QUOTE"}, True),
        ({"document_type": "quote"}, {"document_type": "quotes"}, False),
        ({"document_type": "quote"}, {}, False),
        ({"document_type": "quote"}, {"document_type": None}, False),
        ({"dwell_seconds": 120}, {"dwell_seconds": 120.0}, True),
        ({"dwell_seconds": 120}, {"dwell_seconds": "120"}, False),
        ({"dwell_seconds": {"gt": 120}}, {"dwell_seconds": 120}, False),
        ({"dwell_seconds": {"gt": 120}}, {"dwell_seconds": 120.001}, True),
        ({"dwell_seconds": {"ge": 120}}, {"dwell_seconds": 120}, True),
        ({"dwell_seconds": {"lt": 120}}, {"dwell_seconds": 120}, False),
        ({"dwell_seconds": {"lt": 120}}, {"dwell_seconds": 0}, True),
        ({"dwell_seconds": {"le": 120}}, {"dwell_seconds": 120}, True),
        ({"dwell_seconds": {"le": 120}}, {}, False),
        ({"document_type": {"in": ["Quote", "contract"]}}, {"document_type": "QUOTE"}, True),
        ({"document_type": {"in": ["quote"]}}, {"document_type": "pdf"}, False),
        ({"document_type": {"in": ["quote"]}}, {}, False),
        ({"document_id": {"regex": "Q-[0-9]+"}}, {"document_id": "Q-12"}, True),
        ({"document_id": {"regex": "Q-[0-9]+"}}, {"document_id": "Q-12x"}, False),  # a full match
        ({"document_id": {"regex": "Q-[0-9]+"}}, {"document_id": "q-12"}, False),  # case-sensitive
        ({"document_id": {"regex": "(?i)q-[0-9]+"}}, {"document_id": "Q-12"}, True),
        ({"document_id": {"regex": ".*"}}, {}, False),
        ({"document_type": "quote", "dwell_seconds": {"gt": 120}}, {"document_type": "quote", "dwell_seconds": 121}, True),
        ({"document_type": "quote", "dwell_seconds": {"gt": 120}}, {"document_type": "quote", "dwell_seconds": 12}, False),
    ],
)  # fmt: skip
def test_condition_operators(condition: dict[str, Any], fields: dict[str, Any], holds: bool) -> None:
    spec = Spec({"match": condition}, "r", catalog().schema("document-open"))
    test, _ = spec.condition("match")
    assert test(fields) is holds


def test_silence_without_shared_fields_watches_every_other_event() -> None:
    """``while`` naming no field of ``clock``: every non-clock event is a ``while`` event."""

    cat = build_signal_catalogue(changed("risk", **{"while": {"outcome": "reconsider"}}), catalog())
    steps = [progress(at(), event_id="p"), communication(at(hours=1), event_id="r"), Tick(at(hours=49))]
    assert [(d.signal, [e.event_id for e in d.evidence]) for _, d in feed(CustomerState("C1"), steps, cat)] == [
        ("risk", ["p", "r"])
    ]
    cleared = [*steps[:2], communication(at(hours=2), "positive", event_id="ok"), Tick(at(hours=49))]
    assert feed(CustomerState("C1"), cleared, cat) == []
