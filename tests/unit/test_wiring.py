"""The house's structure: importing a module registers nothing (``build_app`` in
``streams/wiring.py`` puts everything on the app), no import cycles, and the rooms of
``streams/`` import only downwards."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

#: the rooms of ``streams/``, lowest first: a module imports from its own room or lower ones
ROOMS = (
    ("streams.settings", "streams.processes"),
    ("streams.faust_ext",),
    ("streams.ops",),
    ("streams.kafka",),
    ("streams.app",),
    ("streams.processing",),
    ("streams.web",),
    ("streams.wiring",),
    ("streams.cli",),
)

_IMPORT_ALL_THEN_BUILD = """
import gc, importlib, json, pkgutil
import faust, streams

for module in pkgutil.walk_packages(streams.__path__, "streams."):
    importlib.import_module(module.name)
apps_on_import = sum(isinstance(o, faust.App) for o in gc.get_objects())

from streams.faust_ext import transport
from streams.settings import load_settings
from streams.wiring import build_app

app = build_app(load_settings())
print(json.dumps({
    "apps_on_import": apps_on_import,
    "agents": sorted(app.agents),
    "tables": sorted(app.tables),
    "timers": sorted(task.__name__ for task in app._app_tasks),
    "pages": sorted(app.web.views),
    "sensors": sorted(type(sensor).__name__ for sensor in app.sensors),
    "batch_topics": sorted(transport.Consumer.batch_handlers),
    "rocksdb": {name: [getattr(table.data.rocksdb_options, option) for option in (
        "write_buffer_size", "max_write_buffer_number", "block_cache_size")] for name, table in app.tables.items()},
    "producer_max_batch_size": app.conf.producer_max_batch_size,
}))
"""


def test_importing_registers_nothing_and_build_app_registers_the_worker(tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "CREDENCE_DATA_DIR": str(tmp_path),
           "CREDENCE_TOPIC_PREFIX": "p.", "PATH": ""}
    result = subprocess.run([sys.executable, "-c", _IMPORT_ALL_THEN_BUILD], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    built = json.loads(result.stdout.splitlines()[-1])
    assert built == {
        "apps_on_import": 0,
        "agents": ["streams.processing.team_agent.score_teams"],
        "tables": ["customer-signal-state", "team-state"],
        "timers": ["consumer_lag_timer", "flush_state", "risk_timer", "sweep_frozen", "team_clock"],
        "pages": ["/heatmap", "/heatmap.json", "/metrics", "/teams", "/teams/{team_id}",
                  "/teams/{team_id}/traceability.csv"],
        "sensors": ["RestoreWatchdog", "_RefreshAfterRebalance"],
        "batch_topics": ["credence-customer-signal-state-changelog", "credence-team-state-changelog"]  # restores
        + [f"p.{name}" for name in sorted((
            "credence-risk-ticks", "customer-directory", "document-open", "forecast-outcome", "role-login",
            "rush-delivery", "sales-action", "stale-update"))],
        # bounded memory per table partition (streams/faust_ext/table_options.py), big producer batches
        "rocksdb": {"customer-signal-state": [32 << 20, 2, 8 << 20], "team-state": [32 << 20, 2, 8 << 20]},
        "producer_max_batch_size": 512 * 1024,
    }


def _modules() -> dict[str, Path]:
    modules = {}
    for package in ("scoring", "streams"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return modules


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each module's imports of the others, wherever in the module they are."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    targets.add(submodule if submodule in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(graph[module]):
            if (found := visit(target)) is not None:
                return found
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if (found := visit(module)) is not None:
            return found
    return None


def test_no_module_imports_itself_through_others() -> None:
    assert _cycle(_imports(_modules())) is None


@pytest.mark.parametrize(("graph", "cycle"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": set(), "b": {"b"}}, ["b", "b"]),
])
def test_the_cycle_check_finds_cycles(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert _cycle(graph) == cycle


def _room(module: str) -> int:
    for level, prefixes in enumerate(ROOMS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{module} is in no room of ROOMS")


def test_the_rooms_of_streams_import_only_downwards() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in _imports(_modules()).items() if module.startswith("streams.")
        for target in sorted(targets) if target.startswith("streams.") and _room(target) > _room(module)
    ]
    assert upward == []


def test_scoring_imports_nothing_of_streams() -> None:
    assert [
        f"{module} -> {target}"
        for module, targets in _imports(_modules()).items() if module.startswith("scoring")
        for target in targets if target.startswith("streams")
    ] == []
