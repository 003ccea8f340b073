"""A real Prometheus server on a loopback port, configured from deploy/prometheus."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from streams.processes import free_port, stop_process
from tests.ops.support import PROMETHEUS_CONFIGS, WORKER_JOB

Labels = tuple[tuple[str, str], ...]


def render_config(workdir: Path, targets: list[str], interval: str = "1s") -> Path:
    """deploy/prometheus/prometheus.yml with the worker job pointed at ``targets``,
    every interval set to ``interval``, and its rule files copied beside it."""
    source = PROMETHEUS_CONFIGS[0]
    config = yaml.safe_load(source.read_text())
    config["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == WORKER_JOB]
    job["static_configs"] = [{"targets": targets}]
    workdir.mkdir(parents=True, exist_ok=True)
    for rule_file in config.get("rule_files", []):
        shutil.copy(source.parent / rule_file, workdir / rule_file)
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class PrometheusServer:
    def __init__(self, binary: str, config: Path, workdir: Path) -> None:
        self.binary = binary
        self.config = config
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_deadline_s: float = 60.0) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        end = time.monotonic() + ready_deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready after {ready_deadline_s}s:\n{self.log_tail()}")

    def stop(self, deadline_s: float = 20.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, deadline_s, group=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422 carry the error as JSON
            body = json.load(exc)
        if body["status"] != "success":
            raise ValueError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> dict[Labels, float]:
        """An instant query's vector as {sorted labels: value} (scalars under ())."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return {(): float(data["result"][1])}
        return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in data["result"]}

    def by(self, expr: str, label: str) -> dict[str, float]:
        return {dict(k).get(label, ""): v for k, v in self.query(expr).items()}

    def wait_until(
        self,
        expr: str,
        expected: Callable[[dict[Labels, float]], bool] | dict[Labels, float],
        deadline_s: float = 90.0,
        on_timeout: Callable[[], str] = lambda: "",
    ) -> dict[Labels, float]:
        """Poll ``expr`` until ``expected`` (a predicate or the exact vector) holds."""
        check = expected if callable(expected) else (lambda got: _same(got, expected))
        end = time.monotonic() + deadline_s
        got: dict[Labels, float] = {}
        while True:
            got = self.query(expr)
            if check(got):
                return got
            if time.monotonic() > end:
                raise AssertionError(
                    f"{expr}: after {deadline_s}s got {got}"
                    + ("" if callable(expected) else f", expected {expected}")
                    + f"\n{on_timeout()}"
                )
            time.sleep(0.25)


def _same(got: dict[Labels, float], expected: dict[Labels, float]) -> bool:
    return got.keys() == expected.keys() and all(math.isclose(got[k], v) for k, v in expected.items())
