"""One customer's complete signal state: de-duplication memory, ownership and the
state of every rule, serialised as one value so that a single changelog record
carries all of it (a crash can then never record an event without its effect)."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from scoring.catalog import DIRECTORY_TOPIC, DOCUMENT_OPEN, ROLE_LOGIN, RUSH_DELIVERY, STALE_UPDATE
from scoring.config import RuleConfig
from scoring.dedup import SeenIds, id_hash
from scoring.deltas import Owner, SignalDelta
from scoring.events import Event
from scoring.rollup.ledger import CustomerLedger
from scoring.rules import Firing
from scoring.rules.decision_chain import DecisionChain
from scoring.rules.high_intent import HighIntent
from scoring.rules.risk import OpportunityWatch
from scoring.rules.urgency import Urgency
from scoring.schema import InvalidEvent

_STATE_VERSION = 2  # 2: packed, hashed de-duplication memory

#: the state changelog's record limit (``max.message.bytes`` of ``customer-signal-state``)
MAX_STATE_BYTES = 8 * 1024 * 1024
#: A customer's capacity: an event that would take its state past one of these is
#: dead-lettered (``customer_over_capacity``) instead, so a hostile upstream cannot grow
#: a state past :data:`MAX_STATE_BYTES` (the changelog write would fail and stop every
#: worker that took the partition); the score window keeps at most
#: :data:`~scoring.rollup.ledger.MAX_ENTRIES` deltas. Each limit depends on one topic's
#: events only, so the verdicts do not depend on how topics interleave (nor on the
#: wall clock). With every id at its longest, a full state encodes to about 6.3 MB
#: (tests/unit/test_customer_capacity.py builds it).
#: event ids remembered per topic within the de-duplication horizon (16 bytes each)
MAX_REMEMBERED_EVENTS = 50_000
#: opportunities watched by the risk rule; a new one beyond this replaces the watch whose
#: newest update is oldest (a function of the ``stale-update`` sequence alone), so a
#: long-lived customer's events are never refused for it
MAX_OPPORTUNITIES = 250
#: contracts that fired the urgency rule (kept for the customer's lifetime)
MAX_CONTRACTS = 1_000


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
    high_intent: HighIntent = field(default_factory=HighIntent)
    decision_chain: DecisionChain = field(default_factory=DecisionChain)
    urgency: Urgency = field(default_factory=Urgency)
    opportunities: dict[str, OpportunityWatch] = field(default_factory=dict)
    ledger: CustomerLedger = field(default_factory=CustomerLedger)

    @property
    def effective_owner(self) -> Owner:
        """The directory's owner, completed by owner fields seen on events."""
        return self.owner.over(self.event_owner)

    def apply(self, event: Event, cfg: RuleConfig) -> Applied:
        """Feed one validated event, in arrival order; return its outcome and deltas."""
        if event.topic == DIRECTORY_TOPIC:
            self.owner = Owner(event.get("team_id"), event.get("region"), event.get("rep_id"))
            return Applied(Outcome.ACCEPTED)
        seen = self.seen.get(event.topic)
        if seen is None:
            seen = self.seen[event.topic] = SeenIds()
        event_hash = id_hash(event.event_id)
        if event_hash in seen:
            return Applied(Outcome.DUPLICATE)
        newest = self.max_ts.get(event.topic)
        if newest is not None and event.ts < newest - cfg.dedup_horizon_ms:
            return Applied(Outcome.LATE)
        if (full := self._full(event, seen, cfg)) is not None:
            return Applied(Outcome.OVER_CAPACITY, error=InvalidEvent("customer_over_capacity", full))
        self._remember(event.topic, seen, event_hash, event.ts, cfg)
        fields = event.fields
        team_id, region, rep_id = fields.get("team_id"), fields.get("region"), fields.get("rep_id")
        if team_id or region or rep_id:
            self.event_owner = Owner(team_id, region, rep_id).over(self.event_owner)
        return Applied(Outcome.ACCEPTED, self._run_rules(event, cfg))

    def fire_due(self, now: int, cfg: RuleConfig) -> list[SignalDelta]:
        """Fire every risk rule of this customer that is due at ``now``."""
        firings = [
            firing
            for opp_id, watch in sorted(self.opportunities.items())
            if (firing := watch.fire_if_due(opp_id, now, cfg)) is not None
        ]
        return [self._delta(f, cfg) for f in firings]

    def risk_due_times(self, cfg: RuleConfig) -> Iterator[int]:
        """When each armed opportunity falls due (for the timer's deadline index)."""
        for watch in self.opportunities.values():
            if (due := watch.due_at(cfg)) is not None:
                yield due

    def clear_owner(self) -> None:
        """A directory tombstone: the customer no longer has an owner."""
        self.owner = Owner()

    def _full(self, event: Event, seen: SeenIds, cfg: RuleConfig) -> str | None:
        """What accepting ``event`` would take past the customer's capacity, if anything."""
        if len(seen) >= MAX_REMEMBERED_EVENTS:
            newest = self.max_ts.get(event.topic)
            # a newer event moves the horizon on: the ids it forgets make room (see _remember)
            freed = seen.count_before(event.ts - cfg.dedup_horizon_ms) if newest is not None and event.ts > newest else 0
            if len(seen) - freed >= MAX_REMEMBERED_EVENTS:
                return f"{event.topic}: {len(seen)} event ids within the de-duplication horizon"
        if event.topic == RUSH_DELIVERY and len(self.urgency.fired) >= MAX_CONTRACTS and self.urgency.is_new(event, cfg):
            return f"{len(self.urgency.fired)} contracts fired"
        return None

    def _remember(
        self, topic: str, seen: SeenIds, event_hash: int, ts: int, cfg: RuleConfig
    ) -> None:
        seen.add(event_hash, ts)
        if ts > self.max_ts.get(topic, ts - 1):
            self.max_ts[topic] = ts
            seen.forget_before(ts - cfg.dedup_horizon_ms)

    def _run_rules(self, event: Event, cfg: RuleConfig) -> list[SignalDelta]:
        firings: list[Firing | None]
        if event.topic == DOCUMENT_OPEN:
            firings = [self.high_intent.accumulate(event, cfg)]
        elif event.topic == ROLE_LOGIN:
            firings = [self.decision_chain.accumulate(event, cfg)]
        elif event.topic == RUSH_DELIVERY:
            firings = [self.urgency.accumulate(event, cfg)]
        elif event.topic == STALE_UPDATE:
            opp_id = event.get("opportunity_id")
            if opp_id not in self.opportunities and len(self.opportunities) >= MAX_OPPORTUNITIES:
                del self.opportunities[min(self.opportunities, key=self._staleness_order)]
            watch = self.opportunities.setdefault(opp_id, OpportunityWatch())
            # the staleness that this update ends is judged before the update counts
            before = watch.fire_if_due(opp_id, event.ts, cfg)
            watch.apply(event)
            firings = [before, watch.fire_if_due(opp_id, event.ts, cfg)]
        else:
            raise ValueError(f"not a behaviour topic: {event.topic}")
        return [self._delta(f, cfg, event) for f in firings if f is not None]

    def _staleness_order(self, opportunity_id: str) -> tuple[int, str]:
        """Oldest newest update first: the watch a new opportunity replaces when full."""
        watch = self.opportunities[opportunity_id]
        newest = max((e.ts for e in (watch.progress, watch.communication) if e is not None), default=0)
        return newest, opportunity_id

    def _delta(self, firing: Firing, cfg: RuleConfig, event: Event | None = None) -> SignalDelta:
        owner = self.effective_owner
        if event is not None:  # the completing event's own fields win for its delta
            owner = Owner(event.get("team_id"), event.get("region"), event.get("rep_id")).over(owner)
        return SignalDelta(
            customer_id=self.customer_id,
            signal=firing.signal,
            points=firing.points,
            ts=firing.ts,
            evidence=firing.evidence,
            owner=owner,
            rule_version=cfg.rule_version,
            opportunity_id=firing.opportunity_id,
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": _STATE_VERSION,
                "c": self.customer_id,
                "o": [self.owner.team_id, self.owner.region, self.owner.rep_id],
                "eo": [self.event_owner.team_id, self.event_owner.region, self.event_owner.rep_id],
                "l": self.ledger.to_json(),
                "m": self.max_ts,
                "s": {topic: ids.to_text() for topic, ids in self.seen.items()},
                "hi": self.high_intent.to_json(),
                "dc": self.decision_chain.to_json(),
                "u": self.urgency.to_json(),
                "r": {k: w.to_json() for k, w in self.opportunities.items()},
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> CustomerState:
        d: dict[str, Any] = orjson.loads(raw)
        if d.get("v") != _STATE_VERSION:
            raise ValueError(f"unknown customer state version {d.get('v')!r}")
        return cls(
            customer_id=d["c"],
            owner=Owner(*d["o"]),
            event_owner=Owner(*d["eo"]),
            ledger=CustomerLedger.from_json(d["l"]),
            max_ts=d["m"],
            seen={topic: SeenIds.from_text(text) for topic, text in d["s"].items()},
            high_intent=HighIntent.from_json(d["hi"]),
            decision_chain=DecisionChain.from_json(d["dc"]),
            urgency=Urgency.from_json(d["u"]),
            opportunities={k: OpportunityWatch.from_json(w) for k, w in d["r"].items()},
        )

