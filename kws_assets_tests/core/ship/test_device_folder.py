"""The device folder in one call: every file there, the manifest loads, the card has the sizes."""

from __future__ import annotations

import hashlib

import pytest

from kws_assets.core.ship.device_folder import MODEL_CARD_FILE, TFLITE_FILE, write_device_folder
from kws_assets.core.ship.manifest import OperatingPoint, load_manifest
from kws_assets.core.ship.model_card import ModelCardInputs
from kws_assets.core.ship.tflite import TfliteClassifier
from kws_assets_tests.tone_detector import LABELS

POINT = OperatingPoint(
    threshold=0.6, smoothing_windows=3, refractory_seconds=1.0, target_fa_per_hour=1.0
)


def test_device_folder(ship_model, tmp_path) -> None:
    card = ModelCardInputs(
        model_name="tones",
        family="mfcc",
        keywords=LABELS[2:],
        intended_use="tests",
        limitations=[],
        training_counts=[],
        evaluation={},
        target_fa_per_hour=1.0,
        frr_at_target=None,
        threshold=0.6,
        group_metrics=[],
        licenses=[],
    )
    folder = write_device_folder(
        tmp_path / "device",
        ship_model.model,
        ship_model.spec,
        ship_model.x_test[:64],
        LABELS,
        POINT,
        hop_seconds=0.1,
        card=card,
    )
    manifest = load_manifest(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            TFLITE_FILE,
            "model_tflite.h",
            "model_tflite.c",
            "labels.json",
            "manifest.json",
            MODEL_CARD_FILE,
        ]
    )
    assert manifest.audio.window_seconds == 1.0
    assert manifest.sizes.tensor_arena_bytes > manifest.sizes.planned_activation_bytes > 0
    text = (folder / MODEL_CARD_FILE).read_text()
    assert f"| int8\\_weight\\_bytes | {manifest.sizes.int8_weight_bytes} |" in text
    assert "No licenses were given" in text
    assert TfliteClassifier(folder / TFLITE_FILE).classify_features(
        ship_model.x_test[:4]
    ).shape == (4, 4)
    digest = hashlib.sha256((folder / TFLITE_FILE).read_bytes()).hexdigest()
    assert manifest.model.file.sha256 == digest
    # a failed export leaves the previous folder whole and no staging folder behind
    with pytest.raises(ValueError):
        write_device_folder(
            folder,
            ship_model.model,
            ship_model.spec,
            ship_model.x_test[:0],
            LABELS,
            POINT,
            hop_seconds=0.1,
        )
    assert load_manifest(folder).model.file.sha256 == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device"]
