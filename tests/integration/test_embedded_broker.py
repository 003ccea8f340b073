"""The embedded broker leaves nothing behind, and says why when it cannot start."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from streams.kafka.embedded_broker import EmbeddedBroker

pytestmark = pytest.mark.tansu


def tansu_leftovers() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("tansu-*"))


def test_stopping_removes_its_log() -> None:
    before = tansu_leftovers()
    with EmbeddedBroker() as broker:
        assert broker._log_path.exists()
    assert tansu_leftovers() == before


def test_a_broker_that_cannot_listen_raises_with_its_log() -> None:
    before = tansu_leftovers()
    with socket.socket() as taken:  # bound, not listening: Tansu's bind fails
        taken.bind(("127.0.0.1", 0))
        broker = EmbeddedBroker(port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="Tansu did not start") as failure:
            broker.start()
    assert "exited" in str(failure.value)
    assert len(str(failure.value).splitlines()) > 1, "the log's end is part of the message"
    assert tansu_leftovers() == before

