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
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.ship.c_array import (
    TFLITE_C_HEADER_FILE,
    TFLITE_C_SOURCE_FILE,
    write_tflite_c_files,
)
from kws_assets.core.ship.manifest import OperatingPoint, write_manifest
from kws_assets.core.ship.model_card import ModelCardInputs, render_model_card
from kws_assets.core.ship.tflite import arena_plan, export_int8_tflite, int8_weight_bytes
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
