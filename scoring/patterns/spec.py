"""Reading one signal entry of ``rules.yaml``: typed getters that name the rule and
the field in every error, conditions compiled once into plain predicates, durations.

Each getter records the value it read in canonical form (durations in ms), so that
the rule's version is a hash of what it means, not of how it was spelt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from scoring.schema import RecordSchema

#: a condition on one event's fields (``Event.fields``)
Condition = Callable[[Mapping[str, Any]], bool]

_DURATION = re.compile(r"([1-9][0-9]{0,8})([smhd])")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_ORDERING = {
    "gt": lambda want: lambda v: _is_number(v) and v > want,
    "ge": lambda want: lambda v: _is_number(v) and v >= want,
    "lt": lambda want: lambda v: _is_number(v) and v < want,
    "le": lambda want: lambda v: _is_number(v) and v <= want,
}
OPERATORS = (*_ORDERING, "in", "regex")
#: fields every event carries that a rule cannot name (they are not in ``Event.fields``)
_ENVELOPE = frozenset({"event_id", "ts", "customer_id"})


class CatalogueError(ValueError):
    """``rules.yaml`` cannot be used; the message names the rule and the field."""


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _fold(value: Any) -> Any:
    """Strings compare case-insensitively."""
    return value.lower() if isinstance(value, str) else value


class Spec:
    """One signal entry being read; :meth:`finish` refuses keys nobody read."""

    def __init__(self, entry: Mapping[str, Any], rule_id: str, schema: RecordSchema) -> None:
        self.entry = entry
        self.rule_id = rule_id
        self.schema = schema
        self.canonical: dict[str, Any] = {}
        self._read: set[str] = set()

    def error(self, key: str, message: str) -> CatalogueError:
        return CatalogueError(f"signal {self.rule_id!r}: {key}: {message}")

    def _take(self, key: str, required: bool = True) -> Any:
        self._read.add(key)
        if key not in self.entry:
            if required:
                raise self.error(key, "missing (required)")
            return None
        return self.entry[key]

    def finish(self) -> None:
        unknown = sorted(set(self.entry) - self._read, key=str)
        if unknown:
            raise self.error(str(unknown[0]), "unknown key")

    def string(self, key: str) -> str:
        value = self._take(key)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        self.canonical[key] = value
        return value

    def integer(self, key: str, minimum: int | None = None) -> int:
        value = self._take(key)
        if type(value) is not int or (minimum is not None and value < minimum):
            wanted = "an integer" if minimum is None else f"an integer >= {minimum}"
            raise self.error(key, f"expected {wanted}, got {value!r}")
        self.canonical[key] = value
        return value

    def duration(self, key: str) -> int:
        """``<n>s|m|h|d`` in milliseconds."""
        value = self._take(key)
        found = _DURATION.fullmatch(value) if isinstance(value, str) else None
        if found is None:
            raise self.error(key, f"expected a duration <n>s|m|h|d (e.g. 48h), got {value!r}")
        ms = int(found[1]) * _UNIT_MS[found[2]]
        self.canonical[key] = ms
        return ms

    def field(self, key: str) -> str:
        """The name of a field of the rule's topic."""
        name = self._take(key)
        self._check_field(key, name)
        self.canonical[key] = name
        return str(name)

    def values(self, key: str) -> tuple[Any, ...]:
        """A non-empty list of distinct scalars (strings folded)."""
        value = self._take(key)
        if not isinstance(value, list) or not value or not all(_scalar(v) for v in value):
            raise self.error(key, f"expected a non-empty list of strings or numbers, got {value!r}")
        folded = tuple(dict.fromkeys(_fold(v) for v in value))
        if len(folded) != len(value):
            raise self.error(key, "values repeat")
        self.canonical[key] = list(folded)
        return folded

    def regex(self, key: str, required: bool = True) -> re.Pattern[str] | None:
        value = self._take(key, required)
        if value is None:
            return None
        pattern = self._compile(key, value)
        self.canonical[key] = value
        return pattern

    def condition(self, key: str) -> tuple[Condition, dict[str, Any]]:
        """A mapping of field -> value or ``{operator: operand}``, compiled into one
        predicate; also returned as read (canonical), for kinds that look inside."""
        return self._condition(key, self._take(key))

    def optional_condition(self, key: str) -> Condition | None:
        value = self._take(key, required=False)
        return None if value is None else self._condition(key, value)[0]

    def _condition(self, key: str, value: Any) -> tuple[Condition, dict[str, Any]]:
        if not isinstance(value, dict) or not value:
            raise self.error(key, f"expected a mapping of field names to values, got {value!r}")
        tests: list[tuple[str, Callable[[Any], bool]]] = []
        canonical: dict[str, Any] = {}
        for name, want in value.items():
            where = f"{key}.{name}"
            self._check_field(where, name)
            test, canonical[name] = self._test(where, name, want)
            tests.append((name, test))
        self.canonical[key] = canonical
        return _all_of(tests), canonical

    def _test(self, where: str, name: str, want: Any) -> tuple[Callable[[Any], bool], Any]:
        if _scalar(want):
            folded = _fold(want)
            if isinstance(folded, str):
                return (lambda v: isinstance(v, str) and v.lower() == folded), folded
            return (lambda v: _is_number(v) and v == folded), folded
        if not isinstance(want, dict) or len(want) != 1:
            raise self.error(where, f"expected a value or one operator ({', '.join(OPERATORS)}), got {want!r}")
        ((op, operand),) = want.items()
        if op in _ORDERING:
            if not _scalar(operand) or isinstance(operand, str):
                raise self.error(f"{where}.{op}", f"expected a number, got {operand!r}")
            if self.schema.spec(name).type != "number":
                raise self.error(f"{where}.{op}", f"{name} is not a number field")
            return _ORDERING[op](operand), {op: operand}
        if op == "in":
            if not isinstance(operand, list) or not operand or not all(_scalar(v) for v in operand):
                raise self.error(f"{where}.in", f"expected a non-empty list of values, got {operand!r}")
            allowed = frozenset(_fold(v) for v in operand)
            return (lambda v: v is not None and _fold(v) in allowed), {"in": sorted(allowed, key=repr)}
        if op == "regex":
            pattern = self._compile(f"{where}.regex", operand)
            return (lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None), {"regex": operand}
        raise self.error(where, f"unknown operator {op!r} (expected one of {', '.join(OPERATORS)})")

    def _compile(self, where: str, value: Any) -> re.Pattern[str]:
        if not isinstance(value, str):
            raise self.error(where, f"expected a regular expression string, got {value!r}")
        try:
            return re.compile(value)
        except re.error as exc:
            raise self.error(where, f"bad regular expression {value!r}: {exc}") from exc

    def _check_field(self, where: str, name: Any) -> None:
        if not isinstance(name, str) or name in _ENVELOPE or name not in self.schema.names:
            known = ", ".join(n for n in self.schema.names if n not in _ENVELOPE)
            raise self.error(where, f"unknown field {name!r} for topic {self.schema.topic} (one of {known})")


def _scalar(value: Any) -> bool:
    return isinstance(value, str) or _is_number(value)


def _all_of(tests: list[tuple[str, Callable[[Any], bool]]]) -> Condition:
    if len(tests) == 1:
        ((name, test),) = tests
        return lambda fields: test(fields.get(name))
    if len(tests) == 2:  # the common case, without all()'s generator (once per event)
        (first, test_first), (second, test_second) = tests
        return lambda fields: test_first(fields.get(first)) and test_second(fields.get(second))
    return lambda fields: all(test(fields.get(name)) for name, test in tests)
