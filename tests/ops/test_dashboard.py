"""deploy/grafana: the dashboard is well-formed, shows what operations asked for, and
queries only metrics that streams/ops/metrics.py declares (the live check is in
test_prometheus_live.py)."""

from __future__ import annotations

import itertools
from typing import Any

import yaml

from tests.ops.support import (
    GRAFANA_PROVISIONING,
    alert_queries,
    dashboard,
    grafana_queries,
    metric_names,
)

#: Prometheus' own series, never in a worker's scrape
SYNTHETIC = {"up"}


def _declared_series() -> set[str]:
    """Every series name the worker's registry can expose (streams/ops/metrics.py)."""
    from prometheus_client import REGISTRY

    import streams.ops.metrics  # noqa: F401  (registers the metrics)

    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
    }
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("credence_")
        for suffix in suffixes.get(family.type, ("",))
    }


def _panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def test_every_queried_metric_is_declared_in_streams_metrics() -> None:
    declared = _declared_series()
    for where, expr in itertools.chain(grafana_queries(), alert_queries()):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        unknown = names - declared - SYNTHETIC
        assert not unknown, f"{where}: {sorted(unknown)} not in streams/ops/metrics.py"


def test_dashboard_shows_what_operations_asked_for() -> None:
    exprs = [expr for _, expr in grafana_queries()]

    def has(*needles: str) -> bool:
        return any(all(n in e for n in needles) for e in exprs)

    assert has("credence_team_credibility_score", "region")  # by region (table, heat map)
    assert has("credence_signal_deltas_total", "by (signal)")
    assert has("rate(credence_input_events_total", "topic", "outcome")
    assert has("histogram_quantile(", "credence_event_to_delta_seconds_bucket", "le")
    assert has("credence_consumer_lag_records")
    assert has("credence_dead_letters_total", "by (reason)")
    assert has("credence_action_water_level", "team_id", "action")
    assert has("credence_action_water_target")
    types = {p["type"] for p in _panels()}
    assert {"table", "timeseries", "status-history"} <= types


def test_dashboard_structure() -> None:
    dash = dashboard()
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in _panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == panel["datasource"]


def test_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x, y in itertools.product(range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])):
            assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
            cells[(x, y)] = panel["title"]


def test_provisioned_datasource_is_the_dashboard_default() -> None:
    (datasource,) = yaml.safe_load((GRAFANA_PROVISIONING / "datasources/prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    current = next(v for v in dashboard()["templating"]["list"] if v["name"] == "datasource")["current"]
    assert current["value"] == datasource["uid"]
    (provider,) = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards/credence.yml").read_text())["providers"]
    assert provider["type"] == "file"
