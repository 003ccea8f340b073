"""``credence rules diff``: arguments, the table, the JSON object, errors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from scoring.timeutil import format_ts
from streams.cli import rules_diff as cli_rules
from streams.cli.main import main
from streams.settings import Settings
from tests.unit.rulediff_fixtures import (
    DRAFT,
    EXPECTED,
    NOW,
    log_text,
    rules,
    rules_files,
    scenario,
    summarised,
)


@pytest.fixture
def files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CREDENCE_RULES_FILE", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    rules_files(monkeypatch, tmp_path)


@pytest.fixture
def log(tmp_path: Path) -> str:
    path = tmp_path / "events.jsonl"
    path.write_bytes(log_text(scenario()))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["rules", "diff", *args]) == 0
    return capsys.readouterr().out


def test_json_is_the_diff_and_nothing_else(files: None, log: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "draft.yaml", "--rules", "current.yaml", "--log", log, "--now", format_ts(NOW), "--json")
    assert summarised(orjson.loads(out)) == EXPECTED


@pytest.mark.parametrize(("env", "changes"), [({}, True), ({"CREDENCE_RULES_FILE": "draft.yaml"}, False)])
def test_the_current_rules_are_what_a_worker_would_load(
    files: None, log: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str], changes: bool,
) -> None:  # fmt: skip
    """Without --rules: CREDENCE_RULES_FILE, else the project's rules.yaml (SPEC's)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    report = orjson.loads(run(capsys, "draft.yaml", "--log", log, "--now", str(NOW), "--json"))
    assert (summarised(report) == EXPECTED) is changes
    assert bool(report["deltas_added"]) is changes


def test_the_table(files: None, log: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "draft.yaml", "--log", log, "--now", str(NOW))
    assert out == """\
  signal          before  after  change
  decision_chain  2       2      0
  high_intent     2       2      0
  risk            1       0      -1
  urgency         1       1      0

deltas added: 3
  ts                        customer  signal       points
  2026-11-26T11:30:00.000Z  C1        high_intent  +10
  2026-11-26T14:30:00.000Z  C2        urgency      +4
  2026-11-28T13:30:00.000Z  C3        high_intent  +10

deltas removed: 4
  ts                        customer  signal       points
  2026-11-26T11:30:00.000Z  C1        high_intent  +8
  2026-11-26T14:30:00.000Z  C2        urgency      +6
  2026-11-28T09:30:00.000Z  C3        risk         -5
  2026-11-28T13:30:00.000Z  C3        high_intent  +8

customers whose 30-day net points change: 3 (largest change first)
  customer  before  after  change
  C3        15      22     +7
  C1        8       10     +2
  C2        18      16     -2

procurement alerts gained: C3
procurement alerts lost: C2

teams whose score or band changes: 1
  team  before     after
  T2    57.69 red  84.62 yellow
"""


def test_long_lists_are_cut_in_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_rules, "ROWS", 2)
    out = cli_rules.report(scenario(), rules(), rules(**DRAFT), Settings(), NOW, as_json=False)
    assert "deltas removed: 4\n" in out
    assert out.count("... and 2 more (--json lists all)") == 1
    assert "... and 1 more (--json lists all)" in out  # deltas added, customers


def test_nothing_to_report(files: None, log: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "current.yaml", "--log", log, "--now", str(NOW))
    assert "deltas added: 0\n\ndeltas removed: 0\n" in out
    assert out.endswith("procurement alerts gained: -\nprocurement alerts lost: -\n\n"
                        "teams whose score or band changes: 0\n")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["broken.yaml"], "credence rules diff: bad rules file: broken.yaml: signal 'decision_chain': within: "
                          "expected a duration"),
        (["draft.yaml", "--rules", "broken.yaml"], "credence rules diff: bad rules file: broken.yaml: signal 'decision_chain'"),
        (["draft.yaml", "--log", "/nonexistent/events.jsonl"], "credence rules diff: /nonexistent/events.jsonl: "),
        (["draft.yaml"], "credence rules diff: KAFKA_BOOTSTRAP_SERVERS is not set (or use --log)"),
        (["draft.yaml", "--log", "LOG", "--now", "yesterday"], "credence: --now: "),
    ],
)  # fmt: skip
def test_errors_exit_1_with_the_reason(
    files: None, log: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rules", "diff", *[log if a == "LOG" else a for a in args]])
    assert str(exited.value.code).startswith(message)  # sys.exit(text): text on stderr, status 1
    assert capsys.readouterr().out == ""


def test_a_bad_log_line_is_an_error(files: None, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(log_text(scenario()[:2]) + b"not json\n")
    with pytest.raises(SystemExit, match=r"bad\.jsonl: log line 3: not a"):
        main(["rules", "diff", "draft.yaml", "--log", str(path)])


@pytest.mark.parametrize("command", [["rules", "diff", "draft.yaml", "--rules", "current.yaml"], ["replay", "--rules", "draft.yaml"]])
def test_named_rules_do_not_read_the_workers_file(
    files: None, log: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str],
) -> None:  # fmt: skip
    """A command given its rules reads only those: a broken CREDENCE_RULES_FILE is not its concern."""
    monkeypatch.setenv("CREDENCE_RULES_FILE", "broken.yaml")
    args = [*command, log] if command[0] == "replay" else [*command, "--log", log]
    assert main([*args, "--now", str(NOW)]) == 0
    assert capsys.readouterr().out


def test_settings_read_the_rules_file_once(files: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's check, its signal processor and the roll-up's targets share one read."""
    from streams import settings as settings_module

    monkeypatch.setenv("CREDENCE_RULES_FILE", "draft.yaml")
    reads: list[str] = []
    read = settings_module.read_rules
    monkeypatch.setattr(settings_module, "read_rules", lambda source: reads.append(source) or read(source))
    settings = settings_module.load_settings()
    assert settings_module.load_rules(settings) is settings.rules
    assert settings.rollup.water_targets == settings.rules.water_levels
    assert reads == ["draft.yaml"]
