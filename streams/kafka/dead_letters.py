"""Dead-letter records of the live worker (the pure builder: :mod:`scoring.dead_letters`)."""

from __future__ import annotations

from scoring.catalog import DEAD_LETTER
from scoring.dead_letters import DeadLetter, dead_letter
from streams.faust_ext.transport import Record
from streams.kafka.topics import catalog


def dead_letter_record(record: Record, topic: str, reason: str, detail: str, now_ms: int) -> DeadLetter:
    """The ``dead-letter`` key and value for ``record``, below the topic's size limit."""
    return dead_letter(
        topic, record.partition, record.offset, record.key, record.value, reason, detail, now_ms,
        catalog[DEAD_LETTER].value_budget,
    )
