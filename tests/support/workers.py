"""Credence workers as real subprocesses, for integration tests and benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from scoring.catalog import load_catalog
from streams.kafka.topic_admin import apply_topics
from streams.processes import die_with_parent, free_port, stop_process
from streams.settings import Settings

Record = tuple[str, str | bytes | None, Any]  # (topic, key, value: JSON object, raw str or bytes, or None)


def encode_value(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


def replay_all(log: Iterable[Record], workdir: Path, now: int) -> list[tuple[str, dict[str, Any]]]:
    """``credence replay --all --now now`` of ``log``: the roll-up records, as (topic, value)."""
    path = workdir / "events.jsonl"
    path.write_bytes(b"".join(
        orjson.dumps({"topic": t, "key": k, "value": orjson.loads(encode_value(v) or b"null")}) + b"\n"
        for t, k, v in log
    ))
    replayed = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "replay", str(path), "--now", str(now), "--all"],
        check=True, capture_output=True,
    )
    return [(o["topic"], o["value"]) for o in map(orjson.loads, replayed.stdout.splitlines()) if "topic" in o]


@dataclass
class Deployment:
    """One isolated Credence deployment on a broker: its own topic prefix and group."""

    bootstrap: str
    workdir: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    env_extra: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings(bootstrap_servers=self.bootstrap, topic_prefix=self.prefix)

    def apply_topics(self) -> None:
        asyncio.run(apply_topics(self.settings, load_catalog()))

    def start_worker(self, name: str = "w1", module: str = "streams.cli.main") -> Worker:
        """``module``: the command line to run (``tests.support.faulty_worker`` injects faults)."""
        worker = Worker(self, name, module)
        worker.start()
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def produce(self, records: Iterable[Record], max_request_size: int = 1024 * 1024) -> None:
        asyncio.run(self._produce(list(records), max_request_size))

    async def _produce(self, records: list[Record], max_request_size: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=2, max_request_size=max_request_size)
        await producer.start()
        try:
            for topic, key, value in records:
                await producer.send(
                    self.prefix + topic, encode_value(value), key=key.encode() if isinstance(key, str) else key
                )
            await producer.flush()
        finally:
            await producer.stop()

    def consume_until(
        self,
        topics: list[str],
        done: Callable[[list[tuple[str, dict[str, Any]]]], bool],
        deadline_s: float = 90.0,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Read ``topics`` from the start until ``done(records)`` or the deadline."""
        return asyncio.run(self._consume_until(topics, done, deadline_s))

    async def _consume_until(
        self,
        topics: list[str],
        done: Callable[[list[tuple[str, dict[str, Any]]]], bool],
        deadline_s: float,
    ) -> list[tuple[str, dict[str, Any]]]:
        consumer = AIOKafkaConsumer(
            *(self.prefix + t for t in topics),
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        records: list[tuple[str, dict[str, Any]]] = []
        end = time.monotonic() + deadline_s
        try:
            while not done(records):
                if time.monotonic() > end:
                    raise TimeoutError(f"gave up after {deadline_s}s with {len(records)} records")
                batch = await consumer.getmany(timeout_ms=200)
                for messages in batch.values():
                    for m in messages:
                        records.append((m.topic[len(self.prefix):], orjson.loads(m.value)))
            return records
        finally:
            await consumer.stop()

    @property
    def group_id(self) -> str:
        """The workers' consumer group (``CREDENCE_APP_ID`` as :class:`Worker` sets it)."""
        return f"credence-{self.prefix.rstrip('.')}"

    def _partitions(self, topics: list[str]) -> list[TopicPartition]:
        catalog = load_catalog()
        return [TopicPartition(self.prefix + t, p) for t in topics for p in range(catalog[t].partitions)]

    def committed_lag(self, topics: list[str]) -> dict[tuple[str, int], int]:
        """End offset minus the group's committed offset (or log start), per partition."""
        return asyncio.run(self._committed_lag(topics))

    async def _committed_lag(self, topics: list[str]) -> dict[tuple[str, int], int]:
        # a consumer that names the group but never joins it: only OffsetFetch
        # (the admin client's OffsetFetch cannot decode the embedded broker's answer)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = self._partitions(topics)
            ends = await self._end_offsets(consumer, tps)
            starts = await consumer.beginning_offsets(tps)
            lag = {}
            for tp in tps:
                committed = await consumer.committed(tp)
                base = committed if committed is not None else starts[tp]
                lag[(tp.topic[len(self.prefix):], tp.partition)] = ends[tp] - base
            return lag
        finally:
            await consumer.stop()

    @staticmethod
    async def _end_offsets(
        consumer: AIOKafkaConsumer, tps: list[TopicPartition], deadline_s: float = 10.0
    ) -> dict[TopicPartition, int]:
        """End offsets from fetch responses' high watermarks, and ListOffsets: the larger.

        The embedded broker answers ListOffsets with the end of the first record of the
        partition's last batch, not of the batch; its fetch responses are right.
        """
        listed = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = time.monotonic() + deadline_s
        while any(consumer.highwater(tp) is None for tp in tps):
            if time.monotonic() > end:
                raise TimeoutError("no fetch response for every partition")
            await consumer.getmany(timeout_ms=100, max_records=1)
        return {tp: max(listed[tp], consumer.highwater(tp)) for tp in tps}

    def read_to_end(self, topics: list[str], deadline_s: float = 30.0) -> list[tuple[str, int, bytes]]:
        """Every record of ``topics`` up to their end offsets now: (topic, partition, value)."""
        return asyncio.run(self._read_to_end(topics, deadline_s))

    async def _read_to_end(self, topics: list[str], deadline_s: float) -> list[tuple[str, int, bytes]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await consumer.start()
        records: list[tuple[str, int, bytes]] = []
        try:
            tps = self._partitions(topics)
            ends = await self._end_offsets(consumer, tps)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = time.monotonic() + deadline_s
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                if time.monotonic() > end:
                    raise TimeoutError(f"gave up reading {topics} after {deadline_s}s")
                batch = await consumer.getmany(timeout_ms=200)
                for tp, messages in batch.items():
                    records += [
                        (tp.topic[len(self.prefix):], tp.partition, m.value)
                        for m in messages
                        if m.offset < ends[tp]
                    ]
            return records
        finally:
            await consumer.stop()


class Worker:
    """``credence worker`` in a subprocess, its output in ``<workdir>/<name>.log``."""

    def __init__(self, deployment: Deployment, name: str, module: str = "streams.cli.main") -> None:
        self.deployment = deployment
        self.name = name
        self.module = module
        self.web_port = free_port()
        self.log_path = deployment.workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        d = self.deployment
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": d.bootstrap,
            "CREDENCE_TOPIC_PREFIX": d.prefix,
            "CREDENCE_APP_ID": f"credence-{d.prefix.rstrip('.')}",
            "CREDENCE_DATA_DIR": str(d.workdir / f"data-{self.name}"),
            "CREDENCE_WEB_PORT": str(self.web_port),
            "CREDENCE_LOG_LEVEL": "INFO",
            "CREDENCE_SESSION_TIMEOUT_SECONDS": "6",
            **d.env_extra,
        }
        command = [sys.executable, "-m", self.module, "worker"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent,  # a killed test run leaves no worker behind
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            body: bytes = response.read()
        return body.decode()

    def metric_value(self, name: str, **labels: str) -> float:
        """The sample ``name{labels}`` from a live scrape, 0 if absent."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric, _, label_text = series.partition("{")
            got = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
            if metric == name and got == wanted:
                return float(value)
        return 0.0

    def metric_samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Every sample of ``name`` from a live scrape, keyed by its sorted label pairs."""
        samples: dict[tuple[tuple[str, str], ...], float] = {}
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric, _, label_text = series.partition("{")
            if metric != name:
                continue
            pairs = []
            for item in filter(None, label_text.rstrip("}").split(",")):
                key, _, quoted = item.partition("=")
                pairs.append((key, quoted.strip('"')))
            samples[tuple(sorted(pairs))] = float(value)
        return samples

    def wait_for_metric(self, name: str, at_least: float, deadline_s: float = 90.0, **labels: str) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if not self.alive:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log_tail()}")
            try:
                if self.metric_value(name, **labels) >= at_least:
                    return
            except OSError:
                pass  # web server not up yet
            time.sleep(0.1)
        raise TimeoutError(f"{name}{labels} < {at_least} after {deadline_s}s:\n{self.log_tail()}")

    def wait_ready(self, deadline_s: float = 60.0) -> None:
        """Poll the log until Faust says the worker is ready (its first restore is done)."""
        end = time.monotonic() + deadline_s
        while "Worker ready" not in self.log_path.read_text(errors="replace"):
            assert self.alive, self.log_tail()
            assert time.monotonic() < end, f"not ready after {deadline_s}s:\n{self.log_tail()}"
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stacks(self, deadline_s: float = 10.0) -> str:
        """Every thread's and asyncio task's stack and the consumer's state, for a failure
        message: the worker writes them to its log on SIGUSR1 (mode's ``cry``, then
        ``streams.faust_ext.diagnostics``, whose last section is the consumer thread's tasks)."""
        if self.proc is None or self.proc.poll() is not None:
            return "(not running)"
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        os.kill(self.proc.pid, signal.SIGUSR1)
        end, seen = time.monotonic() + deadline_s, -1
        while time.monotonic() < end:
            size = self.log_path.stat().st_size
            text = self.log_path.read_bytes()[start:].decode(errors="replace")
            if "-- consumer thread tasks" in text and size == seen:  # written, and no longer growing
                return text
            seen = size
            time.sleep(0.2)
        return self.log_path.read_bytes()[start:].decode(errors="replace") or "(no stacks written)"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, deadline_s: float = 20.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, deadline_s, group=True)
