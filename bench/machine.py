"""What this machine can do: CPU facts and its achievable float32 FLOP/s (a large matmul)."""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch

MATMUL_SIZE = 2048
MATMUL_REPEATS = 5


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _best_matmul_flops(multiply, n: int, repeats: int) -> float:
    multiply()  # warm-up: thread pools, page faults, kernel selection
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        multiply()
        best = min(best, time.perf_counter() - started)
    return 2.0 * n**3 / best


def matmul_flops(n: int = MATMUL_SIZE, repeats: int = MATMUL_REPEATS) -> dict:
    """Best-of-``repeats`` float32 FLOP/s of an ``n x n`` matmul: torch (MKL) on all cores and on
    one, and numpy's BLAS.  ``achievable`` is the best of them — the FLOP-bound's denominator."""
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((n, n), dtype=np.float32)
    b_np = rng.standard_normal((n, n), dtype=np.float32)
    a, b = torch.from_numpy(a_np), torch.from_numpy(b_np)
    previous = torch.get_num_threads()
    results = {}
    try:
        with torch.inference_mode():
            torch.set_num_threads(usable_cores())
            results["torch_all_cores"] = _best_matmul_flops(lambda: a @ b, n, repeats)
            torch.set_num_threads(1)
            results["torch_one_core"] = _best_matmul_flops(lambda: a @ b, n, repeats)
    finally:
        torch.set_num_threads(previous)
    results["numpy"] = _best_matmul_flops(lambda: a_np @ b_np, n, repeats)
    results["achievable"] = max(
        results["torch_all_cores"], results["numpy"], results["torch_one_core"]
    )
    results["size"] = n
    return results


def machine_info() -> dict:
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
