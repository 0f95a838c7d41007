"""bench/embedding.py on a few clips, so its code cannot rot (nothing here is timed)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.embedding import embedding_flop_bound, rebound_embedding, run_embedding_bench
from bench.report import flop_bound_section
from kws_assets.core.features.speech_embedding import EmbeddingSpec

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
    bound = report["flop_bound"]
    # FLOPs counted from the graphs: ~107 M for the mel graph of 2 s, ~256 M for the sequence
    # graph over its 197 mel frames; one window through the original graph ~85 M.
    assert 300e6 < bound["flops_per_clip"] < 450e6 and 50e6 < bound["flops_per_window"] < 150e6
    assert bound["clips_per_s"] == report["front_end"]["kws_assets"]["best_rate"]
    assert bound["achieved_flops_per_s"] == pytest.approx(
        bound["clips_per_s"] * bound["flops_per_clip"]
    )
    # Convolutions on one thread cannot beat a float32 matmul on all cores, nor much beat one
    # on the same thread(s): above 1.5 the count or the bound's timing is wrong, not the machine.
    assert 0 < bound["fraction_of_flop_bound"] <= 1.5
    assert 0 < bound["fraction_of_thread_bound"] <= 1.5
    assert bound["fraction_of_flop_bound"] <= bound["fraction_of_thread_bound"] * 1.5
    assert set(bound["graphs"]) == {"mel", "sequence"}  # each graph alone, same rounds
    assert sum(g["flops_per_clip"] for g in bound["graphs"].values()) == bound["flops_per_clip"]
    for graph in bound["graphs"].values():
        assert 0 < graph["fraction_of_thread_bound"] <= 1.5
        # a graph alone is faster than both in sequence (1.5: noise of a single round)
        assert graph["clips_per_s"] * 1.5 > bound["clips_per_s"]


def test_a_faster_matmul_seen_elsewhere_lowers_the_share() -> None:
    spec = EmbeddingSpec()
    base = {
        "threads": 1,
        "flop_bound": embedding_flop_bound(spec, 100.0, 100e9, 50e9, {"mel": 400.0}),
    }
    mel = base["flop_bound"]["graphs"]["mel"]
    assert mel["fraction_of_thread_bound"] == pytest.approx(400.0 * mel["flops_per_clip"] / 50e9)
    assert base["flop_bound"]["fraction_of_flop_bound"] == pytest.approx(
        100.0 * base["flop_bound"]["flops_per_clip"] / 100e9
    )
    raised = rebound_embedding(base, {"achievable": 200e9, "torch_one_core": 80e9})
    bound = raised["flop_bound"]
    assert bound["machine_flops_per_s"] == 200e9 and bound["thread_matmul_flops_per_s"] == 80e9
    assert bound["fraction_of_flop_bound"] == pytest.approx(
        base["flop_bound"]["fraction_of_flop_bound"] / 2
    )
    assert bound["graphs"]["mel"]["fraction_of_thread_bound"] == pytest.approx(
        mel["fraction_of_thread_bound"] * 50 / 80
    )
    kept = rebound_embedding(base, {"achievable": 10e9, "torch_one_core": 10e9})["flop_bound"]
    assert kept["machine_flops_per_s"] == 100e9  # a slower matmul never lowers the bound


def test_flop_bound_section_names_what_bounds_it() -> None:
    spec = EmbeddingSpec()
    embedding = {
        "threads": 1,
        "batch_clips": 64,
        "context_seconds": 2.0,
        "n_frames": 16,
        "flop_bound": embedding_flop_bound(
            spec, 150.0, 160e9, 90e9, {"mel": 700.0, "sequence": 200.0}
        ),
    }
    lines = "\n".join(flop_bound_section(None, embedding))
    assert "| speech embedding (SpeechEmbeddingFrontEnd, batches of 64) | 1 | 363.0 |" in lines
    assert "197 mel frames → 16 windows of 76" in lines
    assert "dense DFT" in lines and "What bounds it" in lines
    assert "56% of the all-core 160.0" in lines  # one thread's matmul caps the share
    sequence = 200.0 * embedding["flop_bound"]["graphs"]["sequence"]["flops_per_clip"]
    assert f"the embedding graph {sequence / 1e9:,.1f} GFLOP/s ({sequence / 90e9 * 100:,.0f}%)" in (
        lines
    )
    share = 150.0 * embedding["flop_bound"]["flops_per_clip"] / 90e9
    assert f"**{share * 100:,.1f}%**" in lines  # the share of the one-thread matmul
