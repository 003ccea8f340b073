"""The start-up guard: the overrides in ``streams/faust_ext/`` were written against
these exact versions of Faust and its Kafka client, and rely on their internals; a
worker refuses to start on any other unless ``CREDENCE_ALLOW_UNTESTED_FAUST=1``.

Upgrading: change the pins in ``pyproject.toml`` and :data:`TESTED` together, read the
private names each module's docstring lists against the new sources, and run the
contract tests (``tests/unit/test_faust_contract.py``, ``test_transport_*``) and the
integration tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib import metadata

#: distribution -> the version the overrides were written and tested against
TESTED: Mapping[str, str] = {
    "faust-streaming": "0.15.3",
    "mode-streaming": "0.7.1",
    "aiokafka": "0.14.0",
}
ALLOW_ENV = "CREDENCE_ALLOW_UNTESTED_FAUST"

log = logging.getLogger(__name__)


def installed_versions() -> dict[str, str | None]:
    """The installed version of each distribution in :data:`TESTED` (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in TESTED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def mismatches(installed: Mapping[str, str | None]) -> list[str]:
    """One line per distribution whose installed version is not the tested one."""
    return [
        f"{name} {installed.get(name) or '(not installed)'}, tested: {tested}"
        for name, tested in TESTED.items()
        if installed.get(name) != tested
    ]


def check(installed: Mapping[str, str | None] | None = None,
          environ: Mapping[str, str] = os.environ) -> None:
    """Raise SystemExit (status 1, the message on stderr) on an untested version, unless
    ``CREDENCE_ALLOW_UNTESTED_FAUST=1``, when it only logs a warning."""
    wrong = mismatches(installed_versions() if installed is None else installed)
    if not wrong:
        return
    if environ.get(ALLOW_ENV) == "1":
        log.warning("running on untested versions (%s=1): %s", ALLOW_ENV, "; ".join(wrong))
        return
    raise SystemExit(
        "Credence overrides internals of Faust and aiokafka (streams/faust_ext/) and was "
        "tested only with other versions than those installed:\n  " + "\n  ".join(wrong)
        + f"\nInstall the tested versions, or set {ALLOW_ENV}=1 to start anyway at your own risk."
    )
