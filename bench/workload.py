"""Synthetic behaviour traffic for the benchmark: realistic values, Zipf-popular customers.

Everything is drawn from one seeded :class:`random.Random`, so a run is repeatable.
Values follow the schemas in ``topics.yaml``; every rule can fire:

* ``document-open``: quotes (and other documents), dwell times of which a share is
  over the 120 s high-intent threshold, so three long quote opens in a row happen;
* ``role-login``: procurement, technical and legal logins among other roles;
* ``rush-delivery``: notes naming contract ids (a few malformed, a few without one);
* ``stale-update``: progress updates (a share of them back-dated 49-120 h, i.e. CRM
  entries logged late, still inside the 7-day de-duplication horizon) and
  communications whose outcome is sometimes ``reconsider``.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

HOUR_MS = 3_600_000
BEHAVIOUR_TOPICS = ("document-open", "role-login", "rush-delivery", "stale-update")
SHANGHAI = timezone(timedelta(hours=8))
TEAMS = [(f"team-{region}-{n}", region) for region in ("north", "east", "south", "west") for n in (1, 2, 3)]

Record = tuple[str, str, dict[str, Any]]  # (logical topic, key, JSON value)


class WeightedChoice:
    """Sample an index with the given weights: cumulative sums and ``bisect``."""

    def __init__(self, weights: list[float], rng: random.Random) -> None:
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]
        self.rng = rng

    def __call__(self) -> int:
        return bisect.bisect_right(self.cumulative, self.rng.random() * self.total)


class Zipf(WeightedChoice):
    """Rank ``k`` (0-based) of ``n`` with probability proportional to ``1 / (k + 1) ** s``."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        super().__init__([1.0 / k**s for k in range(1, n + 1)], rng)

    def share_of_top(self, k: int) -> float:
        return self.cumulative[k - 1] / self.total


@dataclass(frozen=True)
class Profile:
    """What traffic looks like; THROUGHPUT is everyday traffic, LATENCY fires more."""

    name: str
    mix: dict[str, float]
    quote_share: float  # of document opens
    long_dwell_share: float  # of quote opens: dwell > 120 s
    roles: dict[str, float]  # role -> weight (case varies on the wire)
    contract_share: float  # rush notes naming a contract
    malformed_contract_share: float  # of those: free text that fails the pattern
    new_contract_share: float  # a contract id not used before (else one of the customer's)
    progress_share: float  # of stale-updates
    backdated_progress_share: float  # of progress updates: logged 49-120 h late
    outcomes: dict[str, float]  # communication outcome -> weight
    #: stale-updates as (back-dated progress, then communication) pairs on a fresh
    #: opportunity, so a reconsider completes the risk pattern at once (event-driven)
    paired_stale_updates: bool = False


THROUGHPUT = Profile(
    name="throughput",
    mix={"document-open": 0.60, "role-login": 0.25, "rush-delivery": 0.05, "stale-update": 0.10},
    quote_share=0.35,
    long_dwell_share=0.6,
    roles={"procurement": 0.2, "technical": 0.25, "legal": 0.1, "sales": 0.2, "finance": 0.15, "viewer": 0.1},
    contract_share=0.8,
    malformed_contract_share=0.1,
    new_contract_share=0.3,
    progress_share=0.5,
    backdated_progress_share=0.3,
    outcomes={"reconsider": 0.3, "positive": 0.4, "no_response": 0.15, "neutral": 0.15},
)

LATENCY = Profile(
    name="latency",
    mix={"document-open": 0.55, "role-login": 0.25, "rush-delivery": 0.10, "stale-update": 0.10},
    quote_share=0.5,
    long_dwell_share=0.75,
    roles={"procurement": 1.0, "technical": 1.0, "legal": 1.0, "sales": 0.5, "viewer": 0.5},
    contract_share=0.8,
    malformed_contract_share=0.0,
    new_contract_share=0.5,
    progress_share=0.5,
    backdated_progress_share=1.0,
    outcomes={"reconsider": 0.5, "positive": 0.5},
    paired_stale_updates=True,
)

_OTHER_DOCUMENTS = ("proposal", "datasheet", "contract", "case-study", "pricing-sheet")
_NOTES = (
    "customer needs delivery before quarter end",
    "rush: site go-live moved up two weeks",
    "expedite shipping, procurement approved",
    "urgent - board wants it live before year end",
    "need it by Friday",
)
_MALFORMED_CONTRACTS = ("contract 7 (see email)", "CT 2026 / 77", "tbd?")


def _iso_shanghai(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, SHANGHAI).isoformat(timespec="milliseconds")


def _iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Customer:
    customer_id: str
    ip: str
    opportunities: int
    team_id: str
    region: str
    rep_id: str
    contracts: list[str] = field(default_factory=list)
    pending_opportunity: str | None = None  # paired stale-updates: progress sent, reply due
    next_opportunity: int = 0


