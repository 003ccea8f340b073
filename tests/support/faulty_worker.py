"""``credence`` with injected faults, for the bulkhead's integration tests.

``python -m tests.support.faulty_worker worker`` (or ``replay ...``) runs the normal
command line after making the scoring core raise where no natural record does: the
``high_intent`` rule on a quote open whose ``event_id`` starts with ``poison-``, and the
team roll-up on every update of a team whose id starts with ``poison-``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from scoring.patterns import streak
from scoring.rollup.config import RollupConfig
from scoring.rollup.team import TeamState
from streams.cli import main as cli

POISON = "poison-"


def install(patch: Callable[[Any, str, Any], None] = setattr) -> None:
    """Inject the faults (``patch``: ``setattr``, or pytest's ``monkeypatch.setattr``)."""
    real_span = streak._span
    real_apply = TeamState.apply

    def span(streak: list[Any]) -> int:
        if streak[-1].event_id.startswith(POISON):
            raise RuntimeError("injected rule fault")
        return real_span(streak)

    def apply(self: TeamState, update: dict[str, Any], cfg: RollupConfig) -> None:
        real_apply(self, update, cfg)  # the fault strikes after the team changed
        if self.team_id.startswith(POISON):
            raise RuntimeError("injected team fault")

    patch(streak, "_span", span)
    patch(TeamState, "apply", apply)


if __name__ == "__main__":
    install()
    sys.exit(cli.main())
