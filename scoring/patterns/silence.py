"""``silence``: per value of ``per``, more than ``after`` since the latest ``clock``
event while the latest ``while`` event matches ``while``. (``risk``.)

Which events are ``while`` events: those matching ``while`` on the fields it shares
with ``clock`` (``kind: communication`` by the default file), or, when they share
none, every event that is not a ``clock`` event.

Each watch is a state machine whose only clock input is ``now``: the live worker
passes the wall clock from a timer, replay passes event time, and both give the same
trigger time because it is computed from the evidence alone: the later of the latest
clock event + ``after`` and the ``while`` event's time. It fires once per episode;
the next ``clock`` event re-arms it. A customer keeps at most :data:`MAX_WATCHES`
watches per rule; a new one beyond that replaces the watch whose newest event is
oldest (a function of the topic's event sequence alone), so a long-lived customer's
events are never refused for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from scoring.events import Event, Evidence
from scoring.patterns.base import Firing, Pattern
from scoring.patterns.spec import Condition, Spec

MAX_WATCHES = 250


@dataclass
class Watch:
    """What the rule knows of one value of ``per``."""

    clock: Evidence | None = None
    latest: Evidence | None = None
    #: whether ``latest`` matches ``while``
    holds: bool = False
    #: event id of the clock event whose episode already fired
    fired_on: str | None = None


@dataclass
class SilenceState:
    watches: dict[str, Watch] = field(default_factory=dict)


class Silence(Pattern):
    timed = True

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.per = spec.field("per")
        self.is_clock, clock = spec.condition("clock")
        self.holds, while_ = spec.condition("while")
        self.after_ms = spec.duration("after")
        shared = {name: while_[name] for name in while_ if name in clock}
        self.is_while: Condition = _selector(shared, spec) if shared else (lambda fields: not self.is_clock(fields))

    def new_state(self) -> SilenceState:
        return SilenceState()

    def accumulate(self, state: SilenceState, event: Event) -> list[Firing]:
        fields = event.fields
        key = fields.get(self.per)
        is_clock = self.is_clock(fields)
        if key is None or not (is_clock or self.is_while(fields)):
            return []
        key = str(key)
        watches = state.watches
        watch = watches.get(key)
        if watch is None:
            if len(watches) >= MAX_WATCHES:
                del watches[min(watches, key=lambda k: (_newest(watches[k]), k))]
            watch = watches[key] = Watch()
        # the silence that this event ends is judged before the event counts
        firings = self._fire_if_due(key, watch, event.ts)
        if is_clock:
            if watch.clock is None or event.ts >= watch.clock.ts:
                watch.clock = event.evidence
        elif watch.latest is None or event.ts >= watch.latest.ts:
            watch.latest = event.evidence
            watch.holds = self.holds(fields)
        return firings + self._fire_if_due(key, watch, event.ts)

    def fire_due(self, state: SilenceState, now: int) -> list[Firing]:
        return [f for key, watch in sorted(state.watches.items()) for f in self._fire_if_due(key, watch, now)]

    def due_times(self, state: SilenceState) -> Iterator[int]:
        for watch in state.watches.values():
            if (due := self.due_at(watch)) is not None:
                yield due

    def due_after(self, state: SilenceState, event: Event) -> int | None:
        watch = state.watches.get(str(event.fields.get(self.per)))
        return None if watch is None else self.due_at(watch)

    def trigger_ts(self, watch: Watch) -> int | None:
        """When the condition became (or will become) true; ``None`` while disarmed."""
        if watch.clock is None or watch.latest is None or not watch.holds or watch.fired_on == watch.clock.event_id:
            return None
        return max(watch.clock.ts + self.after_ms, watch.latest.ts)

    def due_at(self, watch: Watch) -> int | None:
        """The earliest ``now`` at which the rule fires ("more than" ``after``: one ms past)."""
        trigger = self.trigger_ts(watch)
        if trigger is None:
            return None
        assert watch.clock is not None and watch.latest is not None
        return max(watch.clock.ts + self.after_ms + 1, watch.latest.ts)

    def _fire_if_due(self, key: str, watch: Watch, now: int) -> list[Firing]:
        due = self.due_at(watch)
        if due is None or now < due:
            return []
        trigger = self.trigger_ts(watch)
        assert trigger is not None and watch.clock is not None and watch.latest is not None
        watch.fired_on = watch.clock.event_id
        opportunity = key if self.per == "opportunity_id" else None
        return [Firing(self, trigger, (watch.clock, watch.latest), opportunity)]

    def to_json(self, state: SilenceState) -> dict[str, Any]:
        return {
            key: [w.clock.to_list() if w.clock else None, w.latest.to_list() if w.latest else None, w.holds, w.fired_on]
            for key, w in state.watches.items()
        }

    def from_json(self, data: dict[str, Any]) -> SilenceState:
        return SilenceState({
            key: Watch(
                Evidence.from_list(clock) if clock else None,
                Evidence.from_list(latest) if latest else None,
                holds,
                fired_on,
            )
            for key, (clock, latest, holds, fired_on) in data.items()
        })  # fmt: skip


def _newest(watch: Watch) -> int:
    return max((e.ts for e in (watch.clock, watch.latest) if e is not None), default=0)


def _selector(entries: dict[str, Any], spec: Spec) -> Condition:
    """A condition testing the ``while`` entries on the fields shared with ``clock`` alone."""
    condition, _ = Spec({"while": entries}, spec.rule_id, spec.schema).condition("while")
    return condition
