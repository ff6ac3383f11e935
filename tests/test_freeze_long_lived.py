"""A worker process (and a console process after its warm-up) moves what it holds out of
the garbage collector's walks, after collecting what is garbage then (a frozen cycle would
never be freed); the worker process tests (tests/test_worker_process_observability.py)
run a workflow on such a worker and stop it cleanly."""

from __future__ import annotations

import gc
import weakref

import pytest

from estuary.app import freeze_long_lived_objects


@pytest.fixture(autouse=True)
def _unfreeze():
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_garbage_is_collected_before_the_rest_is_frozen():
    cycle = _Node()
    gone = weakref.ref(cycle)
    del cycle
    kept = _Node()

    frozen = freeze_long_lived_objects()

    assert gone() is None
    # The count can only fall after this (a frozen object freed by its refcount leaves).
    assert frozen >= gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects())  # frozen: no generation holds it
