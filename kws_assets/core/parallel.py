"""Ordered, bounded parallel maps: the one place per-clip stages get their parallelism.

Two flavours, one contract — results come back in input order, at most a bounded number of
items are in flight (memory does not grow with the input), an item's exception is raised at that
item's position, and ``workers == 1`` runs in this process with no pool at all:

* :func:`thread_map` — threads, for work that releases the GIL (torch kernels on decoded
  batches: the MFCC and embedding feature paths);
* :func:`process_map` / :func:`batched_process_map` — worker processes, for per-clip Python
  loops (augmentation, alignment, synthesis) that hold the GIL.

Determinism is the caller's half of the contract: an item's result must depend only on the item
(seeds derived from the item's id, never from which worker or in which order it ran).  Then the
output is identical for any worker count, which the stage tests check with 1 and 2 workers.

Where the platform can ``fork`` (Linux), workers are forked, so ``fn`` may be a closure over
unpicklable state (a clip store with an S3 client, an aligner): it is inherited by the worker,
never pickled.  Items and results cross the process boundary and must pickle.  Where only
``spawn`` exists, ``fn`` must pickle too.

:func:`resolve_workers` sizes the pool: the configured count, or (0 = auto) the cores this
process may run on; the ``KWS_WORKERS`` environment variable overrides both, so a step launched
by Celery or Kubernetes — one process per step, its cores already accounted for — can say 1.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS_ENV_VAR = "KWS_WORKERS"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>: the signal a process gets when its parent dies
IN_FLIGHT_PER_WORKER = 2
"""Batches submitted ahead per worker process: one running, one queued, so no worker idles
while the caller consumes a result, and memory stays at ~2 x workers batches."""
PROGRESS_INTERVAL_S = 5.0
"""A per-clip stage says how far it is at most this often (the terminal and the event log)."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: a stage reports the items it has finished of the items it has."""


