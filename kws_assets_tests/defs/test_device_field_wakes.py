"""device_model's model card counts how often the shipped network fires on the confirmed field
false wakes, read from the MFCC table by clip id (rows the table lacks are left out)."""

from __future__ import annotations

import numpy as np
import polars as pl

from kws_assets.core.features.mfcc import MfccExtractor
from kws_assets.core.tables import MFCC_COLUMN
from kws_assets.defs.assets.device import _field_false_wakes
from kws_assets_tests.tone_task import TONE_LABELS, trained_tone_model, warbles


def test_the_shipped_network_is_scored_on_the_confirmed_false_wakes():
    task, deployed, _ = trained_tone_model()
    raw = MfccExtractor(task.spec)(warbles(6, seed=3))
    table = pl.DataFrame(
        {
            "clip_id": [f"f{i}" for i in range(6)],
            MFCC_COLUMN: pl.Series(
                raw.astype(np.float32), dtype=pl.Array(pl.Float32, raw.shape[1:])
            ),
        }
    )
    false_wakes = pl.DataFrame(
        {"clip_id": ["f5", "f0", "f1", "gone"], "split": ["train", "val", "test", "train"]}
    )
    rate = _field_false_wakes(
        false_wakes, table.lazy(), deployed.model, task.spec, TONE_LABELS, ["chirp"]
    )
    assert rate is not None
    assert (rate.clips, rate.in_training, rate.fired_before) == (3, 1, 3)
    assert rate.fired_after == 3  # the tone model takes every warble for the chirp
    none = _field_false_wakes(
        false_wakes.clear(), table.lazy(), deployed.model, task.spec, TONE_LABELS, ["chirp"]
    )
    assert none is None
