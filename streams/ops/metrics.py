"""Prometheus metrics, served on the worker's web port at ``/metrics``.

Label sets are bounded: topics, outcomes, signals, reasons, partitions, teams;
never customer or event ids.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

EVENTS = Counter(
    "credence_input_events_total",
    "Input records by topic and outcome (accepted, invalid, duplicate, late, over_capacity, failed).",
    ["topic", "outcome"],
)
DELTAS = Counter("credence_signal_deltas_total", "Signal deltas emitted, by signal.", ["signal"])
DEAD_LETTERS = Counter(
    "credence_dead_letters_total", "Records sent to dead-letter, by reason.", ["topic", "reason"]
)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
DELTA_LATENCY = Histogram(
    "credence_event_to_delta_seconds",
    "From the completing event to its delta's send, by clock: 'ingest' (broker "
    "timestamp of the record) or 'event' (the event's own ts).",
    ["clock"],
    buckets=_LATENCY_BUCKETS,
)
BATCH_SECONDS = Histogram(
    "credence_batch_processing_seconds",
    "Time to process one batch of input records, including delta acks and state writes.",
    buckets=_LATENCY_BUCKETS,
)
DIRECTORY_WAITS = Counter(
    "credence_directory_waits_total",
    "Partitions whose fetched records waited one more fetch for a new customer's directory record.",
)
ALERTS = Counter(
    "credence_procurement_alerts_total", "Procurement acceleration alerts raised."
)
TEAM_SCORE = Gauge(
    "credence_team_credibility_score",
    "A team's forecast credibility score (0-100), as last published.",
    ["team_id", "region"],
)
TEAM_BAND = Gauge(
    "credence_team_credibility_band",
    "1 for the band a team is in (red, yellow, green), 0 for the others.",
    ["team_id", "band"],
)
WATER_LEVEL = Gauge(
    "credence_action_water_level",
    "The current month's action water level (0-100: share of the items due this month and "
    "decided so far that were done by their due time), per team and action kind; NaN "
    "while none is decided.",
    ["team_id", "action"],
)
WATER_TARGET = Gauge(
    "credence_action_water_target",
    "The water-level target (0-100) of an action kind, for each team that has its items.",
    ["team_id", "action"],
)
WATER_CLOSED_BELOW = Gauge(
    "credence_action_water_closed_below",
    "1 if the team's latest closed month of the action kind was below its water-level "
    "target, else 0.",
    ["team_id", "action"],
)
DIAGNOSES = Counter(
    "credence_process_diagnoses_total",
    "Process diagnoses published (an action kind below target two closed months running), "
    "by action kind.",
    ["action"],
)
HEATMAPS = Counter(
    "credence_heatmap_snapshots_total", "Weekly heat map records published (one per region)."
)
RISK_INDEX_SIZE = Gauge(
    "credence_risk_deadlines", "Armed risk deadlines held in this worker's timer index."
)
RESTORE_REMAINING = Gauge(
    "credence_restore_remaining_records",
    "Changelog records this worker still reads to restore its tables before it "
    "processes input again (0 when not restoring).",
)
CONSUMER_LAG = Gauge(
    "credence_consumer_lag_records",
    "Records between the committed position and the end of the partition.",
    ["topic", "partition"],
)


def exposition() -> tuple[bytes, str]:
    """The text exposition and its content type (aiohttp wants the charset apart)."""
    return generate_latest(), CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")
