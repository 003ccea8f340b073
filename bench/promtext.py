"""Just enough of the Prometheus text format to read a worker's ``/metrics``."""

from __future__ import annotations

import math
import re
import urllib.request
from dataclasses import dataclass

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, label_text = series.partition("{")
        samples.append(Sample(name, dict(_LABEL.findall(label_text)), float(value)))
    return samples


def scrape(port: int, timeout_s: float = 2.0) -> list[Sample]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as response:
        return parse(response.read().decode())


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of ``name`` over every series whose labels include ``labels``."""
    return sum(
        s.value for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def by_label(samples: list[Sample], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in samples:
        if s.name == name:
            out[s.labels.get(label, "")] = out.get(s.labels.get(label, ""), 0.0) + s.value
    return out


def buckets(samples: list[Sample], histogram: str, **labels: str) -> list[tuple[float, float]]:
    """Cumulative ``(upper bound, count)`` pairs of a histogram, ascending."""
    rows = [
        (float(s.labels["le"]), s.value) for s in samples
        if s.name == histogram + "_bucket" and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sorted(rows)


def bucket_bound(q: float, cumulative: list[tuple[float, float]]) -> float:
    """Upper bound of the bucket holding rank q·n (``inf`` if past the last finite one)."""
    if not cumulative or cumulative[-1][1] == 0:
        return math.nan
    rank = q * cumulative[-1][1]
    return next(bound for bound, count in cumulative if count >= rank)


def share_at_most(bound: float, cumulative: list[tuple[float, float]]) -> float:
    """Fraction of observations in buckets with upper bound <= ``bound`` (exact at a bound)."""
    if not cumulative or cumulative[-1][1] == 0:
        return math.nan
    at = max((c for b, c in cumulative if b <= bound), default=0.0)
    return at / cumulative[-1][1]
