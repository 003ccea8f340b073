"""Roll-up parameters: weights, bands, windows and the heat map schedule (SPEC defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from scoring.config import DAY_MS, HOUR_MS


@dataclass(frozen=True)
class RollupConfig:
    weight_action_completion: float = 0.40
    weight_signal_strength: float = 0.35
    weight_fulfilment: float = 0.25
    #: a score below this is red; below ``yellow_below`` yellow; else green
    red_below: float = 70.0
    yellow_below: float = 85.0
    #: net points that make a customer's signal strength 100
    strength_full_points: float = 26.0
    score_window_ms: int = 30 * DAY_MS
    activity_window_ms: int = 30 * DAY_MS
    action_window_ms: int = 30 * DAY_MS
    fulfilment_periods: int = 6
    alert_points: int = 18
    alert_window_ms: int = 7 * DAY_MS
    #: at most one alert per customer within this long
    alert_cooldown_ms: int = 7 * DAY_MS
    #: an alert lists at most this many contributing deltas (the newest): a customer with
    #: thousands of deltas in its window would otherwise pass Kafka's record size limit
    alert_max_contributing: int = 500
    #: a customer's activity is re-reported to its team at most this often
    activity_report_ms: int = HOUR_MS
    #: how long a team keeps its deltas for traceability lists
    trace_keep_ms: int = 35 * DAY_MS
    #: a ``credibility-heatmap`` record's value at most (the topic's value budget, half its
    #: 8 MiB ``max.message.bytes``); a larger region is split in parts
    heatmap_record_bytes: int = 4 * 1024 * 1024
    heatmap_weekday: int = 4  # Monday is 0: Friday
    heatmap_hour: int = 17
    heatmap_minute: int = 0
    time_zone: str = "Asia/Shanghai"
    #: action kind -> monthly water-level target, a share in 0..1 (``water_levels`` of
    #: the signal catalogue; :func:`scoring.replay.replay` takes them from its catalogue)
    water_targets: dict[str, float] = field(default_factory=dict, hash=False)
