"""Outlier scores on an MFCC-statistics embedding, on generated keyword clips with a planted
outlier."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kws_assets.config import curation_settings
from kws_assets.core.dataset import curation
from kws_assets.core.dataset.outliers import MfccStatsEmbedder, outlier_scores, scores_by_label
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.settings import AudioSettings, FeatureSettings, KwsConfig
from kws_assets_tests.corpus_files import KEYWORD_VOICES, SR, beep, keyword_clip

SPEC = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
DEFAULT_THRESHOLD = KwsConfig().outliers.threshold


@pytest.fixture(scope="module")
def yes_clips() -> list[np.ndarray]:
    """'yes' by 12 voices at 2 rates, plus 6 copies in loud pink-ish noise: ordinary variety."""
    rng = np.random.default_rng(0)
    clips = [keyword_clip("yes", v, rate, rng) for v in KEYWORD_VOICES for rate in (140, 180)]
    clips += [keyword_clip("yes", v, 160, rng, noise_level=0.03) for v in KEYWORD_VOICES[:6]]
    return clips


def test_embedding_shape_and_gain_invariance(yes_clips):
    embedder = MfccStatsEmbedder(SPEC)
    batch = np.stack(yes_clips[:5])
    embedding = embedder(batch)
    assert embedding.shape == (5, 2 * (SPEC.n_mfcc - 1)) and np.isfinite(embedding).all()
    louder = embedder(batch * 2.5)
    assert np.abs(louder - embedding).max() < 0.05 * np.abs(embedding).mean()
    with pytest.raises(ValueError):
        embedder(batch[:, :100])


def test_planted_beep_scores_far_above_every_keyword_clip(yes_clips):
    scores = outlier_scores(MfccStatsEmbedder(SPEC)(np.stack([*yes_clips, beep()])))
    assert scores[-1] > DEFAULT_THRESHOLD
    assert scores[:-1].max() < DEFAULT_THRESHOLD
    assert scores[-1] > 1.5 * scores[:-1].max()


def test_scores_only_within_scored_labels_with_enough_clips():
    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((25, 4))
    labels = ["yes"] * 12 + ["no"] * 5 + ["_unknown_"] * 8
    scores = scores_by_label(labels, embeddings, {"yes", "no"}, min_clips=10)
    assert np.isfinite(scores[:12]).all()
    assert np.isnan(scores[12:]).all()  # 'no' has too few clips, _unknown_ is not scored
    # a group's scores do not depend on the other groups
    alone = scores_by_label(labels[:12], embeddings[:12], {"yes"}, min_clips=10)
    assert np.allclose(alone, scores[:12])


@pytest.mark.parametrize("quarantine", [True, False])
def test_curation_quarantines_the_outlier_or_keeps_it_with_its_score(
    tmp_path, yes_clips, quarantine
):
    store = ClipStore.at(tmp_path / "clips")
    rows = []
    for i, clip in enumerate([*yes_clips, beep()]):
        clip_id = f"clip{i:03d}"
        rows.append(
            {
                "clip_id": clip_id,
                "uri": store.put(store.key_for("t", "yes", clip_id), clip, SR),
                "label": "yes",
                "source": "t",
                "speaker": f"t:s{i % 9}",
                "language": "en",
                "origin_id": clip_id,
                "start_s": 0.0,
                "sample_rate": SR,
                "num_samples": SR,
            }
        )
    cfg = KwsConfig.model_validate({"keywords": ["yes"], "outliers": {"quarantine": quarantine}})
    result = curation.curate(curation.clip_table(rows), curation_settings(cfg), store.read)
    planted = rows[-1]["clip_id"]
    assert result.validated.height + result.quarantined.height == len(rows)
    outliers = result.quarantined.filter(pl.col("stage") == "outlier")
    if quarantine:
        assert outliers["clip_id"].to_list() == [planted]
        row = outliers.row(0, named=True)
        assert row["reason"] == "outlier" and row["outlier_score"] > DEFAULT_THRESHOLD
        assert "outlier_score=" in row["detail"]
        assert result.validated["outlier_score"].max() < DEFAULT_THRESHOLD
    else:
        assert outliers.height == 0
        score = result.validated.filter(pl.col("clip_id") == planted)["outlier_score"][0]
        assert score > DEFAULT_THRESHOLD
