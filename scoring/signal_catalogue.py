"""The signal catalogue: ``rules.yaml`` read, checked and built into rules.

Every signal is an instance of a pattern kind (:data:`scoring.patterns.KINDS`). A bad
file raises :class:`CatalogueError` naming the rule and the field, so a worker stops
at start and ``credence rules check`` says what to fix.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from scoring.catalog import BEHAVIOUR_TOPICS, Catalog, load_catalog
from scoring.patterns import KINDS
from scoring.patterns.base import Pattern
from scoring.patterns.spec import CatalogueError, Spec

__all__ = ["DEFAULT_PATH", "CatalogueError", "SignalCatalogue", "build_signal_catalogue", "load_signal_catalogue"]

_IN_CHECKOUT = Path(__file__).resolve().parent.parent / "rules.yaml"
_INSTALLED = Path(sys.prefix) / "share" / "credence" / "rules.yaml"
#: the project's ``rules.yaml`` (SPEC's default catalogue), found as ``topics.yaml`` is
DEFAULT_PATH = _IN_CHECKOUT if _IN_CHECKOUT.exists() else _INSTALLED


@dataclass(frozen=True, eq=False)
class SignalCatalogue:
    """The rules, in file order, and the action water-level targets."""

    rules: tuple[Pattern, ...]
    #: action kind -> monthly target, a share in (0, 1]
    water_levels: dict[str, float] = field(default_factory=dict)
    #: behaviour topic -> the rules that read it
    by_topic: dict[str, tuple[Pattern, ...]] = field(init=False, repr=False)
    #: per topic, the rules with a capacity bound; the rules with a clock
    bounded: dict[str, tuple[Pattern, ...]] = field(init=False, repr=False)
    timed: tuple[Pattern, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_topic = {t: tuple(r for r in self.rules if r.topic == t) for t in BEHAVIOUR_TOPICS}
        object.__setattr__(self, "by_topic", by_topic)
        object.__setattr__(self, "bounded", {t: tuple(r for r in rs if r.bounded) for t, rs in by_topic.items()})
        object.__setattr__(self, "timed", tuple(r for r in self.rules if r.timed))

    def rule(self, rule_id: str) -> Pattern:
        return next(r for r in self.rules if r.rule_id == rule_id)


def load_signal_catalogue(
    path: str | os.PathLike[str] | None = None, topics: Catalog | None = None
) -> SignalCatalogue:
    """Read and check a rules file (``None``: the project's ``rules.yaml``)."""
    source = Path(path) if path is not None else DEFAULT_PATH
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{source}: not valid YAML: {exc}") from exc
    return build_signal_catalogue(doc, topics)


def build_signal_catalogue(doc: Any, topics: Catalog | None = None) -> SignalCatalogue:
    """The catalogue of a parsed rules document (a mapping, as ``rules.yaml`` holds)."""
    if not isinstance(doc, Mapping):
        raise CatalogueError("the rules file must be a mapping with 'signals' (and 'water_levels')")
    unknown = sorted(set(doc) - {"signals", "water_levels"}, key=str)
    if unknown:
        raise CatalogueError(f"{unknown[0]}: unknown key (expected signals, water_levels)")
    entries = doc.get("signals")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError("signals: expected a non-empty list of signals")
    topics = topics or load_catalog()
    rules: list[Pattern] = []
    for number, entry in enumerate(entries, 1):
        rule = _build_rule(number, entry, topics)
        if any(r.rule_id == rule.rule_id for r in rules):
            raise CatalogueError(f"signal {rule.rule_id!r}: id: duplicate id")
        rules.append(rule)
    return SignalCatalogue(tuple(rules), _water_levels(doc.get("water_levels", {})))


def _build_rule(number: int, entry: Any, topics: Catalog) -> Pattern:
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"signals[{number}]: expected a mapping, got {entry!r}")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise CatalogueError(f"signals[{number}]: id: expected a non-empty string, got {rule_id!r}")
    topic = entry.get("topic")
    if topic not in BEHAVIOUR_TOPICS:
        raise CatalogueError(
            f"signal {rule_id!r}: topic: unknown topic {topic!r} (one of {', '.join(BEHAVIOUR_TOPICS)})"
        )
    spec = Spec(entry, rule_id, topics.schema(topic))
    spec.string("id")
    spec.string("topic")
    kind = spec.string("pattern")
    if kind not in KINDS:
        raise spec.error("pattern", f"unknown pattern {kind!r} (one of {', '.join(KINDS)})")
    rule = KINDS[kind](spec)
    spec.finish()
    rule.version = _digest(spec.canonical)
    rule.shape = _digest({k: v for k, v in spec.canonical.items() if k != "points"})
    return rule


def _digest(definition: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def _water_levels(levels: Any) -> dict[str, float]:
    if not isinstance(levels, Mapping):
        raise CatalogueError(f"water_levels: expected a mapping of action kind to target, got {levels!r}")
    for action, target in levels.items():
        if not isinstance(action, str) or type(target) not in (int, float) or not 0 < target <= 1:
            raise CatalogueError(f"water_levels: {action}: expected a number in (0, 1], got {target!r}")
    return {action: float(target) for action, target in levels.items()}
