"""The per-stage parallel bench: every stage beside its kernel at 1 and 2 workers."""

from __future__ import annotations

from bench.parallel_stages import run_parallel_stages_bench


def test_each_stage_is_timed_beside_its_kernel_at_one_and_two_workers() -> None:
    result = run_parallel_stages_bench(
        n_clips=6, n_recipes=4, n_utterances=2, rounds=1, max_workers=2
    )
    assert result["workers"] == [1, 2]
    for stage in ("augmentation", "synthesis", "alignment"):
        section = result[stage]
        assert len(section["items_per_s"]) == 3  # the kernel, 1 worker, 2 workers
        assert set(section["stage_over_kernel"]) == {"1", "2"}
        assert all(ratio > 0 for ratio in section["stage_over_kernel"].values())
        assert section["speedup_over_one_worker"]["1"] == 1.0
