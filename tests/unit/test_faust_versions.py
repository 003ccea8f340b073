"""The start-up guard refuses Faust, mode and aiokafka versions other than the tested
ones (``streams.faust_ext.versions``)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from streams.faust_ext import versions

TESTED = dict(versions.TESTED)


def with_version(name: str, version: str | None) -> dict[str, str | None]:
    return {**TESTED, name: version}


@pytest.mark.parametrize(("installed", "allow", "refused"), [
    (TESTED, None, False),
    (TESTED, "1", False),
    (with_version("faust-streaming", "0.15.4"), None, True),
    (with_version("mode-streaming", "0.7.2"), None, True),
    (with_version("aiokafka", "0.13.0"), None, True),
    (with_version("aiokafka", None), None, True),
    (with_version("faust-streaming", "0.16.0"), "0", True),
    (with_version("faust-streaming", "0.16.0"), "yes", True),
    (with_version("faust-streaming", "0.16.0"), "1", False),
    (with_version("mode-streaming", "0.8.0"), "1", False),
])
def test_guard(installed: dict[str, str | None], allow: str | None, refused: bool) -> None:
    environ = {} if allow is None else {versions.ALLOW_ENV: allow}
    if refused:
        with pytest.raises(SystemExit) as exit_info:
            versions.check(installed, environ)
        message = str(exit_info.value.code)
        for name, version in installed.items():
            if version != TESTED[name]:
                assert f"{name} {version or '(not installed)'}, tested: {TESTED[name]}" in message
        assert versions.ALLOW_ENV in message
    else:
        versions.check(installed, environ)


def test_the_override_logs_what_is_untested(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=versions.__name__):
        versions.check(with_version("aiokafka", "0.15.0"), {versions.ALLOW_ENV: "1"})
    assert "aiokafka 0.15.0, tested: 0.14.0" in caplog.text


def test_the_installed_versions_are_the_tested_ones() -> None:
    assert versions.installed_versions() == TESTED


def test_the_tested_versions_are_the_pinned_ones() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pins = dict(re.fullmatch(r"([\w-]+)==(\S+)", d).groups()  # type: ignore[union-attr]
                for d in pyproject["project"]["dependencies"] if "==" in d)
    assert {name: pins.get(name) for name in TESTED} == TESTED


def test_a_worker_refuses_to_start_on_an_untested_version(tmp_path: Path) -> None:
    """The app checks before it builds anything: exit status 1, the message on stderr."""
    code = (
        "from importlib import metadata\n"
        "real = metadata.version\n"
        "metadata.version = lambda name: '9.9.9' if name == 'aiokafka' else real(name)\n"
        "from streams.app import create_app\n"
        "from streams.settings import load_settings\n"
        "create_app(load_settings())\n"
    )
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "CREDENCE_DATA_DIR": str(tmp_path), "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "aiokafka 9.9.9, tested: 0.14.0" in result.stderr
    assert not list(tmp_path.iterdir())  # refused before the app made its data directory
