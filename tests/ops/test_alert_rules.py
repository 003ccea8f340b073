"""deploy/prometheus: promtool checks the rules and the scrape configs and runs the
rule unit tests; every alert is well-formed and tested both firing and silent."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from tests.ops.prometheus_server import render_config
from tests.ops.support import (
    ALERTS,
    ALERTS_TEST,
    PROMETHEUS_CONFIGS,
    WORKER_JOB,
    alert_rules,
    require_tool,
)

SEVERITIES = {"critical", "warning", "info"}
REQUIRED_ALERTS = {
    "CredenceWorkerDown": "up",
    "CredenceConsumerLagGrowing": "credence_consumer_lag_records",
    "CredenceDeadLetterRate": "credence_dead_letters_total",
    "CredenceNoSignalDeltas": "credence_signal_deltas_total",
    "CredenceTeamRed": "credence_team_credibility_band",
    "CredenceActionWaterLevelBelowTarget": "credence_action_water_closed_below",
}


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *map(str, args)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests() -> None:
    result = _promtool("test", "rules", ALERTS_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda p: p.name)
def test_promtool_check_config(config: Path) -> None:
    result = _promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda p: p.name)
def test_scrape_job_is_the_one_the_alerts_watch(config: Path) -> None:
    doc = yaml.safe_load(config.read_text())
    assert WORKER_JOB in {job["job_name"] for job in doc["scrape_configs"]}
    assert doc["rule_files"] == [ALERTS.name]
    down = next(r for r in alert_rules() if r["alert"] == "CredenceWorkerDown")
    assert f'job="{WORKER_JOB}"' in down["expr"]


def test_every_required_alert_is_defined_and_documented() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(REQUIRED_ALERTS) <= set(rules)
    for name, metric in REQUIRED_ALERTS.items():
        assert metric in rules[name]["expr"], name
    for name, rule in rules.items():
        assert rule.get("for"), f"{name}: needs a `for:` duration"
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
    assert 'band="red"' in rules["CredenceTeamRed"]["expr"]
    assert 'outcome="accepted"' in rules["CredenceNoSignalDeltas"]["expr"]


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    doc = yaml.safe_load(ALERTS_TEST.read_text())
    assert doc["rule_files"] == [ALERTS.name]
    cases: dict[str, set[bool]] = defaultdict(set)
    for test in doc["tests"]:
        for case in test.get("alert_rule_test", []):
            cases[case["alertname"]].add(bool(case.get("exp_alerts")))
    for rule in alert_rules():
        assert cases[rule["alert"]] == {True, False}, (
            f"{rule['alert']}: alerts_test.yml needs a firing and a not-firing case"
        )


def test_rendered_config_is_the_deployed_one(tmp_path: Path) -> None:
    """The live test only swaps targets and intervals of deploy/prometheus/prometheus.yml."""
    original = yaml.safe_load(PROMETHEUS_CONFIGS[0].read_text())
    rendered = yaml.safe_load(render_config(tmp_path, ["127.0.0.1:1"]).read_text())
    for doc in (original, rendered):
        for job in doc["scrape_configs"]:
            job.pop("static_configs")
        doc.pop("global")
    assert rendered == original
    assert (tmp_path / "alerts.yml").read_text() == (PROMETHEUS_CONFIGS[0].parent / "alerts.yml").read_text()
