"""Water-level targets from the rules file (``scoring.rollup.water_targets``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.rollup.water_targets import load_water_levels


def test_the_project_rules_file_targets_technical_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENCE_RULES_FILE", raising=False)
    assert load_water_levels() == {"tech_request": 0.95}


@pytest.mark.parametrize(("text", "expected"), [
    ("water_levels: {tech_request: 0.9, legal_review: 1}", {"tech_request": 0.9, "legal_review": 1.0}),
    ("water_levels: {tech_request: 0}", {"tech_request": 0.0}),
    ("water_levels: {}", {}),
    ("signals: []", {}),  # no targets: levels are published without one
    ("", {}),
])
def test_targets_from_the_file_named_by_the_environment(
    text: str, expected: dict[str, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    monkeypatch.setenv("CREDENCE_RULES_FILE", str(path))
    assert load_water_levels() == expected


@pytest.mark.parametrize(("text", "names"), [
    ("water_levels: {tech_request: 1.5}", "water_levels.tech_request"),
    ("water_levels: {tech_request: -0.1}", "water_levels.tech_request"),
    ("water_levels: {tech_request: .nan}", "water_levels.tech_request"),
    ("water_levels: {tech_request: high}", "water_levels.tech_request"),
    ("water_levels: {tech_request: true}", "water_levels.tech_request"),
    ("water_levels: [tech_request]", "water_levels"),
])
def test_a_bad_target_names_its_entry(text: str, names: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=names):
        load_water_levels(path)
