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
    doc = schema.decode(raw)
    event_id = doc.pop("event_id", None)
    ts = doc.pop("ts", None)
    customer_id = doc.pop("customer_id", None)
    if customer_id is None:
        raise InvalidEvent("missing_field", "customer_id")
    return Event(
        topic=schema.topic,
        event_id=event_id if event_id is not None else "",
        ts=ts if ts is not None else 0,
        customer_id=customer_id,
        fields=doc,
    )
