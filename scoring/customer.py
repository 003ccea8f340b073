"""One customer's complete signal state: de-duplication memory, ownership and the
state of every rule, serialised as one value so that a single changelog record
carries all of it (a crash can then never record an event without its effect)."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from scoring.catalog import DIRECTORY_TOPIC
from scoring.dedup import DEDUP_HORIZON_MS, SeenIds, id_hash
from scoring.deltas import Owner, SignalDelta
from scoring.events import Event
from scoring.legacy_state import upgrade
from scoring.patterns.base import Firing
from scoring.rollup.ledger import CustomerLedger
from scoring.schema import InvalidEvent
from scoring.signal_catalogue import SignalCatalogue

#: 4: msgpack, the de-duplication memory as raw bytes; 3: JSON, each rule's state under its
#: id, the de-duplication memory in base64; 2: JSON, four fixed rules (scoring.legacy_state)
_STATE_VERSION = 4
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode

#: the state changelog's record limit (``max.message.bytes`` of ``customer-signal-state``)
MAX_STATE_BYTES = 8 * 1024 * 1024
#: A customer's capacity: an event that would take its state past one of these is
#: dead-lettered (``customer_over_capacity``) instead, so a hostile upstream cannot grow
#: a state past :data:`MAX_STATE_BYTES` (the changelog write would fail and stop every
#: worker that took the partition); the score window keeps at most
#: :data:`~scoring.rollup.ledger.MAX_ENTRIES` deltas, each rule its own bound
#: (:data:`scoring.patterns.first_per.MAX_VALUES`, :data:`scoring.patterns.silence.MAX_WATCHES`).
#: Each limit depends on one topic's events only, so the verdicts do not depend on how
#: topics interleave (nor on the wall clock). With every id at its longest, a full
#: state of the default catalogue encodes to about 4.1 MB
#: (tests/unit/test_customer_capacity.py builds it).
#: event ids remembered per topic within the de-duplication horizon (16 bytes each)
MAX_REMEMBERED_EVENTS = 50_000


class Outcome(enum.StrEnum):
    """What became of one input event (also a metric label)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    INVALID = "invalid"
    OVER_CAPACITY = "over_capacity"
    #: applying it raised: dead-lettered as ``internal_error`` (:mod:`scoring.bulkhead`)
    FAILED = "failed"


@dataclass(slots=True)
class Applied:
    outcome: Outcome
    deltas: list[SignalDelta] = field(default_factory=list)
    #: when the timed rules' states this event touched fall due (for the deadline index)
    due: list[int] = field(default_factory=list)
    #: why the event was refused (``OVER_CAPACITY``): it goes to dead-letter
    error: InvalidEvent | None = None


