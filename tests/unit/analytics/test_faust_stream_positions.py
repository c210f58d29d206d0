"""StreamPositions: the next offset each stream partition must deliver (faust_app, 9.)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.types import TP

from services.analytics.adapters.faust_app import SkippedRecords, StreamPositions


def msgs(*pairs: tuple[TP, int]) -> list[SimpleNamespace]:
    return [SimpleNamespace(tp=tp, offset=offset) for tp, offset in pairs]


A, B = TP("reports", 0), TP("reports", 1)


def test_batches_in_order_move_the_positions_on() -> None:
    p = StreamPositions()
    p.sought({A: 3, B: None})
    p.check(msgs((A, 3), (B, 7), (A, 4)))  # B had no committed offset: known from here
    p.check(msgs((B, 8), (A, 5)))
    assert p.expected == {A: 6, B: 9}


def test_a_jump_past_the_committed_offset_is_refused_and_moves_nothing() -> None:
    p = StreamPositions()
    p.sought({A: 3})
    with pytest.raises(SkippedRecords, match=r"reports\[0\]: got offset 4, expected 3"):
        p.check(msgs((A, 4)))
    assert p.expected == {A: 3}


def test_a_jump_inside_a_batch_refuses_the_whole_batch() -> None:
    p = StreamPositions()
    p.sought({A: 0, B: 0})
    with pytest.raises(SkippedRecords):
        p.check(msgs((B, 0), (A, 0), (A, 2)))
    assert p.expected == {A: 0, B: 0}


def test_records_seen_again_are_fine() -> None:
    p = StreamPositions()
    p.sought({A: 5})
    p.check(msgs((A, 5), (A, 6)))
    p.check(msgs((A, 5), (A, 6), (A, 7)))  # delivered again after a seek back
    assert p.expected == {A: 8}


def test_a_seek_never_moves_a_position_back() -> None:
    """A batch taken before a rebalance and acked after it: the committed offset sought
    is behind what the agent has already taken, which is no hole."""
    p = StreamPositions()
    p.sought({A: 0})
    p.check(msgs((A, 0), (A, 1), (A, 2)))
    p.sought({A: 1})
    p.check(msgs((A, 3)))
    p.sought({A: 10})  # another owner moved on meanwhile
    with pytest.raises(SkippedRecords):
        p.check(msgs((A, 11)))


def test_a_hole_whose_records_left_the_log_moves_the_position_on() -> None:
    """Retention deleted them (an outage longer than the topic keeps records): they can
    never be read again, so ending the worker would only repeat at every restart."""
    p = StreamPositions()
    p.sought({A: 10})
    with pytest.raises(SkippedRecords) as hole:
        p.check(msgs((A, 50)))
    assert (hole.value.tp, hole.value.expected, hole.value.got) == (A, 10, 50)
    assert not p.gone(hole.value, earliest=10)  # still in the log: a real hole
    assert p.expected == {A: 10}
    assert p.gone(hole.value, earliest=50)
    p.check(msgs((A, 50), (A, 51)))
    assert p.expected == {A: 52}
