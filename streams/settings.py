"""All runtime settings, read from the environment in one place.

``KAFKA_BOOTSTRAP_SERVERS`` keeps SPEC's name; everything else carries the
``CREDENCE_`` prefix. A bad value fails at start with the variable's name; every number
must be finite and within its range (:data:`RANGES`, :data:`RULE_RANGES`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scoring.config import DAY_MS, RuleConfig
from scoring.rollup.config import RollupConfig
from scoring.rollup.water_targets import load_water_levels

PREFIX = "CREDENCE_"
_SECRET = re.compile(r"password|secret|token", re.I)


class SettingsError(ValueError):
    """A setting from the environment has a value Credence cannot use."""


@dataclass(frozen=True)
class Settings:
    #: Kafka bootstrap servers; empty means "start the embedded broker"
    bootstrap_servers: str = ""
    #: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    #: prepended to every topic name of topics.yaml on the cluster
    topic_prefix: str = ""
    #: Faust app id, also the consumer group
    app_id: str = "credence"
    data_dir: str = "./data"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    #: host other workers use to reach this one's web server (views forward to the
    #: worker that holds the team table); defaults to web_host
    web_advertised_host: str = ""
    #: bearer token for the web views that expose IP addresses (traceability lists);
    #: empty disables them. A secret: masked in logs.
    web_token: str = ""
    time_zone: str = "Asia/Shanghai"
    #: consumer group session timeout: how fast a dead worker's partitions move on.
    #: The embedded broker also waits half of it before the first group join.
    session_timeout_seconds: float = 10.0
    #: how often the risk timer looks for stale opportunities (seconds)
    risk_tick_seconds: float = 1.0
    #: how often the team roll-up is re-scored against the wall clock (seconds)
    team_tick_seconds: float = 10.0
    #: most input records in one batch (one fetch of the consumer); the team agent takes
    #: records holding at most as many updates (scoring.rollup.records.records_per_batch)
    batch_max_events: int = 2_000
    #: how long a team-agent batch may wait for more updates (seconds)
    batch_within_seconds: float = 0.05
    #: customer state is written (RocksDB and changelog) and input offsets acknowledged at
    #: most this long after the events that changed it (seconds); deltas go out at once
    state_flush_seconds: float = 0.5
    #: a table restore whose remaining changelog records have reached no new low for this
    #: long makes the worker rejoin its consumer group (streams.ops.restore_watchdog; seconds)
    restore_stall_seconds: float = 30.0
    #: decoded customer states kept in memory between fetches (least recently used go)
    state_cache_customers: int = 50_000
    #: an event time further ahead of the wall clock than this is dead-lettered
    #: (``future_event``) and moves no clock (seconds)
    max_event_skew_seconds: float = 86_400.0
    #: idempotent producer; off on the embedded broker, which rejects it
    producer_idempotence: bool = False
    log_level: str = "WARNING"
    rules: RuleConfig = RuleConfig()

    def masked(self) -> dict[str, Any]:
        """Settings for logging, secrets replaced by ``***``."""
        return {
            f.name: "***" if _SECRET.search(f.name) and getattr(self, f.name) else getattr(self, f.name)
            for f in fields(self)
            if f.name != "rules"
        }

    def secrets(self) -> list[str]:
        """The values of the secret settings that are set (redacted from every log)."""
        return [v for f in fields(self) if _SECRET.search(f.name) and (v := getattr(self, f.name))]

    @property
    def max_event_skew_ms(self) -> int:
        return round(self.max_event_skew_seconds * 1000)

    @cached_property
    def rollup(self) -> RollupConfig:
        return RollupConfig(time_zone=self.time_zone, water_targets=load_water_levels())

    def with_bootstrap(self, servers: str) -> Settings:
        return replace(self, bootstrap_servers=servers)


_ENUMS = {
    "security_protocol": {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"},
    "sasl_mechanism": {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
    "log_level": {"DEBUG", "INFO", "WARNING", "ERROR"},
}


def env_name(field_name: str) -> str:
    return "KAFKA_BOOTSTRAP_SERVERS" if field_name == "bootstrap_servers" else PREFIX + field_name.upper()


#: Every numeric setting's range, inclusive. NaN and infinities are in none.
RANGES: dict[str, tuple[float, float]] = {
    "web_port": (1, 65_535),
    # Kafka's default group.min.session.timeout.ms and group.max.session.timeout.ms
    "session_timeout_seconds": (6, 1_800),
    # a timer of 0 s spins: an idle worker at 70 % CPU
    "risk_tick_seconds": (0.1, 3_600),
    # each tick is a record to the team agent and a re-score of every team
    "team_tick_seconds": (1, 3_600),
    "batch_max_events": (1, 100_000),
    "batch_within_seconds": (0.001, 60),
    "state_flush_seconds": (0.01, 3_600),
    "restore_stall_seconds": (1, 86_400),
    "state_cache_customers": (1, 10_000_000),
    # 0: no event may be ahead of the wall clock at all; a year: practically no bound
    "max_event_skew_seconds": (0, 366 * 86_400),
}
_POINTS = (-1_000, 1_000)
_WINDOW_MS = (1, 366 * DAY_MS)
#: The same for ``CREDENCE_RULE_<FIELD>`` (the numeric fields of ``scoring.config.RuleConfig``).
RULE_RANGES: dict[str, tuple[float, float]] = {
    "high_intent_points": _POINTS,
    "high_intent_streak": (1, 100),
    "high_intent_min_dwell_seconds": (0, 366 * 86_400),
    "high_intent_window_ms": _WINDOW_MS,
    "decision_chain_points": _POINTS,
    "decision_chain_window_ms": _WINDOW_MS,
    "urgency_points": _POINTS,
    "risk_points": _POINTS,
    "risk_stale_after_ms": _WINDOW_MS,
    "dedup_horizon_ms": _WINDOW_MS,
}


def _convert(name: str, raw: str, default: Any, ranges: Mapping[str, tuple[float, float]], key: str) -> Any:
    """``raw`` as the type of ``default``; a number must lie in ``ranges[key]``."""
    try:
        if isinstance(default, bool):
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError("expected true or false")
            return raw.lower() in {"1", "true", "yes"}
        if isinstance(default, int):
            value: Any = int(raw)
        elif isinstance(default, float):
            value = float(raw)
        else:
            return raw
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from exc
    low, high = ranges[key]
    if not low <= value <= high:  # False for NaN as well
        raise SettingsError(f"{name}={raw!r}: must be a finite number from {low!r} to {high!r}")
    return value


#: settings that no longer exist, and why: set, they fail the start instead of being ignored
_REMOVED = {
    PREFIX + "PROCESSING_GUARANTEE": "removed: processing is at least once, with idempotent deltas "
    "(docs/architecture.md, delivery guarantees); unset it",
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from the environment; raises :class:`SettingsError`."""
    env = os.environ if environ is None else environ
    for name, why in _REMOVED.items():
        if name in env:
            raise SettingsError(f"{name}: {why}")
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "rules":
            continue
        name = env_name(f.name)
        if name in env:
            values[f.name] = _convert(name, env[name].strip(), f.default, RANGES, f.name)
    rule_values: dict[str, Any] = {}
    for f in fields(RuleConfig):
        name = f"{PREFIX}RULE_{f.name.upper()}"
        if name in env and not isinstance(f.default, tuple):
            rule_values[f.name] = _convert(name, env[name].strip(), f.default, RULE_RANGES, f.name)
    if rule_values:
        values["rules"] = RuleConfig(**rule_values)
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    for field_name, allowed in _ENUMS.items():
        if getattr(s, field_name) not in allowed:
            raise SettingsError(
                f"{env_name(field_name)}={getattr(s, field_name)!r}: expected one of {sorted(allowed)}"
            )
    try:
        ZoneInfo(s.time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"{env_name('time_zone')}={s.time_zone!r}: unknown time zone") from exc
    if s.rules.urgency_contract_pattern:
        try:
            re.compile(s.rules.urgency_contract_pattern)
        except re.error as exc:
            raise SettingsError(f"{PREFIX}RULE_URGENCY_CONTRACT_PATTERN: {exc}") from exc
    if Path(s.data_dir).exists() and not Path(s.data_dir).is_dir():
        raise SettingsError(f"{env_name('data_dir')}={s.data_dir!r}: not a directory")
