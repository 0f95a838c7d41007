"""The demo's runner keeps each finished run's survivors out of the next runs' collections."""

from __future__ import annotations

import gc
import weakref

from kws_assets.lib.in_process import settle_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settle_heap_collects_the_garbage_then_freezes_the_survivors() -> None:
    kept = _Node()
    cycle_a, cycle_b = _Node(), _Node()
    cycle_a.other, cycle_b.other = cycle_b, cycle_a  # garbage only a collection frees
    gone = weakref.ref(cycle_a)
    del cycle_a, cycle_b
    try:
        settle_heap()
        assert gone() is None  # collected before the freeze, not frozen in
        assert gc.get_freeze_count() > 0 and kept.other is None
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
