"""Settings from the environment: defaults, conversions, and bad values named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.settings import Settings, SettingsError, load_settings


def test_defaults_without_environment() -> None:
    s = load_settings({})
    assert s == Settings()
    assert (s.web_host, s.web_port, s.time_zone) == ("127.0.0.1", 6066, "Asia/Shanghai")


@pytest.mark.parametrize(
    ["env", "field", "expected"],
    [
        ({"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092"}, "bootstrap_servers", "k1:9092,k2:9092"),
        ({"CREDENCE_WEB_PORT": "7000"}, "web_port", 7000),
        ({"CREDENCE_PRODUCER_IDEMPOTENCE": "true"}, "producer_idempotence", True),
        ({"CREDENCE_PRODUCER_IDEMPOTENCE": "0"}, "producer_idempotence", False),
        ({"CREDENCE_TIME_ZONE": "Europe/Berlin"}, "time_zone", "Europe/Berlin"),
        ({"CREDENCE_SECURITY_PROTOCOL": "SASL_SSL"}, "security_protocol", "SASL_SSL"),
        ({"CREDENCE_SESSION_TIMEOUT_SECONDS": "6"}, "session_timeout_seconds", 6.0),
        ({"CREDENCE_STATE_FLUSH_SECONDS": "2.5"}, "state_flush_seconds", 2.5),
        ({"CREDENCE_STATE_CACHE_CUSTOMERS": "1000"}, "state_cache_customers", 1000),
        ({"CREDENCE_BATCH_MAX_EVENTS": "1"}, "batch_max_events", 1),
    ],
)
def test_values_are_converted(env: dict[str, str], field: str, expected: object) -> None:
    assert getattr(load_settings(env), field) == expected


def test_rule_parameters_come_from_the_environment() -> None:
    rules = load_settings({"CREDENCE_RULE_RISK_POINTS": "-7", "CREDENCE_RULE_HIGH_INTENT_STREAK": "4"}).rules
    assert (rules.risk_points, rules.high_intent_streak) == (-7, 4)


@pytest.mark.parametrize(
    ["env", "named"],
    [
        ({"CREDENCE_WEB_PORT": "abc"}, "CREDENCE_WEB_PORT"),
        ({"CREDENCE_WEB_PORT": "70000"}, "CREDENCE_WEB_PORT"),
        ({"CREDENCE_WEB_PORT": "-1"}, "CREDENCE_WEB_PORT"),
        ({"CREDENCE_TIME_ZONE": "Mars/Olympus"}, "CREDENCE_TIME_ZONE"),
        ({"CREDENCE_SECURITY_PROTOCOL": "TLS"}, "CREDENCE_SECURITY_PROTOCOL"),
        ({"CREDENCE_PRODUCER_IDEMPOTENCE": "maybe"}, "CREDENCE_PRODUCER_IDEMPOTENCE"),
        ({"CREDENCE_SESSION_TIMEOUT_SECONDS": "2"}, "CREDENCE_SESSION_TIMEOUT_SECONDS"),
        ({"CREDENCE_RULE_URGENCY_CONTRACT_PATTERN": "("}, "CREDENCE_RULE_URGENCY_CONTRACT_PATTERN"),
        ({"CREDENCE_RULE_RISK_POINTS": "minus five"}, "CREDENCE_RULE_RISK_POINTS"),
        ({"CREDENCE_STATE_FLUSH_SECONDS": "0"}, "CREDENCE_STATE_FLUSH_SECONDS"),
        ({"CREDENCE_STATE_CACHE_CUSTOMERS": "0"}, "CREDENCE_STATE_CACHE_CUSTOMERS"),
        ({"CREDENCE_BATCH_MAX_EVENTS": "0"}, "CREDENCE_BATCH_MAX_EVENTS"),
        ({"CREDENCE_PROCESSING_GUARANTEE": "exactly_once"}, "CREDENCE_PROCESSING_GUARANTEE"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_secrets_are_masked() -> None:
    masked = load_settings({"CREDENCE_SASL_PASSWORD": "hunter2", "CREDENCE_WEB_TOKEN": "t0k"}).masked()
    assert masked["sasl_password"] == "***" and masked["web_token"] == "***"
    assert "hunter2" not in repr(masked)


def test_a_worker_with_a_bad_setting_fails_fast_naming_it() -> None:
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "CREDENCE_WEB_PORT": "http"}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "CREDENCE_WEB_PORT" in done.stderr