def progress_reporter(
    say: Callable[[str], None],
    unit: str = "clips",
    interval_s: float = PROGRESS_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """A :data:`Progress` that says ``412/1280 clips, 37.2/s, ~23 s left`` through ``say`` when
    ``interval_s`` has passed since it last spoke, and always when the last item is done; the rate
    is over the whole stage so far (a batched pool delivers in bursts)."""
    started = clock()
    last = [started - interval_s]

    def report(done: int, total: int) -> None:
        now = clock()
        if done < total and now - last[0] < interval_s:
            return
        last[0] = now
        rate = done / max(now - started, 1e-9)
        left = f", ~{(total - done) / rate:.0f} s left" if 0 < done < total and rate > 0 else ""
        say(f"{done}/{total} {unit}, {rate:.1f}/s{left}")

    return report


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers and ``taskset``
    narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has sched_getaffinity
        return max(1, os.cpu_count() or 1)


def resolve_workers(configured: int = 0) -> int:
    """The worker count to use: ``KWS_WORKERS`` if set, else ``configured``, where 0 means one
    per available core.  A negative or non-integer value is refused with the fix."""
    raw = os.environ.get(WORKERS_ENV_VAR, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(
                f"{WORKERS_ENV_VAR}={raw!r} is not an integer: set it to 0 (one per core) or "
                "a positive worker count"
            ) from None
        source = WORKERS_ENV_VAR
    else:
        value, source = int(configured), "compute.workers"
    if value < 0:
        raise ValueError(f"{source} is {value}: use 0 (one per core) or a positive worker count")
    return value if value > 0 else available_cores()


def thread_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, results in input order, at most
    ``workers + 1`` items in flight (so memory stays bounded however many items there are)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="kws-map")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class WorkerError(RuntimeError):
    """An item failed in a worker process with an exception that cannot travel back as itself
    (it does not pickle); carries the original type, message and traceback as text."""


BatchContext = Callable[[], AbstractContextManager[Any]]
"""Made anew around each batch where it runs (e.g. a clip store's ``batch_writes``: the batch's
files made durable together when the batch ends)."""

_worker_fn: Callable[[Any], Any] | None = None
_worker_setup: Callable[[], None] | None = None
_worker_context: BatchContext | None = None


def _die_with(parent_pid: int) -> None:
    """Ask the kernel to end this worker when the process that started it dies (Linux
    ``PR_SET_PDEATHSIG``): a run killed mid-stage (a crash, ``kill -9``, a cancelled Dagster
    run) must not leave its pool workers waiting on a queue forever.  If the parent is already
    gone by now, exit at once."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool's own sentinel checks remain
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _install_worker(
    fn: Callable[[Any], Any],
    setup: Callable[[], None] | None,
    context: BatchContext | None,
    parent_pid: int,
) -> None:
    """Worker-process initializer: die with the parent, keep ``fn``, ``setup`` and ``context``
    (inherited through fork, not pickled) and run torch single-threaded: the parallelism is
    across processes."""
    _die_with(parent_pid)
    global _worker_fn, _worker_setup, _worker_context
    _worker_fn, _worker_setup, _worker_context = fn, setup, context
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives a pickle round trip, else a :class:`WorkerError` describing it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return WorkerError(f"{type(exc).__name__}: {exc}\n{text}")


def _map_batch(
    fn: Callable[[T], R],
    batch: Sequence[T],
    setup: Callable[[], None] | None,
    context: BatchContext | None,
) -> tuple[list[R], Exception | None]:
    """``fn`` over one batch, in order, after ``setup`` and inside ``context``, stopping at the
    first failure: the results before it and the exception."""
    if setup is not None:
        setup()
    results: list[R] = []
    with context() if context is not None else contextlib.nullcontext():
        for item in batch:
            try:
                results.append(fn(item))
            except Exception as exc:
                return results, exc
    return results, None


def _run_batch(batch: Sequence[Any]) -> tuple[list[Any], BaseException | None]:
    """Runs in a worker: :func:`_map_batch` with the installed function; the exception made
    portable, so the caller sees exactly what a serial map would have yielded before raising."""
    if _worker_fn is None:
        raise RuntimeError("worker process started without a function (see _install_worker)")
    results, failure = _map_batch(_worker_fn, batch, _worker_setup, _worker_context)
    return results, None if failure is None else _portable(failure)


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def can_start_processes() -> bool:
    """False inside a daemonic process, which may not start children: the prefork pool
    processes of a Celery worker (dagster-celery runs each step in one).  There the step is
    already one process of a pool sized to the machine, so the stage maps in-process."""
    return not multiprocessing.current_process().daemon


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in consecutive lists of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def batched_process_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    batch_size: int,
    batch_setup: Callable[[], None] | None = None,
    batch_context: BatchContext | None = None,
    progress: Progress | None = None,
    total: int = 0,
) -> Iterator[R]:
    """``map(fn, items)`` over batches of ``batch_size`` items on ``workers`` processes; results
    in input order, at most ``2 * workers`` batches in flight.  ``progress(done, total)`` is
    called with the items done so far after each batch's results are handed back (``total``: the
    item count the caller knows; ``items`` may be a stream).

    ``batch_setup`` runs before every batch in the process that runs it (with one worker too):
    it resets state a library carries from call to call (espeak-ng's), so that a batch's results
    depend only on its items.  Batches are cut by ``batch_size`` alone, never by the worker
    count, so with such a reset the output is the same for any number of workers.
    ``batch_context`` is entered around every batch where it runs, and left before its results
    are handed back (a clip store's ``batch_writes``: the batch's clips durable together).

    ``workers <= 1``, or a daemonic caller (:func:`can_start_processes`), maps in this process
    (same results, no pool).  An exception ``fn`` raises
    for an item is raised here when that item's result is due (earlier results are yielded
    first), so a failure is the same failure it would be serially; a worker that dies (killed,
    out of memory) raises ``BrokenProcessPool`` naming the worker count to lower.
    """
    results = _batched_map(fn, items, workers, batch_size, batch_setup, batch_context)
    done = 0
    for batch_results in results:
        yield from batch_results
        done += len(batch_results)
        if progress is not None:
            progress(done, total)


def _batched_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    batch_size: int,
    batch_setup: Callable[[], None] | None,
    batch_context: BatchContext | None,
) -> Iterator[list[R]]:
    """:func:`batched_process_map`, a batch's results at a time."""
    groups = chunks(items, batch_size)
    if workers <= 1 or not can_start_processes():
        for batch in groups:
            yield from _in_process(fn, batch, batch_setup, batch_context)
        return
    first = next(groups, None)
    if first is None:
        return
    second = next(groups, None)
    if second is None:  # one batch: a pool would only add its start-up time
        yield from _in_process(fn, first, batch_setup, batch_context)
        return
    pool = ProcessPoolExecutor(
        workers,
        mp_context=_context(),
        initializer=_install_worker,
        initargs=(fn, batch_setup, batch_context, os.getpid()),
    )
    pending: deque[Future[tuple[list[R], BaseException | None]]] = deque()
    limit = IN_FLIGHT_PER_WORKER * workers

    def submitted() -> Iterator[tuple[list[R], BaseException | None]]:
        for batch in _prepend((first, second), groups):
            pending.append(pool.submit(_run_batch, batch))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    try:
        for results, failure in submitted():
            if failure is not None:  # the results before the failing item first
                yield results
                raise failure
            yield results
    except BrokenProcessPool as exc:
        raise BrokenProcessPool(
            f"a worker process died ({exc}); if it ran out of memory, lower the worker count "
            f"(compute.workers or {WORKERS_ENV_VAR}, now {workers})"
        ) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _in_process(
    fn: Callable[[T], R],
    batch: list[T],
    batch_setup: Callable[[], None] | None,
    batch_context: BatchContext | None,
) -> Iterator[list[R]]:
    """One batch here: its results (those before a failing item), then that item's failure."""
    results, failure = _map_batch(fn, batch, batch_setup, batch_context)
    yield results
    if failure is not None:
        raise failure


def process_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """:func:`batched_process_map` with one item per batch (items that are each heavy)."""
    return batched_process_map(fn, items, workers, 1)


def _prepend(head: Sequence[T], rest: Iterator[T]) -> Iterator[T]:
    yield from head
    yield from rest
