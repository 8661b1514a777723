"""The cyclic garbage collector's pace while sandboxes run in a process.

The store holds tens of thousands of long-lived JSON trees, and every request allocates thousands of
containers; at CPython's default first-generation threshold (700 allocations) a single create triggers
several collections, and their cost grows with the heap: measured with `bench/sandbox_scale.py`, a
create cost the sandbox 0.57 ms of CPU, and 0.38-0.46 ms with the threshold at 50,000 (loading 50,000
objects 20-24 s instead of 28-30 s). Nothing the store holds is cyclic (reference counting frees it), so
collecting less often costs no memory that stays. The first sandbox to start raises the
threshold, the last to stop puts back what it was.
"""

from __future__ import annotations

import gc
import threading

SANDBOX_GEN0_THRESHOLD = 50_000

_lock = threading.Lock()
_running = 0
_saved: tuple[int, ...] | None = None


def sandbox_started() -> None:
    global _running, _saved
    with _lock:
        _running += 1
        if _running == 1:
            _saved = gc.get_threshold()
            if _saved[0] < SANDBOX_GEN0_THRESHOLD:
                gc.set_threshold(SANDBOX_GEN0_THRESHOLD, *_saved[1:])


def sandbox_stopped() -> None:
    global _running, _saved
    with _lock:
        _running -= 1
        if _running == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None
