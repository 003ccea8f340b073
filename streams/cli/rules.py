"""``credence rules ...``: commands on a signal catalogue (rules.yaml)."""

from __future__ import annotations

import argparse
import sys

from scoring.signal_catalogue import SignalCatalogue


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``rules`` to ``credence``'s commands; returns its own subcommands."""
    rules = commands.add_parser("rules", help="check a signal catalogue (rules.yaml)")
    sub = rules.add_subparsers(dest="rules_command", required=True)
    check = sub.add_parser("check", help="validate a rules file: exit 0 and a summary, or 1 naming the rule and field")
    check.add_argument("file", nargs="?", help="the rules file (default: --rules, else CREDENCE_RULES_FILE, else rules.yaml)")
    check.add_argument("--rules", dest="rules_file", metavar="FILE", help="the same as FILE")
    check.set_defaults(func=cmd_check)
    return sub


def cmd_check(args: argparse.Namespace) -> int:
    from streams.settings import SettingsError, load_rules, load_settings, rules_path

    try:
        settings = load_settings()
        path = rules_path(settings, args.file or args.rules_file)
        catalogue = load_rules(settings, path)
    except SettingsError as exc:
        print(f"credence rules check: {exc}", file=sys.stderr)
        return 1
    print(summary(path, catalogue))
    return 0


def summary(path: str, catalogue: SignalCatalogue) -> str:
    lines = [f"{path}: {len(catalogue.rules)} signal(s), valid"]
    for rule in catalogue.rules:
        lines.append(f"  {rule.rule_id:<24} {rule.points:+5d}  {rule.kind:<9} {rule.topic:<14} version {rule.version}")
    for action, target in catalogue.water_levels.items():
        lines.append(f"  water level {action}: target {target:g}")
    return "\n".join(lines)
