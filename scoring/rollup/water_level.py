"""Action water levels: for a team and an action kind, the share of the ``sales-action``
items due in a calendar month (configured time zone) that were done by their due time.

A team's items live in :attr:`scoring.rollup.team.TeamState.actions` (the 30-day action
completion reads the same rows). :class:`WaterBook` keeps them grouped by action kind and
due month, publishes a month's ``action-water-levels`` record when it changes, and a
``process-diagnosis`` when two consecutive closed months are below their target
(:mod:`scoring.rollup.diagnosis`).

Choices SPEC leaves open (docs/contract.md):

* an item is *missed* once the team's clock is past its due time without it done on
  time; until then it is *open*. A month's ``level`` is on time / (on time + missed)
  × 100, so an open month reads the items decided so far; a closed (``final``) month has
  no open item, and its level is on time / due. ``null`` when nothing is decided.
* ``below`` compares the unrounded share with the target (exactly at target is not
  below); ``target`` is published in the level's unit (the rules file's 0.95 is 95.0).
* months kept: the month of the team's clock and the :data:`KEPT_MONTHS` − 1 before it,
  every month from a kind's first item on (a month with nothing due reads ``null``),
  and later months that have items due.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import pairwise
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from scoring.catalog import ACTION_WATER_LEVELS, PROCESS_DIAGNOSIS
from scoring.rollup.action_items import ACTION, DUE, on_time
from scoring.rollup.config import RollupConfig
from scoring.rollup.diagnosis import diagnose
from scoring.rollup.records import Output
from scoring.timeutil import format_ts

#: months a team keeps: the month of its clock and the 12 before it
KEPT_MONTHS = 13


#: per time zone, the month last asked for: ``(start ms, end ms, "YYYY-MM")``
_LAST_MONTH: dict[str, tuple[int, int, str]] = {}


def month_of(ms: int, zone: str) -> str:
    """``YYYY-MM`` of the calendar month ``ms`` falls in, in ``zone``. Every team update
    asks for its clock's month: the month last asked for is answered without a time
    zone conversion."""
    held = _LAST_MONTH.get(zone)
    if held is not None and held[0] <= ms < held[1]:
        return held[2]
    local = datetime.fromtimestamp(ms // 1000, ZoneInfo(zone))
    month = f"{local.year:04d}-{local.month:02d}"
    _LAST_MONTH[zone] = (month_end(shift(month, -1), zone), month_end(month, zone), month)
    return month


def shift(month: str, months: int) -> str:
    """The month ``months`` after (negative: before) ``month``."""
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@lru_cache(maxsize=1024)
def month_end(month: str, zone: str) -> int:
    """Epoch ms at which ``month`` ends in ``zone`` (the next month's first instant)."""
    following = shift(month, 1)
    return int(datetime(int(following[:4]), int(following[5:7]), 1, tzinfo=ZoneInfo(zone)).timestamp()) * 1000


class TeamState(Protocol):
    """What the water book reads of its team (:class:`scoring.rollup.team.TeamState`)."""

    team_id: str
    clock: int
    #: item identity -> row (:mod:`scoring.rollup.action_items`)
    actions: dict[str, list[Any]]

    def region(self) -> str | None: ...

    def touch(self, kind: str, key: str) -> None:
        """The piece ``kind``/``key`` changed: the team store writes it."""

    def drop(self, kind: str, key: str) -> None:
        """The piece ``kind``/``key`` is gone: the team store deletes it."""

    def before_change(self, target: dict[str, Any], key: str) -> None:
        """``target[key]`` is about to change (a rollback may restore it)."""


@dataclass
class _Tally:
    """One kind's items due in one month; ``version`` counts changes to them."""

    keys: set[str] = field(default_factory=set)
    on_time: int = 0
    version: int = 0


@dataclass
class WaterBook:
    """A team's monthly water levels and diagnoses, as last published."""

    #: ``action|YYYY-MM`` -> the ``action-water-levels`` value last published
    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``action|YYYY-MM`` of a pair's later month -> the ``process-diagnosis`` value published
    diagnoses: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (action, month) -> its items, built from the team's items when first needed
    _tallies: dict[tuple[str, str], _Tally] | None = field(default=None, compare=False, repr=False)
    #: (action, later month) -> what a pair's diagnosis was last computed from
    _checked: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict, compare=False, repr=False)

    def forget_aggregates(self) -> None:
        """After a rollback: rebuilt from the team's items when next needed."""
        self._tallies = None
        self._checked = {}

    def item_changed(self, key: str, old: list[Any] | None, new: list[Any] | None, zone: str) -> None:
        if self._tallies is None:
            return
        for row, sign in ((old, -1), (new, 1)):
            if row is None:
                continue
            tally = self._tallies.setdefault((row[ACTION], month_of(row[DUE], zone)), _Tally())
            (tally.keys.discard if sign < 0 else tally.keys.add)(key)
            tally.on_time += sign * on_time(row)
            tally.version += 1

    def publish(
        self, state: TeamState, cfg: RollupConfig, diagnose: bool = True, clock: int | None = None
    ) -> list[Output]:
        """The water levels that changed since last published, then (``diagnose``) the
        diagnoses due, as of the team's clock or the later ``clock``."""
        zone = cfg.time_zone
        clock = state.clock if clock is None else max(state.clock, clock)
        tallies = self._tallies_of(state.actions, zone)
        region = state.region()
        outputs: list[Output] = []
        by_action: dict[str, list[dict[str, Any]]] = {}
        for action, month in self._months(clock, zone):
            record = self._level(state, action, month, tallies.get((action, month)), region, cfg, clock)
            by_action.setdefault(action, []).append(record)
            key = f"{action}|{month}"
            held = self.published.get(key)
            if held is None or _comparable(held) != _comparable(record):
                state.before_change(self.published, key)
                self.published[key] = record
                state.touch("w", key)
                outputs.append(Output(ACTION_WATER_LEVELS, f"{state.team_id}|{key}", record))
        for action, records in by_action.items() if diagnose else ():
            outputs += self._diagnose(state, action, records, tallies, region, cfg, clock)
        return outputs

    def forget_before(self, clock: int, state: TeamState, zone: str) -> None:
        """Drop the months before the kept ones."""
        first = shift(month_of(clock, zone), 1 - KEPT_MONTHS)
        if self._tallies is not None:
            for old in [k for k in self._tallies if k[1] < first]:
                del self._tallies[old]
        for kind, held in (("w", self.published), ("d", self.diagnoses)):
            for key in [k for k in held if k.rpartition("|")[2] < first]:
                state.before_change(held, key)
                del held[key]
                state.drop(kind, key)

    def _tallies_of(self, items: dict[str, list[Any]], zone: str) -> dict[tuple[str, str], _Tally]:
        if self._tallies is None:
            self._tallies = {}
            for key, row in items.items():
                self.item_changed(key, None, row, zone)
        return self._tallies

    def _months(self, clock: int, zone: str) -> Iterator[tuple[str, str]]:
        """(action, month) of every month kept, ordered by action then month."""
        assert self._tallies is not None
        current = month_of(clock, zone)
        first_kept = shift(current, 1 - KEPT_MONTHS)
        months: dict[str, set[str]] = {}
        for (action, month), tally in self._tallies.items():
            if tally.keys and month >= first_kept:
                months.setdefault(action, set()).add(month)
        for action in sorted(months):
            held = months[action]
            month = min(held)
            while month <= current:  # the gaps up to the clock's month: nothing due
                held.add(month)
                month = shift(month, 1)
            yield from ((action, m) for m in sorted(held))

    def _level(
        self, state: TeamState, action: str, month: str, tally: _Tally | None, region: str | None,
        cfg: RollupConfig, clock: int,
    ) -> dict[str, Any]:
        final = clock >= month_end(month, cfg.time_zone)
        due = len(tally.keys) if tally else 0
        punctual = tally.on_time if tally else 0
        if final or tally is None:
            missed = due - punctual
        else:
            rows = (state.actions[k] for k in tally.keys)
            missed = sum(1 for r in rows if not on_time(r) and r[DUE] < clock)
        decided = punctual + missed
        share = punctual / decided if decided else None
        target = cfg.water_targets.get(action)
        return {
            "team_id": state.team_id,
            "region": region,
            "action": action,
            "month": month,
            "due": due,
            "on_time": punctual,
            "missed": missed,
            "level": None if share is None else round(share * 100, 2),
            "target": None if target is None else round(target * 100, 2),
            "below": share is not None and target is not None and share < target,
            "final": final,
            "as_of": format_ts(clock),
        }

    def _diagnose(
        self, state: TeamState, action: str, records: list[dict[str, Any]],
        tallies: dict[tuple[str, str], _Tally], region: str | None, cfg: RollupConfig, clock: int,
    ) -> list[Output]:
        """A diagnosis per pair of consecutive closed months below target, published
        when first found and again if a late report changes it."""
        outputs: list[Output] = []
        for first, second in pairwise(records):
            if not (first["final"] and second["final"] and first["below"] and second["below"]):
                continue
            pair = [tallies[(action, r["month"])] for r in (first, second)]
            basis = (pair[0].version, pair[1].version, region, second["target"])
            if self._checked.get((action, second["month"])) == basis:
                continue
            self._checked[(action, second["month"])] = basis
            missed = [
                (r["month"], key, state.actions[key])
                for r, tally in zip((first, second), pair, strict=True)
                for key in sorted(tally.keys) if not on_time(state.actions[key])
            ]
            record = diagnose(state.team_id, region, action, second["target"], [first, second], missed, clock)
            key = f"{action}|{second['month']}"
            held = self.diagnoses.get(key)
            if held is None or _comparable(held) != _comparable(record):
                state.before_change(self.diagnoses, key)
                self.diagnoses[key] = record
                state.touch("d", key)
                outputs.append(Output(PROCESS_DIAGNOSIS, state.team_id, record))
        return outputs

    def latest_diagnosis(self) -> dict[str, Any] | None:
        """The diagnosis of the latest pair of months (ties: by action)."""
        if not self.diagnoses:
            return None
        latest = max(self.diagnoses, key=lambda k: (k.rpartition("|")[2], k))
        return self.diagnoses[latest]


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "as_of"}
