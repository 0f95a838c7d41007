"""One tiny DS-CNN trained for real on the tone data, exported to int8 ONNX and int8 TFLite once
per test process and shared by the ship tests (about 15 s, most of it importing TensorFlow)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from kws_assets.core.features.mfcc import FeatureSpec, MfccExtractor, compute_norm_stats, normalize
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.model.training import train_model
from kws_assets.core.ship.export import export_onnx, quantize_int8
from kws_assets.core.ship.tflite import export_int8_tflite
from kws_assets.settings import AudioSettings, FeatureSettings
from kws_assets_tests.tone_detector import LABELS, SMALL_MODEL, TRAIN, labelled_clips

TEST_PER_CLASS = 50


@dataclass(frozen=True)
class ShipModel:
    model: DSCNN
    spec: FeatureSpec
    folder: Path
    tflite: Path
    onnx_int8: Path
    x_test: np.ndarray
    y_test: np.ndarray
    clips_test: np.ndarray


@pytest.fixture(scope="session")
def ship_model() -> ShipModel:
    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
    extractor = MfccExtractor(spec)
    clips_train, y_train = labelled_clips(40, seed=20)
    clips_val, y_val = labelled_clips(12, seed=21)
    clips_test, y_test = labelled_clips(TEST_PER_CLASS, seed=22)
    raw = extractor(clips_train)
    spec = spec.with_stats(*compute_norm_stats(raw))
    x_train, x_val = normalize(raw, spec), normalize(extractor(clips_val), spec)
    x_test = normalize(extractor(clips_test), spec)
    result = train_model(x_train, y_train, x_val, y_val, LABELS, SMALL_MODEL, TRAIN)
    folder = Path(tempfile.mkdtemp(prefix="kws-ship-"))
    calibration = x_train[:128]
    onnx_int8 = quantize_int8(
        export_onnx(result.model, spec, folder / "model.onnx"),
        folder / "model.int8.onnx",
        calibration,
    )
    tflite = export_int8_tflite(result.model, spec, calibration, folder / "model.int8.tflite")
    return ShipModel(result.model, spec, folder, tflite, onnx_int8, x_test, y_test, clips_test)
