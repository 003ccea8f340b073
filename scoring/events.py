"""Validated input events and the evidence they leave in signal deltas."""

from __future__ import annotations

from typing import Any, NamedTuple

from scoring.schema import InvalidEvent, RecordSchema


class Evidence(NamedTuple):
    """A reference to one input event that made a signal fire."""

    event_id: str
    topic: str
    ts: int
    ip: str | None

    def to_list(self) -> list[Any]:
        return [self.event_id, self.topic, self.ts, self.ip]

    @classmethod
    def from_list(cls, row: list[Any]) -> Evidence:
        return cls(row[0], row[1], row[2], row[3])


class Event(NamedTuple):
    """One validated input record. ``fields`` holds every other (normalised) field."""

    topic: str
    event_id: str
    ts: int
    customer_id: str
    fields: dict[str, Any]

    def get(self, name: str) -> Any:
        return self.fields.get(name)

    @property
    def evidence(self) -> Evidence:
        return Evidence(self.event_id, self.topic, self.ts, self.fields.get("ip"))


def decode_event(schema: RecordSchema, raw: bytes | None) -> Event:
    """Decode a behaviour or directory record into an :class:`Event`.

    Raises :class:`InvalidEvent` with a reason code when the record is unusable.
    """
    return event_of(schema.topic, schema.decode(raw))


def event_of(topic: str, doc: dict[str, Any]) -> Event:
    """The :class:`Event` of a decoded behaviour or directory value (taken apart)."""
    event_id = doc.pop("event_id", None)
    ts = doc.pop("ts", None)
    customer_id = doc.pop("customer_id", None)
    if customer_id is None:
        raise InvalidEvent("missing_field", "customer_id")
    return Event(
        topic=topic,
        event_id=event_id if event_id is not None else "",
        ts=ts if ts is not None else 0,
        customer_id=customer_id,
        fields=doc,
    )


def check_key(key: bytes | None, doc: dict[str, Any], field: str) -> None:
    """SPEC: the message key is the value's ``customer_id`` (``team_id`` for
    ``forecast-outcome``), compared exactly as UTF-8. Any other key would put the
    customer's state on another partition than its other records."""
    expected = doc.get(field)
    if key is None:
        raise InvalidEvent("key_mismatch", f"no message key; expected the value's {field}")
    if expected is None or key != expected.encode():
        shown = key[:80].decode("utf-8", "replace")
        raise InvalidEvent("key_mismatch", f"message key {shown!r} is not the value's {field} {expected!r}")
