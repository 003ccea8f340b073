"""Team states in the one-partition ``team-state`` table, kept piecewise.

A team's customers, actions, deltas, water levels and diagnoses are separate table keys, so an update writes
(and sends to the changelog) only what changed, however big the team. The worker that
owns the partition keeps every team in memory, loaded with one scan of the table when
it is first needed after a rebalance. Changed pieces are written in bulk when the team
agent ends a batch (:meth:`TableTeamStore.flush`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
from faust.types import AppT

from scoring.rollup.team import TeamState
from streams.kafka.table_writer import write_bulk

_SEP = b"\x00"
_LAST_HEATMAP = b"m" + _SEP + b"last-heatmap"


def piece_key(kind: str, team_id: str, key: str) -> bytes:
    if kind == "h":
        return b"h" + _SEP + team_id.encode()
    return kind.encode() + _SEP + team_id.encode() + _SEP + key.encode()


class TableTeamStore:
    #: the team table has one partition
    PARTITION = 0

    def __init__(self, app: AppT, table: Any) -> None:  # a faust Table of bytes to bytes
        self._app = app
        self._table = table
        self._teams: dict[str, TeamState] | None = None
        #: piece key -> new value (None: delete), until the next flush
        self._pending: dict[bytes, bytes | None] = {}

    def invalidate(self) -> None:
        """The partition may have moved: reload from the table when next needed."""
        self._teams = None

    def load(self, team_id: str) -> TeamState | None:
        return self._all().get(team_id)

    def save(self, state: TeamState) -> None:
        self._all()[state.team_id] = state
        for kind, key in state.dirty:
            self._pending[piece_key(kind, state.team_id, key)] = orjson.dumps(state.piece(kind, key))
        for kind, key in state.removed:
            self._pending[piece_key(kind, state.team_id, key)] = None
        state.dirty.clear()
        state.removed.clear()

    async def flush(self) -> None:
        """Write the pieces changed since the last flush."""
        pending, self._pending = self._pending, {}
        await write_bulk(self._app, self._table, ((self.PARTITION, k, v) for k, v in pending.items()))

    def all(self) -> Iterable[TeamState]:
        return list(self._all().values())

    def last_heatmap(self) -> int | None:
        raw = self._pending[_LAST_HEATMAP] if _LAST_HEATMAP in self._pending else self._table.get(_LAST_HEATMAP)
        return int(raw) if raw else None

    def set_last_heatmap(self, at: int) -> None:
        self._pending[_LAST_HEATMAP] = str(at).encode()

    def _all(self) -> dict[str, TeamState]:
        if self._teams is None:
            self._teams = self._scan()
        return self._teams

    def _scan(self) -> dict[str, TeamState]:
        headers: dict[str, dict[str, Any]] = {}
        pieces: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)
        for raw_key, raw in list(self._table.items()):
            kind, _, rest = raw_key.partition(_SEP)
            if kind == b"h":
                headers[rest.decode()] = orjson.loads(raw)
            elif kind in {b"c", b"a", b"t", b"w", b"d"}:
                team, _, key = rest.partition(_SEP)
                pieces[team.decode()].append((kind.decode(), key.decode(), orjson.loads(raw)))
        return {
            team: TeamState.from_pieces(header, pieces.get(team, []))
            for team, header in headers.items()
        }
