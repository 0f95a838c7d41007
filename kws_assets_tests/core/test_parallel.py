"""The ordered parallel maps: input order, bounded in-flight work, failures at their item,
closures over unpicklable state, and the worker count from settings or KWS_WORKERS."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from kws_assets.core import parallel


class Unpicklable(Exception):
    """An exception whose constructor cannot be replayed by pickle."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")


def test_results_come_back_in_input_order_from_other_processes() -> None:
    lock = threading.Lock()  # a closure over an unpicklable object: inherited, never pickled

    def square_with_pid(x: int) -> tuple[int, int]:
        with lock:
            return x * x, os.getpid()

    out = list(parallel.batched_process_map(square_with_pid, range(40), workers=2, batch_size=3))
    assert [v for v, _ in out] == [x * x for x in range(40)]
    assert os.getpid() not in {pid for _, pid in out}  # the work ran in worker processes


def test_one_worker_maps_in_this_process_with_the_same_results() -> None:
    out = list(parallel.batched_process_map(lambda x: (x + 1, os.getpid()), range(7), 1, 3))
    assert out == [(x + 1, os.getpid()) for x in range(7)]
    assert list(parallel.process_map(str, [], 2)) == []


def test_at_most_two_batches_per_worker_are_in_flight() -> None:
    pulled = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(200):
            pulled += 1
            yield i

    batch_size, workers = 5, 2
    results = parallel.batched_process_map(abs, items(), workers, batch_size)
    assert next(results) == 0
    # the first result needs the first batch done; by then no more than 2 x workers batches
    # have been taken from the input (plus the one being formed)
    limit = (parallel.IN_FLIGHT_PER_WORKER * workers + 1) * batch_size
    assert pulled <= limit
    assert list(results) == list(range(1, 200))


def test_a_failing_item_raises_its_own_exception_after_the_items_before_it() -> None:
    def fail_at_13(x: int) -> int:
        if x == 13:
            raise KeyError(f"item {x}")
        return x

    got = []
    with pytest.raises(KeyError, match="item 13"):
        for value in parallel.batched_process_map(fail_at_13, range(30), 2, 4):
            got.append(value)
    assert got == list(range(13))
    with pytest.raises(KeyError, match="item 13"):  # the same failure serially
        list(parallel.batched_process_map(fail_at_13, range(30), 1, 4))


def test_an_exception_that_cannot_travel_back_arrives_as_a_worker_error() -> None:
    def boom(x: int) -> int:
        if x == 5:
            raise Unpicklable(7, "bad clip")
        return x

    with pytest.raises(parallel.WorkerError, match="Unpicklable: 7: bad clip"):
        list(parallel.batched_process_map(boom, range(10), 2, 2))


def test_thread_map_keeps_order_and_stays_at_most_workers_plus_one_ahead() -> None:
    produced = []

    def items() -> Iterator[int]:
        for i in range(40):
            produced.append(i)
            yield i

    for consumed, value in enumerate(parallel.thread_map(lambda x: x * 2, items(), 3)):
        assert value == 2 * consumed
        assert len(produced) - consumed <= 4


def test_chunks_refuses_an_empty_batch_size() -> None:
    assert list(parallel.chunks(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="at least 1"):
        list(parallel.chunks(range(5), 0))


def test_worker_count_from_settings_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(parallel.WORKERS_ENV_VAR, raising=False)
    assert parallel.resolve_workers(3) == 3
    assert parallel.resolve_workers(0) == parallel.available_cores() >= 1
    monkeypatch.setenv(parallel.WORKERS_ENV_VAR, "1")  # a Celery/Kubernetes step says 1
    assert parallel.resolve_workers(8) == 1
    monkeypatch.setenv(parallel.WORKERS_ENV_VAR, "many")
    with pytest.raises(ValueError, match="KWS_WORKERS='many' is not an integer"):
        parallel.resolve_workers(0)
    monkeypatch.setenv(parallel.WORKERS_ENV_VAR, "-2")
    with pytest.raises(ValueError, match="KWS_WORKERS is -2"):
        parallel.resolve_workers(0)


_calls_since_reset = 0


def _reset_counter() -> None:
    global _calls_since_reset
    _calls_since_reset = 0


def _stateful(x: int) -> tuple[int, int]:
    """Like espeak-ng: the answer depends on how many calls this process made before."""
    global _calls_since_reset
    _calls_since_reset += 1
    return x, _calls_since_reset


def test_a_per_batch_reset_makes_stateful_work_independent_of_the_worker_count() -> None:
    outputs = {
        workers: list(
            parallel.batched_process_map(_stateful, range(23), workers, 4, _reset_counter)
        )
        for workers in (1, 2, 3)
    }
    assert outputs[1] == [(x, x % 4 + 1) for x in range(23)]  # the history restarts per batch
    assert outputs[1] == outputs[2] == outputs[3]


KILLED_PARENT = """
import os, sys, time
from kws_assets.core import parallel

def slow(i):
    time.sleep(0.05 if i < 4 else 60)
    return os.getpid()

for pid in parallel.batched_process_map(slow, range(12), 2, 1):
    print(pid, flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"  # a zombie is already dead
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads worker state from /proc")
def test_workers_die_with_a_killed_parent() -> None:
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_PARENT], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    workers = {int(proc.stdout.readline()) for _ in range(4)}  # the fast items, from both workers
    assert workers and proc.pid not in workers
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "pool workers outlived their killed parent"


def _map_in_daemon(queue) -> None:
    queue.put(list(parallel.batched_process_map(_square, range(7), 2, 2)))


def _square(i: int) -> int:
    return i * i


def test_a_daemonic_caller_maps_in_process_instead_of_failing() -> None:
    """Celery's prefork pool runs each step in a daemonic process, which may not have children."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    daemon = context.Process(target=_map_in_daemon, args=(queue,), daemon=True)
    daemon.start()
    try:
        assert queue.get(timeout=30) == [i * i for i in range(7)]
    finally:
        daemon.join(timeout=30)
    assert daemon.exitcode == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_hears_the_items_done_after_each_batch(workers: int) -> None:
    heard: list[tuple[int, int]] = []

    def hear(done: int, total: int) -> None:
        heard.append((done, total))

    out = list(parallel.batched_process_map(abs, range(10), workers, 4, progress=hear, total=10))
    assert out == list(range(10))
    assert heard == [(4, 10), (8, 10), (10, 10)]


def test_progress_reporter_speaks_at_most_every_interval_and_at_the_end() -> None:
    said: list[str] = []
    now = [100.0]
    report = parallel.progress_reporter(said.append, "clips", interval_s=5.0, clock=lambda: now[0])
    now[0] = 102.0
    report(50, 200)  # the first report speaks at once
    now[0] = 104.0
    report(100, 200)  # 2 s later: quiet
    now[0] = 108.0
    report(150, 200)
    now[0] = 109.0
    report(200, 200)  # the last item always speaks
    assert said == [
        "50/200 clips, 25.0/s, ~6 s left",
        "150/200 clips, 18.8/s, ~3 s left",
        "200/200 clips, 22.2/s",
    ]
