"""bench/embedding.py on a few clips, so its code cannot rot (nothing here is timed)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.embedding import run_embedding_bench

pytestmark = pytest.mark.slow


def test_embedding_bench_report_is_complete() -> None:
    rng = np.random.default_rng(0)
    clips = (0.1 * rng.standard_normal((4, 16000))).astype(np.float32)
    report = run_embedding_bench(clips, rounds=1)
    assert report["max_abs_difference"] < 1e-3
    assert report["speedup_best"] > 0
    assert set(report["heads"]) == {"dnn", "conv"}
    for head in report["heads"].values():
        assert 0 < head["int8_kib"] < head["float_kib"]
        assert head["window_latency_ms"] > 0
