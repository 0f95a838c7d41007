"""The device folder in one call: ``.tflite``, its C array, ``labels.json``, ``manifest.json`` and
``MODEL_CARD.md``, built beside the target and swapped into place whole.

This is what the graph's shipping asset calls for the MFCC DS-CNN: a microcontroller build needs
this folder and nothing else (``model_tflite.c`` compiled in, ``manifest.json`` for the arena
size and the operating point).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

from kws_assets.core.features.mfcc import FAMILY as MFCC_FAMILY
from kws_assets.core.features.mfcc import FeatureSpec, MfccExtractor, features_for_clips
from kws_assets.core.ship.c_array import (
    TFLITE_C_HEADER_FILE,
    TFLITE_C_SOURCE_FILE,
    write_tflite_c_files,
)
from kws_assets.core.ship.export import ClipClassifier
from kws_assets.core.ship.manifest import (
    MANIFEST_FILE,
    ManifestError,
    MfccFrontEnd,
    OperatingPoint,
    load_manifest,
    write_manifest,
)
from kws_assets.core.ship.model_card import ModelCardInputs, render_model_card
from kws_assets.core.ship.tflite import (
    TfliteClassifier,
    arena_plan,
    export_int8_tflite,
    int8_weight_bytes,
)
from kws_assets.core.storage.atomic_files import swap_folder_into_place, write_file_atomic

TFLITE_FILE = "model.int8.tflite"
MODEL_CARD_FILE = "MODEL_CARD.md"

PathLike = str | os.PathLike[str]


def write_device_folder(
    directory: PathLike,
    model: nn.Module,
    spec: FeatureSpec,
    calibration: np.ndarray,
    labels: Sequence[str],
    operating_point: OperatingPoint,
    hop_seconds: float,
    card: ModelCardInputs | None = None,
) -> Path:
    """Export the DS-CNN to int8 TFLite and write the whole device folder atomically.

    ``calibration``: normalised MFCC rows ``[n, n_frames, n_mfcc]`` (validation rows, as for the
    ONNX int8 model); ``hop_seconds``: the streaming stride the operating point was measured at.
    The card, when given, gets the measured sizes added.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        tflite = export_int8_tflite(model, spec, calibration, staging / TFLITE_FILE)
        write_tflite_c_files(staging, tflite, labels, spec)
        plan = arena_plan(tflite)
        weights = int8_weight_bytes(tflite)
        write_manifest(
            staging,
            family=MFCC_FAMILY,
            model_file=TFLITE_FILE,
            labels=labels,
            front_end=spec,
            operating_point=operating_point,
            int8_weight_bytes=weights,
            tensor_arena_bytes=plan.recommended_bytes,
            planned_activation_bytes=plan.planned_bytes,
            window_seconds=spec.clip_samples / spec.sample_rate,
            hop_seconds=hop_seconds,
            c_header=TFLITE_C_HEADER_FILE,
            c_source=TFLITE_C_SOURCE_FILE,
        )
        if card is not None:
            sizes = {
                **card.sizes,
                "int8_weight_bytes": weights,
                "tflite_file_bytes": tflite.stat().st_size,
                "planned_activation_bytes": plan.planned_bytes,
                "recommended_tensor_arena_bytes": plan.recommended_bytes,
            }
            write_file_atomic(
                staging / MODEL_CARD_FILE, render_model_card(dataclasses.replace(card, sizes=sizes))
            )
        swap_folder_into_place(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def is_device_folder(folder: PathLike) -> bool:
    """Whether ``folder`` holds a ``manifest.json`` (a device folder, well formed or not)."""
    return (Path(folder) / MANIFEST_FILE).is_file()


class DeviceClassifier(ClipClassifier):
    """Runs a device folder's int8 ``.tflite`` on the host as the microcontroller would (one
    window at a time, int8 in and out; LiteRT's reference kernels), with the MFCC front end its
    manifest describes: so ``kws classify/detect`` check the small-device model itself."""

    def __init__(self, model: TfliteClassifier, labels: list[str], spec: FeatureSpec) -> None:
        if model.input_shape != tuple(spec.shape):
            raise ManifestError(
                f"{model.path.name}: input {list(model.input_shape)} does not match the "
                f"manifest's front end {list(spec.shape)}"
            )
        if model.n_classes != len(labels):
            raise ManifestError(
                f"{model.path.name}: {model.n_classes} outputs but {len(labels)} labels"
            )
        self.model = model
        self.labels = labels
        self.spec: FeatureSpec = spec
        self._extractor = MfccExtractor(spec)

    @classmethod
    def load(cls, folder: PathLike, threads: int | None = None) -> DeviceClassifier:
        """Open a device folder; its manifest is checked against the files first
        (:func:`~kws_assets.core.ship.manifest.load_manifest`: schema, digests, labels)."""
        folder = Path(folder)
        manifest = load_manifest(folder)
        if manifest.model.format != "tflite" or not isinstance(manifest.front_end, MfccFrontEnd):
            raise ManifestError(
                f"{folder / MANIFEST_FILE}: a {manifest.model.format} model on a "
                f"{manifest.front_end.kind} front end; the host runs the MFCC .tflite"
            )
        model = TfliteClassifier(folder / manifest.model.file.path, threads)
        return cls(model, list(manifest.labels), manifest.front_end.features)

    def classify_features(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of normalised MFCC windows ``[n, n_frames, n_mfcc]``."""
        return self.model.classify_features(x)

    def classify_clips(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        if len(clips) == 0:
            return np.empty((0, len(self.labels)), dtype=np.float32)
        return self.classify_features(features_for_clips(clips, self.spec, self._extractor))
