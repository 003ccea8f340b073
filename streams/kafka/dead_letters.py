"""Dead letters of the live worker: counted, logged when processing failed, and sent
below the topic's size limit (the pure builder: :mod:`scoring.dead_letters`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import orjson

from scoring.bulkhead import INTERNAL_ERROR
from scoring.catalog import DEAD_LETTER
from scoring.dead_letters import dead_letter
from scoring.schema import InvalidEvent
from scoring.timeutil import now_ms
from streams.kafka.publish import Publisher
from streams.kafka.topics import catalog
from streams.ops import metrics

logger = logging.getLogger(__name__)


async def send_dead_letter(
    publisher: Publisher,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    payload: bytes | None,
    error: InvalidEvent,
    budget: int | None = None,
) -> Awaitable[Any]:
    """Dead-letter one input (of ``topic``, at ``partition``/``offset``) for ``error``;
    the value is at most ``budget`` bytes (default: the topic's). A record whose
    processing raised (``internal_error``) is logged once with its traceback (repeats
    are rate-limited by the log filter). Returns the send's acknowledgement."""
    metrics.DEAD_LETTERS.labels(topic, error.reason).inc()
    if error.reason == INTERNAL_ERROR:
        logger.error(
            "Dead-lettered %s[%d]@%d: %s", topic, partition, offset, error.detail, exc_info=error.__cause__
        )
    letter = dead_letter(
        topic, partition, offset, key, payload, error.reason, error.detail, now_ms(),
        catalog[DEAD_LETTER].value_budget if budget is None else budget,
    )
    return await publisher.send(DEAD_LETTER, letter.key, orjson.dumps(letter.value))
