"""Customer states stored in earlier formats, upgraded to the current one (format 4).

* Format 3 (JSON): as format 4, with each topic's packed de-duplication memory as base64
  text instead of raw bytes (format 4 is msgpack).
* Format 2 (JSON, before the signal catalogue): the four rules under fixed keys instead
  of each rule's state under its id.

Format 2 states were written by the four built-in rules with SPEC's parameters, which
are the default catalogue's. Their states are filed under the default ids with the
default definitions' shapes, so :meth:`scoring.customer.CustomerState.bind` keeps them
exactly when the running catalogue's rule of that id still has its default definition
(its points may differ), and starts that rule afresh otherwise.
"""

from __future__ import annotations

import base64
from typing import Any

#: the shape (definition hash without points) of each default rule, as of format 3's
#: introduction; tests/unit/test_legacy_state.py holds them against rules.yaml's defaults
DEFAULT_SHAPES = {
    "high_intent": "72283367b1d8",
    "decision_chain": "c2c4eb469f9a",
    "urgency": "826761b5930a",
    "risk": "8d8fe23f9e4b",
}
_RISK_OUTCOME = "reconsider"


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (a decoded JSON state, format 2 or 3) in format 4."""
    if not isinstance(doc, dict) or doc.get("v") not in (2, 3):
        raise ValueError(f"unknown JSON customer state version {doc.get('v') if isinstance(doc, dict) else None!r}")
    if doc["v"] == 2:
        doc = _upgrade_2(doc)
    doc["s"] = {topic: base64.b64decode(text) for topic, text in doc["s"].items()}
    doc["v"] = 4
    return doc


def _upgrade_2(doc: dict[str, Any]) -> dict[str, Any]:
    rules = {
        "high_intent": doc.pop("hi"),
        "decision_chain": [[role, evidence] for role, evidence in doc.pop("dc").items()],
        "urgency": doc.pop("u"),
        "risk": {
            opportunity: [progress, communication, outcome == _RISK_OUTCOME, fired_on]
            for opportunity, (progress, communication, outcome, fired_on) in doc.pop("r").items()
        },
    }
    doc["r"] = {rule_id: [DEFAULT_SHAPES[rule_id], state] for rule_id, state in rules.items()}
    doc["v"] = 3
    return doc
