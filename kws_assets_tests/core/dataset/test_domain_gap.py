"""Synthetic vs recorded speech in feature space: the Fréchet distance and the per-keyword gap."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kws_assets.core.dataset import domain_gap as G


def test_frechet_distance_grows_with_the_gap_between_distributions() -> None:
    rng = np.random.default_rng(4)
    a = rng.standard_normal((400, 3))
    same = G.frechet_distance(a, rng.standard_normal((400, 3)))
    shifted = G.frechet_distance(a, rng.standard_normal((400, 3)) + 1.0)
    assert same < 0.1 and shifted == pytest.approx(3.0, rel=0.2)
    assert G.frechet_distance(a, rng.standard_normal((400, 3)) * 2, diagonal=True) == pytest.approx(
        3.0, rel=0.25
    )  # unit std vs std 2 in three dimensions


def test_synthetic_vs_real_gap_per_keyword() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for source, shift in (("synthetic", 2.0), ("demo", 0.0), ("synthetic+aug", 9.0)):
        for _ in range(12):
            rows.append(
                {
                    "label": "yes",
                    "source": source,
                    "mfcc": (rng.standard_normal((49, 10)) + shift).astype(np.float32),
                }
            )
    rows.append({"label": "no", "source": "synthetic", "mfcc": np.zeros((49, 10), np.float32)})
    table = pl.DataFrame(rows, schema_overrides={"mfcc": pl.Array(pl.Float32, (49, 10))})
    gap = G.synthetic_real_gap(table, ["yes", "no"]).sort("keyword", descending=True)
    yes, no = gap.to_dicts()
    assert (yes["synthetic_clips"], yes["real_clips"]) == (12, 12)  # augmented copies left out
    assert yes["frechet_synthetic_real"] > 5 * yes["frechet_real_halves"]
    assert no["frechet_synthetic_real"] is None
