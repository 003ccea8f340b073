"""Every threshold and window the signal rules use, in one frozen object."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from functools import cached_property

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class RuleConfig:
    """Signal rule parameters; the defaults are SPEC's."""

    high_intent_points: int = 8
    #: quote opens needed in a row
    high_intent_streak: int = 3
    #: an open counts only with dwell strictly above this many seconds
    high_intent_min_dwell_seconds: float = 120.0
    #: first and last open of the streak at most this far apart (inclusive)
    high_intent_window_ms: int = 7 * DAY_MS
    high_intent_document_type: str = "quote"

    decision_chain_points: int = 12
    decision_chain_roles: tuple[str, ...] = ("procurement", "technical", "legal")
    #: oldest and newest of the roles' latest logins at most this far apart (inclusive)
    decision_chain_window_ms: int = 14 * DAY_MS

    urgency_points: int = 6
    #: a contract id must match this regular expression in full to count
    urgency_contract_pattern: str = r"[A-Za-z0-9][A-Za-z0-9._/:#-]{0,127}"

    risk_points: int = -5
    #: staleness: strictly more than this long since the last progress update
    risk_stale_after_ms: int = 48 * HOUR_MS
    risk_outcome: str = "reconsider"

    #: de-duplication memory (and lateness horizon) in event time
    dedup_horizon_ms: int = 7 * DAY_MS

    def __post_init__(self) -> None:
        # events are compared case-insensitively, so configured values are folded too
        fold = object.__setattr__
        fold(self, "high_intent_document_type", self.high_intent_document_type.lower())
        fold(self, "decision_chain_roles", tuple(r.lower() for r in self.decision_chain_roles))
        fold(self, "risk_outcome", self.risk_outcome.lower())

    @cached_property
    def contract_pattern(self) -> re.Pattern[str]:
        return re.compile(self.urgency_contract_pattern)

    @cached_property
    def rule_version(self) -> str:
        """``v1-`` plus a short hash of every parameter: a changed threshold shows."""
        digest = hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()
        return f"v1-{digest[:8]}"
