"""Procurement acceleration alerts of a customer's ledger (:mod:`.ledger`): the
canonical alerts of its window of deltas, the records that raise and retract them, and
which alerts stand."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from scoring.catalog import ALERTS
from scoring.deltas import Owner, SignalDelta
from scoring.rollup.config import RollupConfig
from scoring.rollup.records import UNASSIGNED, Output, stable_id
from scoring.timeutil import format_ts

#: a ledger entry's (``[delta_id, signal, points, ts]``) event time
entry_ts = itemgetter(3)
#: an alert's (``[end ts, alert_id]``) window end
alert_end = itemgetter(0)


def team_of(owner: Owner) -> str:
    return owner.team_id or UNASSIGNED


def update_alerts(
    entries: list[list[Any]], old: list[list[Any]], delta: SignalDelta, open_from: int, cfg: RollupConfig
) -> tuple[list[list[Any]], list[Output]]:
    """A ledger's alerts ``old`` (``[end ts, alert_id]``) brought in line with the
    canonical ones after ``delta`` was counted in its ``entries``; and the records that
    raise or retract alerts. ``open_from``: the first window end whose alert may still
    change.

    Canonical alerts are a function of the set of deltas: window ends (delta times)
    are scanned in time order, the first whose 7-day window (inclusive) nets the
    threshold alerts, the next alert needs an end at least the cool-down later. A
    delta can change only alerts at window ends from its own time on, so the scan
    starts there and stops once its windows no longer hold the delta and the chain
    of alerts is back on the stored one. Alerts that stop being canonical are
    retracted; an in-order delta costs a bisect, plus its own window when it may alert.
    """
    span, cool = cfg.alert_window_ms, cfg.alert_cooldown_ms
    start = max(delta.ts, open_from)
    if start > delta.ts + span:  # trimmed, or its windows are final
        return old, []
    split = bisect_left(old, start, key=alert_end)
    prev = prev_old = old[split - 1][0] if split else None
    k = split
    new: list[list[Any]] = []
    raised: list[Output] = []
    lo = hi = bisect_left(entries, start - span, key=entry_ts)  # the window is entries[lo:hi]
    net = 0
    i = bisect_left(entries, start, key=entry_ts)
    while i < len(entries):
        end = entries[i][3]
        while k < len(old) and old[k][0] < end:
            prev_old = old[k][0]
            k += 1
        if end - span > delta.ts and prev == prev_old:  # the rest is as stored
            new += old[k:]
            break
        if prev is not None and end < prev + cool:
            i = bisect_left(entries, prev + cool, lo=i, key=entry_ts)
            continue
        i = bisect_right(entries, end, lo=i, key=entry_ts)
        for entry in entries[hi:i]:
            net += entry[2]
        hi = i
        while entries[lo][3] < end - span:
            net -= entries[lo][2]
            lo += 1
        if net >= cfg.alert_points:
            alert = _alert(delta, entries[lo:hi], net, end, cfg)
            new.append([end, alert.value["alert_id"]])
            raised.append(alert)
            prev = end
    new_ids = {alert_id for _, alert_id in new}
    old_ids = {alert_id for _, alert_id in old[split:]}
    return old[:split] + new, [
        _retraction(delta, end, alert_id)
        for end, alert_id in old[split:]
        if alert_id not in new_ids
    ] + [alert for alert in raised if alert.value["alert_id"] not in old_ids]

def _retraction(delta: SignalDelta, end: int, alert_id: str) -> Output:
    return Output(
        ALERTS,
        delta.customer_id,
        {
            "alert_id": alert_id,
            "customer_id": delta.customer_id,
            "team_id": team_of(delta.owner),
            "region": delta.owner.region,
            "rep_id": delta.owner.rep_id,
            "retracted": True,
            "retracted_by": delta.delta_id,
            "ts": format_ts(end),
        },
    )

def _alert(delta: SignalDelta, window: list[list[Any]], net: int, at: int, cfg: RollupConfig) -> Output:
    # ``window`` is a run of ``entries``, so already in (ts, delta_id) order
    contributing = [
        {"delta_id": e[0], "signal": e[1], "points": e[2], "ts": format_ts(e[3])}
        for e in window[-cfg.alert_max_contributing :]
    ]
    extra = {"contributing_total": len(window)} if len(window) > len(contributing) else {}
    return Output(
        ALERTS,
        delta.customer_id,
        {
            "alert_id": stable_id("alert", delta.customer_id, *(e[0] for e in window)),
            "customer_id": delta.customer_id,
            "team_id": team_of(delta.owner),
            "region": delta.owner.region,
            "rep_id": delta.owner.rep_id,
            "retracted": False,
            "net_points": net,
            "threshold": cfg.alert_points,
            "window_days": cfg.alert_window_ms // 86_400_000,
            "ts": format_ts(at),
            "contributing_deltas": contributing,
            **extra,
        },
    )


def effective_alerts(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The alerts that stand, by ``alert_id``, from ``procurement-alerts`` records in the
    order a customer's partition holds them: the last record of an id says (records
    from before retractions existed have no ``retracted`` field)."""
    latest = {record["alert_id"]: record for record in records}
    return {alert_id: record for alert_id, record in latest.items() if not record.get("retracted")}
