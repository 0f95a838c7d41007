"""The counted single-threaded-BLAS context."""

from __future__ import annotations

import threading

from threadpoolctl import ThreadpoolController

from kws_assets.core.audio import blas_threads
from kws_assets.core.audio.blas_threads import single_threaded_blas  # imports numpy (its BLAS)


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in ThreadpoolController().info() if p["user_api"] == "blas"]


def test_limits_blas_inside_and_restores_after():
    before = _blas_threads()
    assert before, "numpy's BLAS is visible to threadpoolctl"
    with single_threaded_blas():
        with single_threaded_blas():
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


class _RecordingController:
    """Stands in for threadpoolctl's controller: records limits applied and restored."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def limit(self, limits: int, user_api: str):
        self.events.append(f"limit {user_api}={limits}")
        controller = self

        class _Limiter:
            def restore_original_limits(self) -> None:
                controller.events.append("restore")

        return _Limiter()


def test_overlapping_users_share_one_limit_until_the_last_leaves(monkeypatch):
    recorder = _RecordingController()
    monkeypatch.setattr(blas_threads, "_controller", recorder)
    entered, worker_may_leave = threading.Barrier(2), threading.Event()

    def worker() -> None:
        with single_threaded_blas():
            entered.wait()
            worker_may_leave.wait()

    thread = threading.Thread(target=worker)
    thread.start()
    with single_threaded_blas():
        entered.wait()
        worker_may_leave.set()
        thread.join()  # the worker left first: the limit must still hold
        assert recorder.events == ["limit blas=1"]
    assert recorder.events == ["limit blas=1", "restore"]
