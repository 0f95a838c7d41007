"""The device folder in one call: every file there, the manifest loads, the card has the sizes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from kws_assets.core.families import REGISTRY
from kws_assets.core.ship.device_folder import (
    MODEL_CARD_FILE,
    TFLITE_FILE,
    DeviceClassifier,
    write_device_folder,
)
from kws_assets.core.ship.manifest import (
    MANIFEST_FILE,
    ManifestError,
    OperatingPoint,
    load_manifest,
)
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


@pytest.fixture
def device(ship_model, tmp_path) -> Path:
    return write_device_folder(
        tmp_path / "device",
        ship_model.model,
        ship_model.spec,
        ship_model.x_test[:64],
        LABELS,
        POINT,
        hop_seconds=0.1,
    )


def test_the_registry_runs_the_device_tflite(ship_model, device) -> None:
    """``kws classify/detect`` load a device folder through the registry: its own .tflite,
    the same scores as the interpreter on the same features."""
    classifier = REGISTRY.load_classifier(device)
    assert isinstance(classifier, DeviceClassifier)
    assert classifier.labels == LABELS
    clips = ship_model.clips_test[:8]
    expected = TfliteClassifier(device / TFLITE_FILE).classify_features(ship_model.x_test[:8])
    np.testing.assert_allclose(classifier.classify_clips(clips), expected, atol=1e-6)
    assert (
        classifier.classify_clips(ship_model.clips_test).argmax(1) == ship_model.y_test
    ).mean() > 0.8


def _edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / MANIFEST_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_wrong_manifest_version_is_a_clear_error(device) -> None:
    _edit_manifest(device, schema="kws-manifest-v0")
    with pytest.raises(ManifestError, match="schema is 'kws-manifest-v0'"):
        REGISTRY.load_classifier(device)


def test_a_missing_model_file_is_a_clear_error(device) -> None:
    (device / TFLITE_FILE).unlink()
    with pytest.raises(ManifestError, match=f"lists {TFLITE_FILE}, which is missing"):
        REGISTRY.load_classifier(device)


def test_a_model_that_does_not_fit_the_front_end_is_a_clear_error(ship_model, device) -> None:
    other = ship_model.spec.model_copy(update={"n_mfcc": ship_model.spec.n_mfcc + 2})
    with pytest.raises(ManifestError, match="does not match the manifest's front end"):
        DeviceClassifier(TfliteClassifier(device / TFLITE_FILE), LABELS, other)
    with pytest.raises(ManifestError, match="outputs but"):
        DeviceClassifier(TfliteClassifier(device / TFLITE_FILE), LABELS[:3], ship_model.spec)
