"""Full garbage collections kept short: what survives one is frozen.

CPython's full collection (its oldest generation) traverses every tracked container of
the process. :mod:`streams.ops.warm_up` freezes what start-up made; what a worker makes
later, its cached customer states above all, kept growing, and at 1 000 events/s full
collections of 60-130 ms were the largest part of the event-to-delta p99, rising
through the run as the states grew (measured with ``bench/`` on Tansu). So every full
collection's survivors are frozen (:func:`gc.freeze`, from :data:`gc.callbacks`): the
next full collection traverses only what was made since, and each object is traversed
by about one full collection.

Frozen objects are still freed by reference counting. Only a reference cycle among them
that becomes garbage later needs a collection that looks at them: the sweep, every
:data:`SWEEP_SECONDS`, unfreezes everything and collects once (one pause as long as a
full collection was before).

Commands that score a whole log (``credence replay``, ``rules diff``, ``heatmap --log``)
also collect young objects less often (:func:`batch_collections`): no one waits on their
pauses.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the batch commands import this module without starting Faust
    from faust.types import AppT

SWEEP_SECONDS = 600.0


def freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """A :data:`gc.callbacks` entry: after a full collection, freeze what is left."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


#: a young collection every this many net allocations in a batch command (CPython: 700).
#: ``credence replay`` of 210 000 events took 0.89x the CPU with it and frozen survivors
#: (farm-bench, median of 5 pairs, 0.83-0.94); 50 000 was no faster
BATCH_YOUNG_THRESHOLD = 10_000


@contextmanager
def batch_collections() -> Iterator[None]:
    """The collector for scoring a log in one go: young collections every
    :data:`BATCH_YOUNG_THRESHOLD` allocations, the survivors of full collections frozen
    (as in a worker); as it was afterwards, everything unfrozen."""
    thresholds = gc.get_threshold()
    gc.set_threshold(BATCH_YOUNG_THRESHOLD, *thresholds[1:])
    gc.callbacks.append(freeze_survivors)
    try:
        yield
    finally:
        gc.callbacks.remove(freeze_survivors)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def sweep() -> None:
    """Collect frozen objects too (what survives is frozen again)."""
    gc.unfreeze()
    gc.collect()


def register(app: AppT) -> None:
    if freeze_survivors not in gc.callbacks:
        gc.callbacks.append(freeze_survivors)

    @app.timer(SWEEP_SECONDS)
    async def sweep_frozen() -> None:
        sweep()