@dataclass
class CustomerState:
    """Everything the signal rules remember about one customer."""

    customer_id: str
    #: from ``customer-directory``
    owner: Owner = field(default_factory=Owner)
    #: owner fields carried by the newest behaviour events, used where the directory is silent
    event_owner: Owner = field(default_factory=Owner)
    #: per topic: newest event time seen; that topic's de-duplication horizon trails it
    max_ts: dict[str, int] = field(default_factory=dict)
    #: per topic: the event ids seen (hashed, with event times). Kept per topic (as SPEC's
    #: de-duplication is) so that how Kafka interleaves topics cannot change a verdict;
    #: hashed and packed (16 bytes an event) so a busy customer's value stays far below
    #: Kafka's message size limit.
    seen: dict[str, SeenIds] = field(default_factory=dict)
    #: rule id -> that rule's state for this customer (rules of the bound catalogue)
    rules: dict[str, Any] = field(default_factory=dict)
    ledger: CustomerLedger = field(default_factory=CustomerLedger)
    #: as decoded and not bound to a catalogue yet: rule id -> ``[shape, state JSON]``
    stored: dict[str, list[Any]] = field(default_factory=dict, repr=False)
    _bound: SignalCatalogue | None = field(default=None, repr=False, compare=False)

    @property
    def effective_owner(self) -> Owner:
        """The directory's owner, completed by owner fields seen on events."""
        return self.owner.over(self.event_owner)

    def bind(self, catalogue: SignalCatalogue) -> None:
        """Take the rule states of ``catalogue``'s rules from those stored: a rule whose
        definition changed other than in its points starts afresh; a removed rule's
        state is dropped."""
        if self._bound is catalogue:
            return
        if self._bound is not None:  # another catalogue in the same process: as if stored
            self.stored = self._encode_rules()
        current: dict[str, Any] = {}
        for rule in catalogue.rules:
            kept = self.stored.get(rule.rule_id)
            current[rule.rule_id] = (
                rule.from_json(kept[1]) if kept is not None and kept[0] == rule.shape else rule.new_state()
            )
        self.rules, self.stored, self._bound = current, {}, catalogue

    def apply(self, event: Event, catalogue: SignalCatalogue) -> Applied:
        """Feed one validated event, in arrival order; return its outcome and deltas."""
        topic = event.topic
        if topic == DIRECTORY_TOPIC:
            self.owner = Owner(event.get("team_id"), event.get("region"), event.get("rep_id"))
            return Applied(Outcome.ACCEPTED)
        topic_rules = catalogue.by_topic.get(topic)
        if topic_rules is None:
            raise ValueError(f"not a behaviour topic: {topic}")
        if self._bound is not catalogue:
            self.bind(catalogue)
        seen = self.seen.get(topic)
        if seen is None:
            seen = self.seen[topic] = SeenIds()
        event_hash = id_hash(event.event_id)
        if event_hash in seen:
            return Applied(Outcome.DUPLICATE)
        ts = event.ts
        newest = self.max_ts.get(topic)
        if newest is not None and ts < newest - DEDUP_HORIZON_MS:
            return Applied(Outcome.LATE)
        if (len(seen) >= MAX_REMEMBERED_EVENTS or catalogue.bounded[topic]) and (
            full := self._full(event, seen, catalogue)
        ) is not None:
            return Applied(Outcome.OVER_CAPACITY, error=InvalidEvent("customer_over_capacity", full))
        seen.add(event_hash, ts)
        if newest is None or ts > newest:
            self.max_ts[topic] = ts
            seen.forget_before(ts - DEDUP_HORIZON_MS)
        fields = event.fields
        team_id, region, rep_id = fields.get("team_id"), fields.get("region"), fields.get("rep_id")
        if team_id or region or rep_id:
            known = self.event_owner
            if (team_id and team_id != known.team_id) or (region and region != known.region) or (
                rep_id and rep_id != known.rep_id
            ):
                self.event_owner = Owner(team_id, region, rep_id).over(known)
        applied = Applied(Outcome.ACCEPTED)
        rules = self.rules
        for rule in topic_rules:
            rule_state = rules[rule.rule_id]
            firings = rule.accumulate(rule_state, event)
            if firings:
                applied.deltas += [self._delta(f, event) for f in firings]
            if rule.timed and (due := rule.due_after(rule_state, event)) is not None:
                applied.due.append(due)
        return applied

    def fire_due(self, now: int, catalogue: SignalCatalogue) -> list[SignalDelta]:
        """Fire every timed rule of this customer that is due at ``now``."""
        self.bind(catalogue)
        return [
            self._delta(firing)
            for rule in catalogue.timed
            for firing in rule.fire_due(self.rules[rule.rule_id], now)
        ]

    def due_times(self, catalogue: SignalCatalogue) -> Iterator[int]:
        """When the timed rules' armed states fall due (for the timer's deadline index)."""
        self.bind(catalogue)
        for rule in catalogue.timed:
            yield from rule.due_times(self.rules[rule.rule_id])

    def clear_owner(self) -> None:
        """A directory tombstone: the customer no longer has an owner."""
        self.owner = Owner()

    def _full(self, event: Event, seen: SeenIds, catalogue: SignalCatalogue) -> str | None:
        """What accepting ``event`` would take past the customer's capacity, if anything."""
        if len(seen) >= MAX_REMEMBERED_EVENTS:
            newest = self.max_ts.get(event.topic)
            # a newer event moves the horizon on: the ids it forgets make room (see apply)
            freed = seen.count_before(event.ts - DEDUP_HORIZON_MS) if newest is not None and event.ts > newest else 0
            if len(seen) - freed >= MAX_REMEMBERED_EVENTS:
                return f"{event.topic}: {len(seen)} event ids within the de-duplication horizon"
        for rule in catalogue.bounded[event.topic]:
            if (full := rule.over_capacity(self.rules[rule.rule_id], event)) is not None:
                return full
        return None

    def _delta(self, firing: Firing, event: Event | None = None) -> SignalDelta:
        owner = self.effective_owner
        if event is not None:  # the completing event's own fields win for its delta
            owner = Owner(event.get("team_id"), event.get("region"), event.get("rep_id")).over(owner)
        rule = firing.rule
        return SignalDelta(
            customer_id=self.customer_id,
            signal=rule.rule_id,
            points=rule.points,
            ts=firing.ts,
            evidence=firing.evidence,
            owner=owner,
            rule_version=rule.version,
            opportunity_id=firing.opportunity_id,
        )

    def _encode_rules(self) -> dict[str, list[Any]]:
        if self._bound is None:
            return self.stored
        return {rule.rule_id: [rule.shape, rule.to_json(self.rules[rule.rule_id])] for rule in self._bound.rules}

    def to_bytes(self) -> bytes:
        """Format 4, msgpack: the de-duplication memory as it is packed, copied once
        (base64 in JSON cost 40 times as much for a large state; the value is a quarter
        smaller too)."""
        return _encode(
            {
                "v": _STATE_VERSION,
                "c": self.customer_id,
                "o": [self.owner.team_id, self.owner.region, self.owner.rep_id],
                "eo": [self.event_owner.team_id, self.event_owner.region, self.event_owner.rep_id],
                "l": self.ledger.to_json(),
                "m": self.max_ts,
                "s": {topic: ids.packed() for topic, ids in self.seen.items()},
                "r": self._encode_rules(),
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> CustomerState:
        """Decode a state (format 4, or an earlier JSON one: ``{``, never a msgpack map's
        first byte); its rule states wait for :meth:`bind`, which needs the catalogue."""
        d: Any = upgrade(orjson.loads(raw)) if raw[:1] == b"{" else _decode(raw)
        version = d.get("v") if isinstance(d, dict) else None
        if version != _STATE_VERSION:
            raise ValueError(f"unknown customer state version {version!r}")
        return cls(
            customer_id=d["c"],
            owner=Owner(*d["o"]),
            event_owner=Owner(*d["eo"]),
            ledger=CustomerLedger.from_json(d["l"]),
            max_ts=d["m"],
            seen={topic: SeenIds(packed) for topic, packed in d["s"].items()},
            stored=d["r"],
        )
