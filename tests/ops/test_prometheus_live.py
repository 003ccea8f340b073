"""A real Prometheus, configured from deploy/prometheus, scrapes a live worker on the
embedded broker while the integration scenario flows; its query API must report the
scenario's counts, its rules must load and evaluate, and every metric the dashboard
and the alerts query must be in the worker's scrape."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.scenario import Scenario, build, ev
from tests.ops.prometheus_server import PrometheusServer, render_config
from tests.ops.support import (
    WORKER_JOB,
    alert_queries,
    alert_rules,
    as_instant_query,
    grafana_queries,
    metric_names,
    require_tool,
)
from tests.support.workers import Deployment, Worker

pytestmark = pytest.mark.tansu

#: Series that Prometheus makes itself rather than scraping them
SYNTHETIC = {"up"}
#: Metrics whose labelled series exist only after something the scenario cannot
#: cause. The worker must still declare them (# TYPE in the scrape).
DEADLINE_S = 120.0


@dataclass
class Live:
    deployment: Deployment
    worker: Worker
    prometheus: PrometheusServer
    scenario: Scenario

    def diagnostics(self) -> str:
        return (
            f"--- worker log ---\n{self.worker.log_tail(40)}\n"
            f"--- prometheus log ---\n{self.prometheus.log_tail(15)}"
        )


@pytest.fixture(scope="module")
def live(tansu: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    binary = require_tool("prometheus")
    workdir = tmp_path_factory.mktemp("ops-live")
    deployment = Deployment(tansu, workdir)
    deployment.apply_topics()
    worker = deployment.start_worker()
    config = render_config(workdir / "prometheus", [f"127.0.0.1:{worker.web_port}"])
    prometheus = PrometheusServer(binary, config, workdir / "prometheus")
    try:
        prometheus.start()
        scenario = build(int(time.time() * 1000))
        deployment.produce(scenario.directory)
        worker.wait_for_metric(
            "credence_input_events_total", len(scenario.directory),
            topic="customer-directory", outcome="accepted",
        )
        deployment.produce(scenario.bad + scenario.good)
        # a technical request done on time last month: the water-level gauges get series
        due = int(time.time() * 1000) - 35 * 86_400_000
        deployment.produce([ev("sales-action", "wl-1", due, "c-hi", opportunity_id="wl-o1", team_id="team-a",
                               action="tech_request", due_ts=due, done_ts=due)])
        yield Live(deployment, worker, prometheus, scenario)
    finally:
        prometheus.stop()
        deployment.stop()


def _labels(**kv: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kv.items()))


def _expected_outcomes(s: Scenario) -> dict[tuple[str, str], int]:
    counts: Counter[tuple[str, str]] = Counter()
    for topic, _, _ in s.directory:
        counts[(topic, "accepted")] += 1
    for topic, _, _ in s.bad:
        counts[(topic, "invalid")] += 1
    seen: set[tuple[str, str]] = set()
    for topic, _, value in s.good:
        key = (topic, value["event_id"])
        counts[(topic, "duplicate" if key in seen else "accepted")] += 1
        seen.add(key)
    return dict(counts)


def test_prometheus_reports_the_scenario(live: Live) -> None:
    prom, s = live.prometheus, live.scenario
    wait = lambda expr, expected: prom.wait_until(  # noqa: E731
        expr, expected, DEADLINE_S, on_timeout=live.diagnostics
    )
    wait(f'up{{job="{WORKER_JOB}"}}', lambda got: list(got.values()) == [1.0])

    signals = Counter(e.signal for e in s.expected)
    wait("sum by (signal) (credence_signal_deltas_total)",
         {_labels(signal=k): float(v) for k, v in signals.items()})
    wait("sum(credence_signal_deltas_total)", {(): float(len(s.expected))})

    reasons = Counter(s.reasons)
    wait("sum by (reason) (credence_dead_letters_total)",
         {_labels(reason=k): float(v) for k, v in reasons.items()})
    wait("sum by (topic) (credence_dead_letters_total)",
         {_labels(topic=k): float(v) for k, v in Counter(t for t, _, _ in s.bad).items()})

    wait('sum(credence_input_events_total{outcome="duplicate"})', {(): 1.0})
    outcomes = _expected_outcomes(s)
    topics = "|".join(sorted({t for t, _ in outcomes}))
    wait(f'sum by (topic, outcome) (credence_input_events_total{{topic=~"{topics}"}})',
         {_labels(topic=t, outcome=o): float(n) for (t, o), n in outcomes.items()})

    # every delta's latency is observed once on the event clock
    wait('sum(credence_event_to_delta_seconds_count{clock="event"})', {(): float(len(s.expected))})
    wait('sum(credence_event_to_delta_seconds_bucket{clock="event", le="+Inf"})', {(): float(len(s.expected))})


def test_alert_rules_load_and_evaluate(live: Live) -> None:
    expected = {rule["alert"] for rule in alert_rules()}
    end = time.monotonic() + DEADLINE_S
    while True:
        rules = [r for g in live.prometheus.api("rules")["groups"] for r in g["rules"]]
        health = {r["name"]: (r["health"], r.get("lastError", "")) for r in rules}
        if set(health) == expected and all(h == ("ok", "") for h in health.values()):
            break
        assert time.monotonic() < end, f"rules not all evaluated ok: {health}\n{live.diagnostics()}"
        time.sleep(0.25)


def _scrape_index(text: str) -> tuple[dict[str, str], set[str]]:
    """(# TYPE family -> type, names of the samples present)."""
    types: dict[str, str] = {}
    samples: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            types[family] = kind
        elif line and not line.startswith("#"):
            samples.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return types, samples


def _declared(name: str, types: dict[str, str]) -> bool:
    """Is ``name`` a series of a family the scrape declares?"""
    if name in types:
        return True
    for suffix, kinds in (("_bucket", {"histogram"}), ("_sum", {"histogram", "summary"}),
                          ("_count", {"histogram", "summary"}), ("_total", {"counter"})):
        if name.endswith(suffix) and types.get(name.removesuffix(suffix)) in kinds:
            return True
    return False


def test_every_dashboard_and_alert_metric_is_in_a_live_scrape(live: Live) -> None:
    queried: dict[str, list[str]] = {}
    for where, expr in itertools.chain(grafana_queries(), alert_queries()):
        for name in metric_names(expr):
            queried.setdefault(name, []).append(where)
    scraped = queried.keys() - SYNTHETIC
    required = set(scraped)

    # labelled series appear as the scenario is processed: poll the scrape
    end = time.monotonic() + DEADLINE_S
    while True:
        try:
            types, samples = _scrape_index(live.worker.metrics())
        except OSError:
            types, samples = {}, set()
        missing = required - samples
        if not missing:
            break
        if time.monotonic() > end:
            raise AssertionError(
                "queried but not in the worker's scrape:\n"
                + "\n".join(f"  {n}: {queried[n]}" for n in sorted(missing))
                + f"\n{live.diagnostics()}"
            )
        time.sleep(0.5)
    undeclared = {n for n in scraped if not _declared(n, types)}
    assert not undeclared, f"not exported by the worker at all: {sorted(undeclared)}"
    for name in SYNTHETIC & queried.keys():
        assert live.prometheus.query(f'{name}{{job="{WORKER_JOB}"}}'), name


def test_every_dashboard_and_alert_query_runs_on_prometheus(live: Live) -> None:
    """Each PromQL expression parses and evaluates; those over metrics the scenario
    fills return data."""
    for where, expr in itertools.chain(grafana_queries(), alert_queries()):
        query = as_instant_query(expr)
        try:
            live.prometheus.query(query)
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}")
    panels = [(w, e) for w, e in grafana_queries() if w.startswith("panel")]
    for where, expr in panels:
        live.prometheus.wait_until(
            as_instant_query(expr), bool, DEADLINE_S,
            on_timeout=lambda where=where: f"{where} shows no data\n{live.diagnostics()}",
        )

