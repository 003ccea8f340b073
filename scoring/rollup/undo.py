"""The old values of what a team's updates changed, to roll the team back to where the
log began (the bulkhead of :meth:`scoring.rollup.team_rollup.TeamRollup._apply_team`).

A copy of a big team's state for every update cost O(customers + actions); a log costs
O(1) per change. Rows, trace entries and records are replaced, never changed in place,
so their old values need no copy.
"""

from __future__ import annotations

from typing import Any

_ABSENT = object()
_KEYED, _MEMBER, _ATTRIBUTE = range(3)


class UndoLog:
    def __init__(self) -> None:
        self._entries: list[tuple[int, Any, Any, Any]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def keyed(self, target: dict[Any, Any], key: Any) -> None:
        """``target[key]`` (present or not) is about to change."""
        self._entries.append((_KEYED, target, key, target.get(key, _ABSENT)))

    def member(self, target: set[Any], key: Any) -> None:
        """Whether ``key`` is in ``target`` is about to change."""
        self._entries.append((_MEMBER, target, key, key in target))

    def attribute(self, owner: object, name: str) -> None:
        """``owner.name`` is about to change."""
        self._entries.append((_ATTRIBUTE, owner, name, getattr(owner, name)))

    def rollback(self, mark: int = 0) -> None:
        """Undo the changes logged since ``len(self)`` was ``mark``."""
        entries = self._entries
        for kind, target, key, old in reversed(entries[mark:]):
            if kind == _KEYED:
                if old is _ABSENT:
                    target.pop(key, None)
                else:
                    target[key] = old
            elif kind == _MEMBER:
                if old:
                    target.add(key)
                else:
                    target.discard(key)
            else:
                setattr(target, key, old)
        del entries[mark:]
