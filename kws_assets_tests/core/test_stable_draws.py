"""Draws by member, not by position."""

from __future__ import annotations

import numpy as np

from kws_assets.core.stable_draws import stable_sample


def test_stable_sample_draws_by_member_not_by_position() -> None:
    pool = [f"clip{i:03d}" for i in range(200)]
    picks = [stable_sample(pool, 3, seed) for seed in range(100)]
    assert all(len(set(p)) == 3 and set(p) <= set(pool) for p in picks)
    assert len({tuple(p) for p in picks}) > 90  # the seed decides
    shuffled = list(np.random.default_rng(0).permutation(pool))
    assert [stable_sample(shuffled, 3, seed) for seed in range(100)] == picks
    assert all(
        "clip007" not in stable_sample(pool, 3, seed, exclude={"clip007"}) for seed in range(100)
    )
    # ten members join, one that no draw took leaves: few draws change (about 3 x 10 / 210)
    untaken = next(c for c in pool if all(c not in p for p in picks))
    grown = [c for c in pool if c != untaken] + [f"new{i}" for i in range(10)]
    changed = sum(stable_sample(grown, 3, seed) != p for seed, p in enumerate(picks))
    assert changed <= 30
    assert stable_sample([], 3, 1) == [] and stable_sample(pool, 0, 1) == []
