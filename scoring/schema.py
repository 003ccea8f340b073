"""Record validation built from the declarative schemas in ``topics.yaml``."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from scoring.timeutil import MAX_MS as _MAX_MS
from scoring.timeutil import MIN_MS as _MIN_MS
from scoring.timeutil import TimestampError, parse_ts

#: SPEC: messages over 64 KiB go to dead-letter.
MAX_MESSAGE_BYTES = 64 * 1024

#: Every reason validation gives a record it rejects (docs/contract.md, bad input).
REASONS = frozenset({
    "missing_value", "too_large", "invalid_json", "not_an_object", "missing_field", "wrong_type",
    "bad_timestamp", "bad_value", "field_too_long", "future_event", "key_mismatch",
})  # fmt: skip


class InvalidEvent(ValueError):
    """An input record Credence cannot use; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a record schema, as declared in ``topics.yaml``."""

    name: str
    type: str
    required: bool = False
    max_length: int | None = None
    min_length: int = 0
    lower: bool = False
    minimum: float | None = None
    exclusive_min: bool = False
    values: frozenset[str] = frozenset()
    #: a string must match this in full (``re.ASCII``: ``[0-9]`` and ``\\d`` alike are ASCII)
    pattern: re.Pattern[str] | None = None
    #: an event time: at most the configured skew ahead of the wall clock (``future_event``)
    not_future: bool = False

    @classmethod
    def from_yaml(cls, name: str, spec: Mapping[str, Any]) -> FieldSpec:
        kind = spec["type"]
        if kind not in {"string", "number", "timestamp", "enum"}:
            raise ValueError(f"field {name}: unknown type {kind!r}")
        return cls(
            name=name,
            type=kind,
            required=bool(spec.get("required", False)),
            max_length=spec.get("max_length"),
            min_length=int(spec.get("min_length", 0)),
            lower=bool(spec.get("lower", False)),
            minimum=spec.get("min"),
            exclusive_min=bool(spec.get("exclusive_min", False)),
            values=frozenset(str(v).lower() for v in spec.get("values", ())),
            pattern=re.compile(spec["pattern"], re.ASCII) if "pattern" in spec else None,
            not_future=bool(spec.get("not_future", False)),
        )

    def coerce(self, value: Any) -> Any:
        """Return the validated, normalised value or raise :class:`InvalidEvent`."""
        if self.type == "timestamp":
            try:
                return parse_ts(value)
            except TimestampError as exc:
                raise InvalidEvent("bad_timestamp", f"{self.name}: {exc}") from exc
        if self.type == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidEvent("wrong_type", f"{self.name}: expected a number")
            if not math.isfinite(value):
                raise InvalidEvent("bad_value", f"{self.name}: not finite")
            if self.minimum is not None and (
                value < self.minimum or (self.exclusive_min and value == self.minimum)
            ):
                bound = ">" if self.exclusive_min else ">="
                raise InvalidEvent("bad_value", f"{self.name}: must be {bound} {self.minimum}")
            return value
        if not isinstance(value, str):
            raise InvalidEvent("wrong_type", f"{self.name}: expected a string")
        if self.max_length is not None and len(value) > self.max_length:
            raise InvalidEvent(
                "field_too_long", f"{self.name}: {len(value)} chars > {self.max_length}"
            )
        if len(value.strip()) < self.min_length:
            raise InvalidEvent("bad_value", f"{self.name}: empty")
        if self.type == "enum":
            folded = value.lower()
            if folded not in self.values:
                raise InvalidEvent(
                    "bad_value", f"{self.name}: {value!r} not one of {sorted(self.values)}"
                )
            return folded
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            raise InvalidEvent("bad_value", f"{self.name}: {value!r} does not match {self.pattern.pattern}")
        return value.lower() if self.lower else value

    def compile(self) -> Callable[[Any], Any]:
        """:meth:`coerce` specialised to this field: the checks a valid value passes,
        inline; anything else goes to :meth:`coerce`, which says what is wrong.

        Validation runs several times per event, and the generic method's type dispatch
        was a tenth of the worker's time.
        """
        coerce = self.coerce
        if self.type == "timestamp":

            def check_timestamp(value: Any) -> Any:
                if value.__class__ is int and _MIN_MS <= value <= _MAX_MS:
                    return value
                return coerce(value)

            return check_timestamp
        if self.type == "number":
            minimum = -math.inf if self.minimum is None else self.minimum
            exclusive = self.exclusive_min

            def check_number(value: Any) -> Any:
                cls = value.__class__
                if (cls is int or (cls is float and -math.inf < value < math.inf)) and (
                    value > minimum or (value == minimum and not exclusive)
                ):
                    return value
                return coerce(value)

            return check_number
        if self.type == "enum" or self.min_length or self.pattern is not None:
            return coerce  # rare fields: the generic path
        longest = self.max_length if self.max_length is not None else math.inf
        lower = self.lower

        def check_string(value: Any) -> Any:
            if value.__class__ is str and len(value) <= longest:
                return value.lower() if lower else value
            return coerce(value)

        return check_string


@dataclass(frozen=True, slots=True)
class RecordSchema:
    """The fields of one topic's JSON value."""

    topic: str
    fields: tuple[FieldSpec, ...]
    _checks: tuple[tuple[str, bool, Callable[[Any], Any]], ...] = field(
        init=False, repr=False, compare=False
    )
    #: the fields declared ``not_future``
    _event_times: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checks = tuple((f.name, f.required, f.compile()) for f in self.fields)
        object.__setattr__(self, "_checks", checks)
        object.__setattr__(self, "_event_times", tuple(f.name for f in self.fields if f.not_future))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def spec(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)

    @classmethod
    def from_yaml(cls, topic: str, spec: Mapping[str, Mapping[str, Any]]) -> RecordSchema:
        return cls(topic, tuple(FieldSpec.from_yaml(n, s) for n, s in spec.items()))

    def decode(self, raw: bytes | None, latest: int | None = None) -> dict[str, Any]:
        """Parse and validate a raw message value; unknown fields are kept as they are.

        Absent optional fields and explicit ``null`` are treated alike (omitted). With
        ``latest`` (epoch ms: the wall clock plus the allowed skew), an event time after
        it is a ``future_event``.
        """
        if raw is None:
            raise InvalidEvent("missing_value", "message has no value")
        if len(raw) > MAX_MESSAGE_BYTES:
            raise InvalidEvent("too_large", f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent("invalid_json", str(exc)) from exc
        if not isinstance(doc, dict):
            raise InvalidEvent("not_an_object", f"JSON {type(doc).__name__}, expected object")
        for name, required, check in self._checks:
            value = doc.get(name)
            if value is None:
                if required:
                    raise InvalidEvent("missing_field", name)
                doc.pop(name, None)
                continue
            checked = check(value)
            if checked is not value:  # normalised (lower case, epoch ms)
                doc[name] = checked
        if latest is not None:
            for name in self._event_times:
                ts = doc.get(name)
                if ts is not None and ts > latest:
                    raise InvalidEvent("future_event", f"{name}: {ts} is after {latest} (wall clock + skew)")
        return doc
