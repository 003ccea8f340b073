"""Settings from the environment: defaults, conversions, and bad values named."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from streams.settings import RANGES, Settings, SettingsError, env_name, load_rules, load_settings
from tests.unit.fixtures import rules

#: every numeric setting: (environment variable, its range, whether it is an integer)
NUMERIC = [(env_name(f), bounds, isinstance(getattr(Settings(), f), int)) for f, bounds in RANGES.items()]


def _numeric_fields(cls: type) -> set[str]:
    return {f.name for f in fields(cls) if type(f.default) in (int, float)}


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
        ({"CREDENCE_FETCH_MAX_WAIT_SECONDS": "0.1"}, "fetch_max_wait_seconds", 0.1),
        ({"CREDENCE_STATE_CACHE_CUSTOMERS": "1000"}, "state_cache_customers", 1000),
        ({"CREDENCE_BATCH_MAX_EVENTS": "1"}, "batch_max_events", 1),
        ({"CREDENCE_MAX_EVENT_SKEW_SECONDS": "3600"}, "max_event_skew_seconds", 3600.0),
        ({"CREDENCE_MAX_EVENT_SKEW_SECONDS": "0"}, "max_event_skew_seconds", 0.0),
        ({"CREDENCE_RISK_TICK_SECONDS": "0.1"}, "risk_tick_seconds", 0.1),
        ({"CREDENCE_SESSION_TIMEOUT_SECONDS": "1800"}, "session_timeout_seconds", 1800.0),
    ],
)
def test_values_are_converted(env: dict[str, str], field: str, expected: object) -> None:
    assert getattr(load_settings(env), field) == expected


@pytest.mark.parametrize(
    "name", ["CREDENCE_RULE_RISK_POINTS", "CREDENCE_RULE_URGENCY_CONTRACT_PATTERN", "CREDENCE_RULE_DEDUP_HORIZON_MS"]
)
def test_a_rule_setting_of_old_fails_naming_the_catalogue(name: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}: removed: .*rules.yaml.*CREDENCE_RULES_FILE"):
        load_settings({name: "7"})


def test_the_rules_file_comes_from_the_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    draft = tmp_path / "draft.yaml"
    draft.write_text(rules_text().replace("points: 8", "points: 9"))
    settings = load_settings({"CREDENCE_RULES_FILE": str(draft)})
    assert load_rules(settings).rule("high_intent").points == 9
    assert load_rules(Settings()).rule("high_intent").points == rules().rule("high_intent").points == 8
    draft.write_text(rules_text().replace("within: 7d", "within: 7w"))
    assert load_rules(settings).rule("high_intent").points == 9  # read once, at the first use
    with pytest.raises(SettingsError, match=f"^{draft}: signal 'high_intent': within: expected a duration"):
        load_rules(load_settings({"CREDENCE_RULES_FILE": str(draft)}))


def rules_text() -> str:
    from scoring.signal_catalogue import DEFAULT_PATH

    return DEFAULT_PATH.read_text()


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
        ({"CREDENCE_STATE_FLUSH_SECONDS": "0"}, "CREDENCE_STATE_FLUSH_SECONDS"),
        ({"CREDENCE_STATE_CACHE_CUSTOMERS": "0"}, "CREDENCE_STATE_CACHE_CUSTOMERS"),
        ({"CREDENCE_BATCH_MAX_EVENTS": "0"}, "CREDENCE_BATCH_MAX_EVENTS"),
        ({"CREDENCE_PROCESSING_GUARANTEE": "exactly_once"}, "CREDENCE_PROCESSING_GUARANTEE"),
        # the reproductions: accepted, they spun the CPU or failed inside Faust unnamed
        ({"CREDENCE_RISK_TICK_SECONDS": "0"}, "CREDENCE_RISK_TICK_SECONDS"),
        ({"CREDENCE_RISK_TICK_SECONDS": "inf"}, "CREDENCE_RISK_TICK_SECONDS"),
        ({"CREDENCE_SESSION_TIMEOUT_SECONDS": "inf"}, "CREDENCE_SESSION_TIMEOUT_SECONDS"),
        ({"CREDENCE_MAX_EVENT_SKEW_SECONDS": "-1"}, "CREDENCE_MAX_EVENT_SKEW_SECONDS"),
        ({"CREDENCE_MAX_EVENT_SKEW_SECONDS": "a day"}, "CREDENCE_MAX_EVENT_SKEW_SECONDS"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_every_numeric_setting_has_a_range() -> None:
    assert set(RANGES) == _numeric_fields(Settings)


def test_every_default_is_in_its_range() -> None:
    for field, (low, high) in RANGES.items():
        assert low <= getattr(Settings(), field) <= high, field


def _out_of_range(low: float, high: float, integer: bool) -> list[str]:
    below = str(int(low) - 1) if integer else repr(low / 2 if low > 0 else low - 1)
    above = str(int(high) + 1) if integer else repr(high * 2)
    return [below, above] + ([] if integer else ["inf", "-inf", "nan", "Infinity"])


@pytest.mark.parametrize(
    ["name", "raw"],
    [(name, raw) for name, (low, high), integer in NUMERIC for raw in _out_of_range(low, high, integer)],
)
def test_every_number_outside_its_range_names_its_variable(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}="):
        load_settings({name: raw})


@pytest.mark.parametrize(
    ["name", "raw"], [(name, repr(bound)) for name, bounds, _ in NUMERIC for bound in bounds]
)
def test_every_range_is_inclusive(name: str, raw: str) -> None:
    load_settings({name: raw})


def test_the_event_skew_reaches_the_engine_in_milliseconds() -> None:
    assert Settings().max_event_skew_ms == 86_400_000
    assert load_settings({"CREDENCE_MAX_EVENT_SKEW_SECONDS": "1.5"}).max_event_skew_ms == 1_500


def test_secrets_are_masked() -> None:
    masked = load_settings({"CREDENCE_SASL_PASSWORD": "hunter2", "CREDENCE_WEB_TOKEN": "t0k"}).masked()
    assert masked["sasl_password"] == "***" and masked["web_token"] == "***"
    assert "hunter2" not in repr(masked)


def test_a_worker_with_a_bad_setting_fails_fast_naming_it() -> None:
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "CREDENCE_WEB_PORT": "http"}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "CREDENCE_WEB_PORT" in done.stderr
