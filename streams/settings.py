"""All runtime settings, read from the environment in one place.

``KAFKA_BOOTSTRAP_SERVERS`` keeps SPEC's name; everything else carries the
``CREDENCE_`` prefix. A bad value fails at start with the variable's name; every number
must be finite and within its range (:data:`RANGES`). Rule parameters are not
settings: they live in the signal catalogue, ``CREDENCE_RULES_FILE`` (:func:`load_rules`).
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

from scoring.rollup.config import RollupConfig
from scoring.signal_catalogue import DEFAULT_PATH as DEFAULT_RULES_PATH
from scoring.signal_catalogue import CatalogueError, SignalCatalogue, load_signal_catalogue

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
    #: longest a fetch waits at the broker for records (seconds). Apache Kafka answers as
    #: soon as a record arrives; the embedded broker (Tansu 0.6) answers only when the wait
    #: is over, so the wait is most of an event's latency there (20 ms: p50 5 ms).
    #: On Kafka a longer wait (0.1-0.5) costs no latency and fewer idle fetches
    fetch_max_wait_seconds: float = 0.02
    #: a new customer's first events wait one more fetch for a directory record written
    #: with them (streams.processing.signal_processor): one fetch's time, once
    wait_for_directory: bool = True
    #: idempotent producer; off on the embedded broker, which rejects it
    producer_idempotence: bool = False
    log_level: str = "WARNING"
    #: the signal catalogue; empty means the project's rules.yaml
    rules_file: str = ""

    def masked(self) -> dict[str, Any]:
        """Settings for logging, secrets replaced by ``***``."""
        return {
            f.name: "***" if _SECRET.search(f.name) and getattr(self, f.name) else getattr(self, f.name)
            for f in fields(self)
        }

    def secrets(self) -> list[str]:
        """The values of the secret settings that are set (redacted from every log)."""
        return [v for f in fields(self) if _SECRET.search(f.name) and (v := getattr(self, f.name))]

    @property
    def fetch_max_wait_ms(self) -> int:
        return round(self.fetch_max_wait_seconds * 1000)

    @property
    def max_event_skew_ms(self) -> int:
        return round(self.max_event_skew_seconds * 1000)

    @cached_property
    def rules(self) -> SignalCatalogue:
        """The signal catalogue of ``CREDENCE_RULES_FILE`` (else rules.yaml), read once:
        the worker's check, its signal processor and :attr:`rollup` share it."""
        return read_rules(rules_path(self))

    @cached_property
    def rollup(self) -> RollupConfig:
        """The roll-up's settings, with the water-level targets of :attr:`rules`."""
        return self.rollup_for(self.rules)

    def rollup_for(self, rules: SignalCatalogue) -> RollupConfig:
        """The roll-up's settings with ``rules``' water-level targets (a replay or dry run
        of another catalogue than the worker's)."""
        return RollupConfig(time_zone=self.time_zone, water_targets=rules.water_levels)

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
    # 0 would spin the fetch loop of an idle worker; past Faust's commit interval helps nothing
    "fetch_max_wait_seconds": (0.001, 1),
    "restore_stall_seconds": (1, 86_400),
    "state_cache_customers": (1, 10_000_000),
    # 0: no event may be ahead of the wall clock at all; a year: practically no bound
    "max_event_skew_seconds": (0, 366 * 86_400),
}


def _convert(name: str, raw: str, default: Any, key: str) -> Any:
    """``raw`` as the type of ``default``; a number must lie in ``RANGES[key]``."""
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
    low, high = RANGES[key]
    if not low <= value <= high:  # False for NaN as well
        raise SettingsError(f"{name}={raw!r}: must be a finite number from {low!r} to {high!r}")
    return value


#: settings that no longer exist, and why: set, they fail the start instead of being ignored
_REMOVED = {
    PREFIX + "PROCESSING_GUARANTEE": "removed: processing is at least once, with idempotent deltas "
    "(docs/architecture.md, delivery guarantees); unset it",
}


#: the prefix of the rule settings the signal catalogue replaced
_RULE_PREFIX = PREFIX + "RULE_"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from the environment; raises :class:`SettingsError`."""
    env = os.environ if environ is None else environ
    for name, why in _REMOVED.items():
        if name in env:
            raise SettingsError(f"{name}: {why}")
    if stale := sorted(name for name in env if name.startswith(_RULE_PREFIX)):
        raise SettingsError(
            f"{stale[0]}: removed: rule parameters live in the signal catalogue, rules.yaml; "
            f"edit a copy of it, point {env_name('rules_file')} at it and unset {', '.join(stale)} (docs/rules.md)"
        )
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = env_name(f.name)
        if name in env:
            values[f.name] = _convert(name, env[name].strip(), f.default, f.name)
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
    if Path(s.data_dir).exists() and not Path(s.data_dir).is_dir():
        raise SettingsError(f"{env_name('data_dir')}={s.data_dir!r}: not a directory")


def rules_path(settings: Settings, path: str | None = None) -> str:
    """The signal catalogue to read: ``path``, else the settings' ``CREDENCE_RULES_FILE``,
    else the project's rules.yaml."""
    return path or settings.rules_file or str(DEFAULT_RULES_PATH)


def load_rules(settings: Settings, path: str | None = None) -> SignalCatalogue:
    """The signal catalogue of :func:`rules_path`; raises :class:`SettingsError` naming
    the file, the rule and the field."""
    return settings.rules if path is None else read_rules(rules_path(settings, path))


def read_rules(source: str) -> SignalCatalogue:
    """The signal catalogue in ``source``, or :class:`SettingsError` naming the file."""
    try:
        return load_signal_catalogue(source)
    except CatalogueError as exc:
        raise SettingsError(f"{source}: {exc}") from exc
