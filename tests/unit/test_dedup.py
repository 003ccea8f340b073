"""A topic's de-duplication memory: arrival order, forgetting, and its packed form."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.dedup import SeenIds, id_hash

ENTRY = struct.Struct("<qq")


def packed(entries: list[tuple[int, int]]) -> bytes:
    return b"".join(ENTRY.pack(h, ts) for h, ts in entries)


def test_remembers_ids_in_arrival_order():
    seen = SeenIds()
    for h, ts in [(3, 300), (1, 100), (2, 200)]:
        seen.add(h, ts)
    assert 1 in seen and 4 not in seen
    assert list(seen.times.items()) == [(3, 300), (1, 100), (2, 200)]
    assert seen.packed() == packed([(3, 300), (1, 100), (2, 200)])


def test_forgets_the_front_up_to_the_first_id_inside_the_horizon():
    seen = SeenIds()
    for h, ts in [(1, 100), (2, 300), (3, 150), (4, 400)]:
        seen.add(h, ts)
    seen.forget_before(250)
    # 3 is older than the horizon but arrived after 2, which is inside it: kept
    assert list(seen.times.items()) == [(2, 300), (3, 150), (4, 400)]
    assert seen.packed() == packed([(2, 300), (3, 150), (4, 400)])
    seen.forget_before(1_000)
    assert len(seen) == 0 and seen.packed() == b""


def test_round_trip_keeps_ids_times_and_order():
    seen = SeenIds()
    for i in range(10):
        seen.add(id_hash(f"e{i}"), 1_000 - i)
    seen.forget_before(995)
    restored = SeenIds(seen.packed())
    assert restored == seen
    assert list(restored.times) == list(seen.times)


def test_id_hash_is_stable_across_processes():
    # the hash is stored in state values: changing it would forget every remembered id
    assert id_hash("evt-1") == 5142162847298372542


def test_a_long_forgotten_front_is_cut_off_and_the_rest_kept():
    seen = SeenIds()
    for i in range(20_000):
        seen.add(i, i)
    seen.forget_before(15_000)  # 240 000 bytes forgotten: more than half, compacted
    for i in range(20_000, 20_010):
        seen.add(i, i)
    seen.forget_before(19_990)
    expected = [(i, i) for i in range(19_990, 20_010)]
    assert list(seen.times.items()) == expected
    assert seen.packed() == packed(expected)


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 10_000)), max_size=300))
def test_packed_form_always_matches_the_ids(steps):
    """Whatever is added and forgotten, the text written to the state is exactly the
    remembered ids in arrival order."""
    seen = SeenIds()
    newest = 0
    for i, (jump, back) in enumerate(steps):
        newest += jump
        ts = newest - back
        if i not in seen:
            seen.add(i, ts)
        seen.forget_before(newest - 5_000)
    assert seen.packed() == packed(list(seen.times.items()))
    assert SeenIds(seen.packed()) == seen


@settings(max_examples=300, deadline=None, database=None)
@given(ops=st.lists(st.one_of(st.tuples(st.just("add"), st.integers(0, 50)),
                              st.tuples(st.just("forget"), st.integers(0, 60))), max_size=60))
def test_forgetting_matches_a_plain_list(ops: list[tuple[str, int]]) -> None:
    """The cached front time (a shortcut in forget_before) forgets exactly what a scan would."""
    seen, model = SeenIds(), []  # model: (hash, ts) in arrival order
    for i, (op, ts) in enumerate(ops):
        if op == "add":
            seen.add(i, ts)
            model.append((i, ts))
        else:
            while model and model[0][1] < ts:
                model.pop(0)
            seen.forget_before(ts)
        assert list(seen.times.items()) == model
        assert SeenIds(seen.packed()) == seen
