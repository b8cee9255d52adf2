"""A stage's garbage collection: the objects alive before it are set aside while it runs, then given back."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from benefits_hub.operators.stages import long_lived_frozen


@pytest.fixture(autouse=True)
def _nothing_frozen_before() -> Iterator[None]:
    # What the test process froze before (an executor's fork, say) is not these tests' to judge.
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the garbage collector frees it


def test_what_was_alive_before_the_stage_is_set_aside_while_it_runs() -> None:
    before = [_Node() for _ in range(1_000)]
    gc.collect()
    assert gc.get_freeze_count() == 0
    with long_lived_frozen():
        # A full collection inside the stage walks only what the stage made.
        assert gc.get_freeze_count() >= len(before)
        made_inside = _Node()
        gc.collect()
        assert gc.is_tracked(made_inside)
    assert gc.get_freeze_count() == 0


def test_garbage_among_the_set_aside_objects_is_collected_after_the_stage() -> None:
    old = _Node()
    gone = weakref.ref(old)
    with long_lived_frozen():
        del old  # garbage now, but frozen: a collection inside the stage leaves it
        gc.collect()
        assert gone() is not None
    gc.collect()
    assert gone() is None


def test_a_stage_that_fails_gives_the_objects_back_too() -> None:
    with pytest.raises(RuntimeError), long_lived_frozen():
        raise RuntimeError("the stage failed")
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_its_objects_already_keeps_them_frozen() -> None:
    # Airflow's executors freeze before they fork a worker: the stage must not undo that.
    gc.freeze()
    frozen = gc.get_freeze_count()
    # Frozen objects leave the set only when freed (a temporary alive at the freeze, say) or unfrozen.
    with long_lived_frozen():
        assert 0 < gc.get_freeze_count() <= frozen
    assert 0 < gc.get_freeze_count() <= frozen
