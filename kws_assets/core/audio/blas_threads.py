"""Single-threaded BLAS for small per-utterance linear algebra.

Matrix products of a few hundred frames by a few dozen coefficients gain nothing from BLAS
threads, and on a busy machine OpenBLAS's spinning worker threads make them several times slower
(measured on the 2-core CI machine under load: 1.4 ms single-threaded vs 11 ms with two threads
for a 300x26 @ 26x340 product).  The limit is process-wide, so nested and concurrent uses are
counted: the first entry limits BLAS to one thread, the last exit restores the previous limits.
(With the OpenBLAS numpy ships, threadpoolctl may still report the old thread count when asked
from another thread than the one that set the limit; the products are single-threaded anyway.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy  # noqa: F401  (loads numpy's BLAS, which the controller must find)
from threadpoolctl import ThreadpoolController

_LOCK = threading.Lock()
_depth = 0
_limiter = None
_controller: ThreadpoolController | None = None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run a block with BLAS limited to one thread (see the module docstring)."""
    global _depth, _limiter, _controller
    with _LOCK:
        if _depth == 0:
            if _controller is None:
                _controller = ThreadpoolController()
            _limiter = _controller.limit(limits=1, user_api="blas")
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None
