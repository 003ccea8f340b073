"""Water-level targets: the ``water_levels`` key of the rules file."""

from __future__ import annotations

import math
import os
from pathlib import Path

import yaml

DEFAULT_RULES = Path(__file__).resolve().parent.parent.parent / "rules.yaml"


def load_water_levels(path: str | os.PathLike[str] | None = None) -> dict[str, float]:
    """Action kind -> target share (0..1) from ``path``, else the file named by
    ``CREDENCE_RULES_FILE``, else the project's ``rules.yaml`` (no targets when that
    default file is absent, as in an install without it). A bad entry raises
    ``ValueError`` naming it."""
    chosen = path or os.environ.get("CREDENCE_RULES_FILE")
    source = Path(chosen) if chosen else DEFAULT_RULES
    if not chosen and not source.exists():
        return {}
    doc = yaml.safe_load(source.read_text()) or {}
    levels = doc.get("water_levels") or {}
    if not isinstance(levels, dict):
        raise ValueError(f"{source}: water_levels: expected a mapping of action kind to target")
    targets: dict[str, float] = {}
    for action, target in levels.items():
        if not isinstance(action, str) or not action or isinstance(target, bool) or not isinstance(target, int | float):
            raise ValueError(f"{source}: water_levels.{action}: expected an action kind and a number")
        if not (math.isfinite(target) and 0 <= target <= 1):
            raise ValueError(f"{source}: water_levels.{action}: target {target} is not within 0..1")
        targets[action] = float(target)
    return targets
