"""A real Apache Kafka broker for the test suite.

The broker is fetched from Maven Central with Maven (``tests/kafka/pom.xml``)
and run with ``java`` as a single KRaft node that is both broker and
controller, listening on loopback ports only.  Nothing here needs Docker or a
Kafka distribution tarball.

Typical use, from sync code such as a session-scoped pytest fixture::

    from tests.support.apache_kafka import ApacheKafka

    with ApacheKafka() as kafka:
        bootstrap = kafka.bootstrap      # "127.0.0.1:<port>"
        ...

For debugging, ``python -m tests.support.apache_kafka`` starts a broker,
prints its bootstrap address and runs until Ctrl-C.

Requirements on the machine: ``java`` (17+, as Kafka 4.x needs) and ``mvn``
on PATH, and Maven Central reachable the first time a version is used.  The
jars are cached under ``<repo>/.cache/kafka/<version>/libs``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from streams.processes import die_with_parent, free_port, stop_process

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "ApacheKafka",
    "KafkaStartError",
    "ensure_kafka_jars",
]

#: Kafka version used when none is given.  Overridable with the
#: ``CREDENCE_KAFKA_VERSION`` environment variable.  Keep in step with the
#: ``kafka.version`` default in tests/kafka/pom.xml.
DEFAULT_KAFKA_VERSION = "4.1.2"

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "tests" / "kafka" / "pom.xml"
CACHE_ROOT = REPO_ROOT / ".cache" / "kafka"

_MARKER = ".complete"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Maven's colour codes, even with -B
_LOOPBACK = "127.0.0.1"


class KafkaStartError(RuntimeError):
    """The broker could not be fetched, formatted or started."""


def _resolve_version(version: str | None) -> str:
    return version or os.environ.get("CREDENCE_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise KafkaStartError(f"{tool!r} is not on PATH; it is needed to run Apache Kafka")
    return path


def ensure_kafka_jars(version: str | None = None) -> Path:
    """Return the folder holding the broker jars for ``version``.

    The first call for a version runs Maven once
    (``mvn -q -B -f tests/kafka/pom.xml dependency:copy-dependencies``) into
    ``<repo>/.cache/kafka/<version>/libs`` and then writes a marker file; later
    calls (from this or any other process) see the marker and return at once.
    A file lock makes concurrent callers (e.g. pytest-xdist workers) wait for
    one download instead of racing.
    """
    version = _resolve_version(version)
    base = CACHE_ROOT / version
    libs = base / "libs"
    marker = base / _MARKER
    if marker.is_file():
        return libs

    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():  # another process finished while we waited
            return libs
        shutil.rmtree(libs, ignore_errors=True)
        cmd = [
            _require("mvn"),
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            f"-Dkafka.version={version}",
        ]
        result = subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        jars = sorted(libs.glob("*.jar")) if libs.is_dir() else []
        if result.returncode != 0 or not any(
            j.name.startswith(f"kafka_2.13-{version}") for j in jars
        ):
            shutil.rmtree(libs, ignore_errors=True)
            raise KafkaStartError(
                f"Maven could not fetch Kafka {version} (exit {result.returncode}):\n"
                f"{' '.join(cmd)}\n{_ANSI.sub('', result.stdout)[-4000:]}"
            )
        marker.write_text("\n".join(j.name for j in jars) + "\n")
    return libs


def _cluster_id() -> str:
    """A random Kafka cluster id (a Uuid in URL-safe base64 without padding).

    Like Kafka's own ``Uuid.randomUuid()``, never one starting with ``-``:
    StorageTool's argument parser would take it for an option.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _first_errors(path: Path, limit: int = 10) -> str:
    """The first ERROR/exception lines of a log: the cause, before shutdown noise."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    hits = [
        line
        for line in text.splitlines()
        if " ERROR " in line or "Exception:" in line or line.startswith("Caused by:")
    ]
    return "\n".join(hits[:limit]) or "<none>"


async def _broker_answers(bootstrap: str, timeout_s: float) -> bool:
    """True once a Metadata request is answered with at least one broker.

    In KRaft mode the Metadata response lists only registered, unfenced
    brokers, so a non-empty list means the node can serve clients and accept
    CreateTopics.
    """
    from aiokafka import AIOKafkaClient  # type: ignore[import-untyped]  # lazy: optional

    ms = max(int(timeout_s * 1000), 500)
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=ms,
        retry_backoff_ms=100,
        metadata_max_age_ms=ms,
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        metadata = await asyncio.wait_for(client.fetch_all_metadata(), timeout_s)
        return bool(metadata.brokers())
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await client.close()


def _run_coroutine_sync(
    coro_factory: Callable[..., Coroutine[Any, Any, bool]], *args: object
) -> bool:
    """Run an async predicate from sync code, even if a loop is running.

    A fresh event loop in a short-lived thread works whether or not the
    calling thread already runs one (e.g. inside pytest-asyncio).
    """
    box: list[bool] = [False]

    def target() -> None:
        box[0] = asyncio.run(coro_factory(*args))

    thread = threading.Thread(target=target, name="kafka-ready-probe", daemon=True)
    thread.start()
    thread.join()
    return box[0]


def _finalize(proc: subprocess.Popen[bytes] | None, workdir: str) -> None:
    """Last-resort cleanup (garbage collection or interpreter exit)."""
    if proc is not None:
        stop_process(proc, 5.0)
    shutil.rmtree(workdir, ignore_errors=True)


class ApacheKafka:
    """A single-node KRaft Apache Kafka broker in a subprocess.

    ``start()`` (or entering the ``with`` block) fetches the jars if needed,
    picks free ports on 127.0.0.1, writes ``server.properties`` into a fresh
    temporary folder, formats the storage there, starts
    ``java kafka.Kafka`` with its output in ``<tmp>/kafka.log`` and returns
    once the broker answers a Metadata request.  ``stop()`` (or leaving the
    block) sends SIGTERM, SIGKILL after ``stop_timeout`` seconds, and removes
    the temporary folder.

    Broker settings suit tests: one partition per topic, replication factor 1
    for the internal topics, no group rebalance delay, and
    ``auto.create.topics.enable=false`` so that code under test must create
    its topics.  ``extra_properties`` adds to or overrides them.
    """

    def __init__(
        self,
        version: str | None = None,
        *,
        extra_properties: Mapping[str, str] | None = None,
        heap: str = "512m",
        production_jvm: bool = False,
        startup_timeout: float = 90.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.version = _resolve_version(version)
        self.extra_properties = dict(extra_properties or {})
        self.heap = heap
        #: the JVM's own defaults (full JIT, G1) as a real broker runs, instead of the
        #: quick-start options tests use; benchmarks want them
        self.production_jvm = production_jvm
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port: int | None = None
        self.controller_port: int | None = None
        self.workdir: Path | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., ApacheKafka] | None = None

    # -- public API -----------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:<port>"``, for ``bootstrap_servers`` / ``kafka://``."""
        if self.port is None:
            raise RuntimeError("the broker is not started")
        return f"{_LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's combined stdout/stderr (inside the temporary folder)."""
        if self.workdir is None:
            raise RuntimeError("the broker is not started")
        return self.workdir / "kafka.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the broker log, for failure messages."""
        return _tail(self.log_path, lines)

    def _failure_report(self) -> str:
        return f"first errors:\n{_first_errors(self.log_path)}\nlog tail:\n{self.log_tail(30)}"

    def start(self) -> ApacheKafka:
        """Start the broker and wait until it serves clients; returns ``self``.

        ``startup_timeout`` and ``startup_seconds`` cover the broker start
        (storage format, JVM start, readiness), not the first jar download.
        """
        if self._proc is not None:
            raise RuntimeError("the broker is already started")
        libs = ensure_kafka_jars(self.version)
        java = _require("java")
        for attempt in range(1, 4):
            try:
                self._start_once(java, libs)
                return self
            except KafkaStartError as exc:
                # The free ports are picked before the JVM binds them; on the
                # rare loss of that race, try again with new ports.
                if attempt == 3 or "Address already in use" not in str(exc):
                    raise
        raise AssertionError("unreachable")

    def _start_once(self, java: str, libs: Path) -> None:
        began = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"kafka-{self.version}-"))
        self._finalizer = weakref.finalize(self, _finalize, None, str(self.workdir))
        try:
            self.port = free_port()
            self.controller_port = free_port()
            while self.controller_port == self.port:
                self.controller_port = free_port()
            props = self._write_properties()
            classpath = f"{libs}/*"
            self._format_storage(java, classpath, props)
            self._launch(java, classpath, props)
            self._wait_ready(began + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and remove its folder."""
        if self._proc is not None:
            stop_process(self._proc, self.stop_timeout)
            self._proc = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self.port = self.controller_port = None

    def stop_broker(self) -> None:
        """Stop the broker process (SIGTERM: a controlled shutdown, as a rolling restart
        does) and keep its ports, configuration and log dir for :meth:`start_broker`."""
        if self._proc is None:
            raise RuntimeError("the broker is not running")
        stop_process(self._proc, self.stop_timeout)
        self._proc = None

    def start_broker(self) -> float:
        """Start the broker :meth:`stop_broker` stopped: the same KRaft node on the same
        ports and log dir. Returns once it serves clients; the seconds that took."""
        if self._proc is not None or self.workdir is None:
            raise RuntimeError("the broker is running or was never started")
        began = time.monotonic()
        libs = ensure_kafka_jars(self.version)
        self._launch(_require("java"), f"{libs}/*", self.workdir / "server.properties")
        self._wait_ready(began + self.startup_timeout)
        return time.monotonic() - began

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------

    def properties(self) -> dict[str, str]:
        """The ``server.properties`` entries (ports must be assigned)."""
        assert self.workdir is not None and self.port and self.controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # A static voter set works on 3.9 and 4.x alike and needs no
            # `--standalone` at format time (dynamic quorums, KIP-853, would).
            "controller.quorum.voters": f"1@{_LOOPBACK}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{_LOOPBACK}:{self.port},"
                f"CONTROLLER://{_LOOPBACK}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{_LOOPBACK}:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            "num.network.threads": "2",
            "num.io.threads": "2",
        }
        props.update(self.extra_properties)
        return props

    def _write_properties(self) -> Path:
        assert self.workdir is not None
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        return path

    def _jvm_options(self) -> list[str]:
        assert self.workdir is not None
        quick_start = [
            "-Xms64m",
            "-XX:+UseSerialGC",  # cheap on a small, 2-core test machine
            "-XX:TieredStopAtLevel=1",  # faster start-up; throughput is irrelevant
        ]
        production = [f"-Xms{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]  # Kafka's start script
        return [
            f"-Xmx{self.heap}",
            *(production if self.production_jvm else quick_start),
            "-Djava.awt.headless=true",
            f"-Djava.io.tmpdir={self.workdir}",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
            "-Dorg.slf4j.simpleLogger.log.state.change.logger=warn",
            "-Dorg.slf4j.simpleLogger.log.kafka.request.logger=warn",
        ]

    def _format_storage(self, java: str, classpath: str, props: Path) -> None:
        cmd = [
            java,
            *self._jvm_options(),
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(props),
        ]
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=self.startup_timeout,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaStartError(
                f"kafka-storage format failed (exit {result.returncode}):\n{result.stdout[-4000:]}"
            )

    def _launch(self, java: str, classpath: str, props: Path) -> None:
        cmd = [java, *self._jvm_options(), "-cp", classpath, "kafka.Kafka", str(props)]
        with open(self.log_path, "ab") as log:  # a restarted broker appends
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                # Own process group: a Ctrl-C in the terminal reaches Python,
                # which then stops the broker in order.
                start_new_session=True,
                preexec_fn=die_with_parent,  # a killed test run leaves no broker behind
            )
        assert self.workdir is not None and self._finalizer is not None
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _finalize, self._proc, str(self.workdir))

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None and self.port is not None
        delay = 0.05
        while True:
            code = self._proc.poll()
            if code is not None:
                raise KafkaStartError(
                    f"Kafka {self.version} exited with {code} during start-up; "
                    f"{self._failure_report()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaStartError(
                    f"Kafka {self.version} not ready after {self.startup_timeout:.0f}s; "
                    f"{self._failure_report()}"
                )
            if self._port_open() and _run_coroutine_sync(
                _broker_answers, self.bootstrap, min(5.0, max(remaining, 0.5))
            ):
                return
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            delay = min(delay * 2, 0.5)

    def _port_open(self) -> bool:
        assert self.port is not None
        try:
            with socket.create_connection((_LOOPBACK, self.port), timeout=0.5):
                return True
        except OSError:
            return False


def main(argv: list[str] | None = None) -> int:
    """Start a broker, print its bootstrap address and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.apache_kafka",
        description="Run a throwaway single-node Apache Kafka (KRaft) broker on 127.0.0.1.",
    )
    parser.add_argument(
        "--kafka-version",
        default=None,
        help=f"Kafka version (default: $CREDENCE_KAFKA_VERSION or {DEFAULT_KAFKA_VERSION})",
    )
    parser.add_argument(
        "-p",
        "--property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra server.properties entry (repeatable)",
    )
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.property)

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT explicitly too: a background job of a non-interactive shell
    # inherits SIGINT as ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        with ApacheKafka(args.kafka_version, extra_properties=extra) as kafka:
            print(kafka.bootstrap, flush=True)
            print(
                f"Kafka {kafka.version} ready in {kafka.startup_seconds:.1f}s; "
                f"log: {kafka.log_path}; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            while kafka.running:
                time.sleep(0.5)
            print(f"broker exited; log tail:\n{kafka.log_tail()}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
