"""Size presets: the weight-byte formula matches real .tflite exports; presets fit their budgets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.ship.presets import (
    FILTER_STEP,
    TINY16K_BUDGET_BYTES,
    dscnn_int8_weight_bytes,
    preset_settings,
    widest_filters,
)
from kws_assets.core.ship.tflite import export_int8_tflite, int8_weight_bytes
from kws_assets.settings import AudioSettings, FeatureSettings, ModelSettings


@pytest.mark.parametrize(
    "n_classes,settings",
    [
        (4, ModelSettings(n_filters=24, n_blocks=1)),
        (12, ModelSettings(n_filters=16, n_blocks=3, first_kernel=(5, 3))),
    ],
)
def test_formula_matches_tflite(tmp_path, n_classes, settings) -> None:
    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((8, *spec.shape)).astype(np.float32)
    path = export_int8_tflite(DSCNN(n_classes, settings), spec, x, tmp_path / "m.tflite")
    assert int8_weight_bytes(path) == dscnn_int8_weight_bytes(n_classes, settings)


def test_presets_fit_their_budgets() -> None:
    for n_classes in (4, 12):
        tiny = preset_settings("tiny16k", n_classes)
        assert tiny.n_blocks == 4 and tiny.n_filters % FILTER_STEP == 0
        assert dscnn_int8_weight_bytes(n_classes, tiny) <= TINY16K_BUDGET_BYTES
        wider = tiny.model_copy(update={"n_filters": tiny.n_filters + FILTER_STEP})
        assert dscnn_int8_weight_bytes(n_classes, wider) > TINY16K_BUDGET_BYTES
        mlperf = preset_settings("mlperf", n_classes)
        assert (mlperf.n_filters, mlperf.n_blocks) == (64, 4)
    # hand count of MLPerf Tiny's DS-CNN-S, 12 classes: stem 10*4*64 + 64 int32 biases,
    # 4 x (9*64 + 64*64 + 2*64 biases), classifier 64*12 + 12 biases
    assert dscnn_int8_weight_bytes(12, preset_settings("mlperf", 12)) == (
        2560 + 256 + 4 * (576 + 4096 + 512) + 768 + 48
    )
    with pytest.raises(ValueError, match="unknown preset"):
        preset_settings("huge", 4)
    with pytest.raises(ValueError, match="fits 100 bytes"):
        widest_filters(4, 100)