class Workload:
    """Draws behaviour events for ``customers`` Zipf-popular customers."""

    def __init__(self, profile: Profile, customers: int = 10_000, zipf_s: float = 1.1, seed: int = 1) -> None:
        self.profile = profile
        self.rng = rng = random.Random(seed)
        self.zipf = Zipf(customers, zipf_s, rng)
        ids = list(range(customers))
        rng.shuffle(ids)  # popularity rank is not the id order
        self.customers = [self._customer(rank, ids[rank]) for rank in range(customers)]
        self.topics = list(profile.mix)
        self._topic = WeightedChoice(list(profile.mix.values()), rng)
        self._role_names = list(profile.roles)
        self._role = WeightedChoice(list(profile.roles.values()), rng)
        self._outcome_names = list(profile.outcomes)
        self._outcome = WeightedChoice(list(profile.outcomes.values()), rng)
        self._contract_seq = itertools.count(1)

    def _customer(self, rank: int, n: int) -> _Customer:
        team_id, region = TEAMS[n % len(TEAMS)]
        return _Customer(
            customer_id=f"cust-{n:05d}",
            ip=f"{('203.0.113', '198.51.100', '192.0.2')[n % 3]}.{n % 254 + 1}",
            opportunities=1 + n % 3,
            team_id=team_id,
            region=region,
            rep_id=f"rep-{region}-{n % 17:02d}",
        )

    def _event_id(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def directory(self) -> list[Record]:
        """One ``customer-directory`` record per customer."""
        return [
            ("customer-directory", c.customer_id,
             {"customer_id": c.customer_id, "team_id": c.team_id, "region": c.region, "rep_id": c.rep_id})
            for c in self.customers
        ]

    def event(self, ts_ms: int) -> Record:
        """One behaviour event of a Zipf-drawn customer, its event time ``ts_ms``."""
        c = self.customers[self.zipf()]
        topic = self.topics[self._topic()]
        value = getattr(self, "_" + topic.replace("-", "_"))(c, ts_ms)
        return topic, c.customer_id, value

    def _base(self, c: _Customer, ts: Any) -> dict[str, Any]:
        return {"event_id": self._event_id(), "ts": ts, "customer_id": c.customer_id, "ip": c.ip}

    def _document_open(self, c: _Customer, ts: int) -> dict[str, Any]:
        p, rng = self.profile, self.rng
        opp = rng.randrange(c.opportunities)
        if rng.random() < p.quote_share:
            doc_type = rng.choice(("quote", "quote", "Quote"))
            doc_id = f"Q-2026-{c.customer_id[5:]}-{opp}"
            dwell = rng.randint(121, 1800) if rng.random() < p.long_dwell_share else rng.randint(3, 120)
        else:
            doc_type = rng.choice(_OTHER_DOCUMENTS)
            doc_id = f"{doc_type[:2].upper()}-{rng.randrange(10_000):04d}"
            dwell = rng.randint(3, 600)
        value = self._base(c, _iso_shanghai(ts))
        value.update(
            document_type=doc_type, document_id=doc_id, dwell_seconds=dwell,
            opportunity_id=f"opp-{c.customer_id[5:]}-{opp}",
        )
        return value

    def _role_login(self, c: _Customer, ts: int) -> dict[str, Any]:
        role = self._role_names[self._role()]
        value = self._base(c, ts)
        value.update(
            user_id=f"u-{c.customer_id[5:]}-{role[:3]}{self.rng.randrange(4)}",
            role=role.capitalize() if self.rng.random() < 0.3 else role,
        )
        return value

    def _rush_delivery(self, c: _Customer, ts: int) -> dict[str, Any]:
        p, rng = self.profile, self.rng
        value = self._base(c, _iso_utc(ts))
        if rng.random() < p.contract_share:
            if rng.random() < p.malformed_contract_share:
                value["contract_id"] = rng.choice(_MALFORMED_CONTRACTS)
            elif not c.contracts or rng.random() < p.new_contract_share:
                contract = f"CT-2026-{next(self._contract_seq):06d}"
                c.contracts.append(contract)
                value["contract_id"] = contract
            else:
                value["contract_id"] = rng.choice(c.contracts)
        value["note"] = rng.choice(_NOTES)
        return value

    def _stale_update(self, c: _Customer, ts: int) -> dict[str, Any]:
        p, rng = self.profile, self.rng
        value = self._base(c, ts)
        del value["ip"]  # a rep's CRM entry carries no customer IP, but its source and owner
        value.update(source="crm", team_id=c.team_id, rep_id=c.rep_id)
        if p.paired_stale_updates:
            if c.pending_opportunity is None:
                c.pending_opportunity = f"opp-{c.customer_id[5:]}-x{c.next_opportunity}"
                c.next_opportunity += 1
                kind, opp = "progress", c.pending_opportunity
            else:
                kind, opp, c.pending_opportunity = "communication", c.pending_opportunity, None
        else:
            kind = "progress" if rng.random() < p.progress_share else "communication"
            opp = f"opp-{c.customer_id[5:]}-{rng.randrange(c.opportunities)}"
        event_ts = ts
        if kind == "progress" and rng.random() < p.backdated_progress_share:
            event_ts = ts - rng.randint(49 * HOUR_MS, 120 * HOUR_MS)
        value["ts"] = _iso_utc(event_ts)
        value.update(opportunity_id=opp, kind=kind)
        if kind == "communication":
            value["outcome"] = self._outcome_names[self._outcome()]
        return value


def generate(workload: Workload, n: int, end_ms: int, spacing_ms: float = 1.0) -> list[tuple[str, bytes, bytes]]:
    """``n`` events as ``(topic, key bytes, value bytes)``, event times ending at ``end_ms``
    (``spacing_ms`` apart, i.e. on time for traffic of 1/spacing_ms events per ms)."""
    out = []
    for i in range(n):
        topic, key, value = workload.event(int(end_ms - (n - 1 - i) * spacing_ms))
        out.append((topic, key.encode(), orjson.dumps(value)))
    return out
