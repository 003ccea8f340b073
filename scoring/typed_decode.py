"""The decoder's fast path: one msgspec type per input schema, which parses and
checks a value in C, and the few checks msgspec cannot express, in Python.

It only ever accepts: a record it cannot take as it is goes to the generic path
(:meth:`scoring.schema.RecordSchema.validate`), which says what is wrong or, for what
the fast path leaves to it, accepts the record. It refuses, among others, every
unknown field: msgspec would skip its value without the checks orjson (the generic
path's parser) makes (UTF-8, numbers beyond a double), and nothing reads such fields.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Protocol

import msgspec

from scoring.timeutil import MAX_MS, MIN_MS, TimestampError, parse_ts

#: orjson's integers: beyond these it gives a float (or fails), so they are left to it
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = sys.float_info.max
#: timestamp strings parse_ts reads at most
_TS_CHARS = 64

_to_builtins = msgspec.to_builtins


class FieldSpec(Protocol):
    """What the decoder reads of a :class:`scoring.schema.FieldSpec` (which imports this module)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def max_length(self) -> int | None: ...
    @property
    def min_length(self) -> int: ...
    @property
    def lower(self) -> bool: ...
    @property
    def minimum(self) -> float | None: ...
    @property
    def exclusive_min(self) -> bool: ...
    @property
    def values(self) -> frozenset[str]: ...
    @property
    def pattern(self) -> re.Pattern[str] | None: ...


class Refused(ValueError):
    """The fast path does not take this record (the generic path decides)."""


#: a check msgspec cannot make: the value to keep, or :class:`Refused`
Fix = Callable[[Any], Any]


def _string_type(spec: FieldSpec) -> Any:
    if spec.max_length is None:
        return str
    return Annotated[str, msgspec.Meta(max_length=spec.max_length)]


def _number_type(spec: FieldSpec) -> Any:
    low, exclusive = spec.minimum, spec.exclusive_min
    if low is None:
        ints = msgspec.Meta(ge=_INT_MIN, le=_INT_MAX)
        floats = msgspec.Meta(ge=-_FLOAT_MAX, le=_FLOAT_MAX)
    elif exclusive:
        ints = msgspec.Meta(gt=max(math.floor(low), _INT_MIN - 1), le=_INT_MAX)
        floats = msgspec.Meta(gt=float(low), le=_FLOAT_MAX)
    else:
        ints = msgspec.Meta(ge=max(math.ceil(low), _INT_MIN), le=_INT_MAX)
        floats = msgspec.Meta(ge=float(low), le=_FLOAT_MAX)
    return Annotated[int, ints] | Annotated[float, floats]


def _msgspec_type(spec: FieldSpec) -> Any:
    if spec.type == "timestamp":
        return Annotated[int, msgspec.Meta(ge=MIN_MS, le=MAX_MS)] | Annotated[str, msgspec.Meta(max_length=_TS_CHARS)]
    if spec.type == "number":
        return _number_type(spec)
    return _string_type(spec)


def _timestamp(value: str) -> int:
    try:
        return parse_ts(value)
    except TimestampError:
        raise Refused from None


def _string_fix(spec: FieldSpec) -> Fix | None:
    """What a string or enum value needs beyond its length limit (``None``: nothing)."""
    shortest, pattern, lower = spec.min_length, spec.pattern, spec.lower
    values = spec.values if spec.type == "enum" else None
    if not shortest and pattern is None and not lower and values is None:
        return None

    def fix(value: str) -> str:
        if shortest and len(value.strip()) < shortest:
            raise Refused
        if values is not None:
            folded = value.lower()
            if folded not in values:
                raise Refused
            return folded
        if pattern is not None and pattern.fullmatch(value) is None:
            raise Refused
        return value.lower() if lower else value

    return fix


class TypedDecoder:
    """Decode one topic's value: the validated fields, declared ones only."""

    __slots__ = ("_decode", "_fixes", "_lower", "_nonblank", "_times")

    def __init__(self, topic: str, fields: Iterable[FieldSpec]) -> None:
        members: list[tuple[str, Any, Any]] = []
        fixes: list[tuple[str, Fix]] = []
        #: the checks most fields need, made inline in decode: no call per field
        times, nonblank, lower = [], [], []
        for spec in fields:
            kind = _msgspec_type(spec)
            if spec.required:
                members.append((spec.name, kind, msgspec.NODEFAULT))
            else:  # absent stays out of the dict (UNSET); null is dropped after
                members.append((spec.name, kind | None | msgspec.UnsetType, msgspec.UNSET))
            plain = spec.type == "string" and spec.pattern is None
            if spec.type == "timestamp":
                times.append(spec.name)
            elif plain and spec.min_length == 1 and not spec.lower:
                nonblank.append(spec.name)
            elif plain and not spec.min_length and spec.lower:
                lower.append(spec.name)
            elif spec.type != "number" and (fix := _string_fix(spec)) is not None:
                fixes.append((spec.name, fix))
        struct = msgspec.defstruct(
            "Value_" + topic.replace("-", "_"), members, kw_only=True, forbid_unknown_fields=True
        )
        self._decode = msgspec.json.Decoder(struct).decode
        self._times, self._nonblank, self._lower = tuple(times), tuple(nonblank), tuple(lower)
        self._fixes = tuple(fixes)

    def decode(self, raw: bytes) -> dict[str, Any] | None:
        """The value's fields, or ``None`` if the fast path does not take it."""
        try:
            doc: dict[str, Any] = _to_builtins(self._decode(raw))
            self._fix(doc, raw)
        except (msgspec.MsgspecError, ValueError):  # ValueError: bad UTF-8, or Refused
            return None
        return doc

    def _fix(self, doc: dict[str, Any], raw: bytes) -> None:
        if b"null" in raw:  # an optional field given as null: as if absent
            for name in [name for name, value in doc.items() if value is None]:
                del doc[name]
        for name in self._times:
            value = doc.get(name)
            if value is not None and value.__class__ is not int:
                doc[name] = _timestamp(value)
        for name in self._nonblank:
            value = doc.get(name)
            if value is not None and (not value or value.isspace()):  # blank: len(value.strip()) < 1
                raise Refused
        for name in self._lower:
            value = doc.get(name)
            if value is not None:
                doc[name] = value.lower()
        for name, fix in self._fixes:
            value = doc.get(name)
            if value is not None:
                doc[name] = fix(value)
