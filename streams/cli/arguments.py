"""What every ``credence`` command reads the same way: the settings, the rules file and
a time option, each exiting 1 with the reason when it is unusable."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from scoring.timeutil import TimestampError, parse_ts

if TYPE_CHECKING:
    from scoring.signal_catalogue import SignalCatalogue
    from streams.settings import Settings


def settings_or_exit() -> Settings:
    """The settings of the environment, with their secrets redacted from every log."""
    from streams.ops import redaction
    from streams.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.exit(f"credence: bad setting: {exc}")
    redaction.install(settings.secrets())
    return settings


def rules_or_exit(settings: Settings, path: str | None = None, command: str = "credence") -> SignalCatalogue:
    """The signal catalogue (``path``, else ``CREDENCE_RULES_FILE``, else rules.yaml),
    or exit 1 naming the file, the rule and the field."""
    from streams.settings import SettingsError, load_rules

    try:
        return load_rules(settings, path)
    except SettingsError as exc:
        sys.exit(f"{command}: bad rules file: {exc}")


def time_arg(value: str | None, option: str) -> int | None:
    """An ISO-8601 time with offset, or epoch milliseconds."""
    if value is None:
        return None
    try:
        return parse_ts(int(value) if value.isdigit() else value)
    except TimestampError as exc:
        sys.exit(f"credence: {option}: {exc}")
