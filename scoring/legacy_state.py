"""Customer states stored before the signal catalogue (format 2: the four rules under
fixed keys) upgraded to format 3 (each rule's state under its id).

Format 2 states were written by the four built-in rules with SPEC's parameters, which
are the default catalogue's. Their states are filed under the default ids with the
default definitions' shapes, so :meth:`scoring.customer.CustomerState.bind` keeps them
exactly when the running catalogue's rule of that id still has its default definition
(its points may differ), and starts that rule afresh otherwise.
"""

from __future__ import annotations

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
    """``doc`` (a decoded state) in the current format; other versions pass unchanged."""
    if doc.get("v") != 2:
        return doc
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
