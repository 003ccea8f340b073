"""A team's ``sales-action`` items: identity and row layout, shared by the 30-day action
completion (:mod:`scoring.rollup.team`) and the monthly water levels."""

from __future__ import annotations

from typing import Any

import orjson

#: an item row: ``[ts, due_ts, done_ts, action, owner, opportunity_id, action_id]``
TS, DUE, DONE, ACTION, OWNER, OPPORTUNITY, ACTION_ID = range(7)


def item_key(update: dict[str, Any]) -> str:
    """SPEC's item identity: ``action_id`` when present, else (opportunity, action).
    A one-element and a two-element JSON array cannot collide."""
    if update.get("action_id"):
        return orjson.dumps([update["action_id"]]).decode()
    return orjson.dumps([update["opportunity_id"], update["action"]]).decode()


def item_row(update: dict[str, Any]) -> list[Any]:
    return [update["ts"], update["due_ts"], update.get("done_ts"), update["action"],
            update.get("owner"), update["opportunity_id"], update.get("action_id")]  # fmt: skip


def upgraded(key: str, row: list[Any]) -> list[Any]:
    """A row as stored before water levels (``[ts, due_ts, done_ts]`` under the key
    ``[opportunity_id, action]``), completed: stored team state keeps loading."""
    if len(row) > DONE + 1:
        return row
    opportunity, action = orjson.loads(key)
    return [*row, action, None, opportunity, None]


def on_time(row: list[Any]) -> bool:
    """Done by its due time."""
    return row[DONE] is not None and row[DONE] <= row[DUE]
