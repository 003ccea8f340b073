"""The peer: Quix Streams' per-key stateful count over a copy of the benchmark's events.

``python -m bench.throughput --peer quix`` (``make bench`` does) copies the generated
events, keys and values unchanged, into one topic of its own with ``--peer-partitions``
(default 4) partitions on the same broker, then runs this module as a separate process
(Quix installs signal handlers and librdkafka threads of its own): a Quix ``Application``
that JSON-decodes each value and counts it per key in its RocksDB state store, with the
state's changelog topic (Quix's defaults: exactly what its docs call the simplest
stateful app). It is timed from its first processed record to the ``n``-th, as the
Credence worker is timed from its first progress; the process's CPU over the run is
reported too.

Quix Streams is not a dependency of Credence: it comes with the ``bench`` extra
(``pip install -e '.[test,bench]'``, which ``make bench`` does in ``.venv-bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPIC = "quix-input"
RETENTION = {"retention.ms": "604800000", "retention.bytes": "-1"}  # Kafka's defaults


@dataclass
class PeerResult:
    name: str
    events: int
    seconds: float  # first processed record -> n-th
    wall_s: float  # process start -> exit (join, state and changelog set-up, final checkpoint)
    cpu_s: float  # the peer process's user + system CPU (all threads) over ``seconds``
    partitions: int
    version: str

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_event_us(self) -> float:
        return self.cpu_s / self.events * 1e6 if self.events else 0.0


def installed() -> str | None:
    """Quix Streams' version if it is installed here, else None (not imported: the
    bench process has no use for it, only the peer process)."""
    try:
        return importlib.metadata.version("quixstreams")
    except importlib.metadata.PackageNotFoundError:
        return None


async def copy_events(bootstrap: str, topic: str, partitions: int, events: list[tuple[str, bytes, bytes]]) -> None:
    """Create ``topic`` and produce every event's key and value to it, in order."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="credence-bench")
    await admin.start()
    try:
        # explicit retention: Quix copies the input topic's "retention.ms" to the changelog topic and
        # fails without it, and the embedded broker's DescribeConfigs returns only the configs set
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                            topic_configs=RETENTION)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=131072)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for _, key, value in events]
        await producer.flush()
        for f in futures:
            f.result()
    finally:
        await producer.stop()


def run_quix(
    bootstrap: str, prefix: str, events: list[tuple[str, bytes, bytes]], workdir: Path,
    partitions: int = 4, deadline_s: float = 600.0,
) -> PeerResult:
    """Copy ``events`` to ``prefix + TOPIC`` and count them with Quix in a child process."""
    topic = prefix + TOPIC
    asyncio.run(copy_events(bootstrap, topic, partitions, events))
    workdir.mkdir(parents=True, exist_ok=True)
    result_path, log_path = workdir / "quix-result.json", workdir / "quix.log"
    command = [sys.executable, "-m", "bench.peer_quix", "--bootstrap", bootstrap, "--topic", topic,
               "--group", f"{prefix}quix-count", "--events", str(len(events)),
               "--state-dir", str(workdir / "quix-state"), "--result", str(result_path)]
    began = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                if time.monotonic() - began > deadline_s:
                    raise TimeoutError(f"Quix did not count {len(events)} events in {deadline_s:.0f}s:\n"
                                       f"{log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wall = time.monotonic() - began
    if proc.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"Quix exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
    measured = json.loads(result_path.read_text())
    return PeerResult("quix count", measured["events"], measured["seconds"], wall,
                      measured["cpu_s"], partitions, measured["version"])


# -- the peer process ------------------------------------------------------------------------


def count_app(args: argparse.Namespace) -> dict[str, float | int | str]:
    import quixstreams
    from quixstreams import Application, State

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, key_deserializer="str", value_deserializer="json")
    progress = {"count": 0, "first": 0.0, "last": 0.0, "cpu_first": 0.0, "cpu_last": 0.0}

    def count(value: object, state: State) -> None:
        state.set("count", state.get("count", 0) + 1)
        progress["count"] += 1
        if progress["count"] in (1, args.events):
            at = "first" if progress["count"] == 1 else "last"
            progress[at], progress[f"cpu_{at}"] = time.perf_counter(), time.process_time()

    app.dataframe(topic).update(count, stateful=True)
    app.run(count=args.events)
    if progress["count"] < args.events:
        raise SystemExit(f"Quix stopped after {progress['count']} of {args.events} records")
    return {
        "events": args.events - 1,  # the first record starts the clock
        "seconds": progress["last"] - progress["first"],
        "cpu_s": progress["cpu_last"] - progress["cpu_first"],  # all the process's threads
        "version": quixstreams.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_quix", description="(run by bench.throughput)")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    args.result.write_text(json.dumps(count_app(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
