"""int8 vs float ONNX inference latency per 1-s window (batch 1) and the artifact sizes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.ship.cpu_latency import measure_precision_latency
from kws_assets.core.ship.export import export_onnx, onnx_logits, quantize_int8
from kws_assets.settings import ModelSettings

DEMO_CLASSES = 12  # _silence_, _unknown_ and the ten Speech Commands keywords
BATCH = 16  # windows per call when scoring offline (kws detect batches its windows)


def run_onnx_bench(
    spec: FeatureSpec,
    features: np.ndarray,
    runs: int,
    rounds: int = 5,
    threads: int = 1,
    model_settings: ModelSettings | None = None,
) -> dict:
    """Median latency (µs per window) of the float and the int8 model at batch 1 (one window
    ``[1, n_frames, n_mfcc]``, streaming) and at batch 16 (offline scoring), measured in
    interleaved rounds of ``runs`` calls each by the same code that writes an artifact's
    ``cpu_latency.json`` (:func:`measure_precision_latency`), and the precision it advises.

    The DS-CNN has the demo's shape and random weights: latency and size do not depend on the
    weights' values; int8 calibration uses ``features`` (normalised MFCCs of the bench clips).
    """
    torch.manual_seed(0)
    model = DSCNN(DEMO_CLASSES, model_settings or ModelSettings()).eval()
    x = np.ascontiguousarray(features, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="kws-bench-onnx-") as tmp:
        float_path, int8_path = Path(tmp) / "model.float.onnx", Path(tmp) / "model.int8.onnx"
        export_onnx(model, spec, float_path)
        quantize_int8(float_path, int8_path, x[:256])
        models = {"float": float_path, "int8": int8_path}
        sizes = {kind: path.stat().st_size for kind, path in models.items()}
        predictions = {
            kind: np.argmax(onnx_logits(path, x[:64]), axis=1) for kind, path in models.items()
        }
        latency = measure_precision_latency(
            models, x[:64], batch_sizes=(1, BATCH), calls=runs, rounds=rounds, threads=threads
        )
    median_us = {kind: latency.median_us[kind][1] for kind in models}
    batched_us = {kind: latency.median_us[kind][BATCH] for kind in models}
    return {
        "threads": threads,
        "calls_per_model": latency.calls_per_batch,
        "median_us": median_us,
        "batch": BATCH,
        "batched_us_per_window": batched_us,
        "int8_speedup": latency.speedup(1),
        "int8_speedup_batched": latency.speedup(BATCH),
        "advised_precision": latency.recommended,
        "size_kib": {kind: size / 1024 for kind, size in sizes.items()},
        "int8_size_ratio": sizes["int8"] / sizes["float"],
        "top1_agreement_float_vs_int8": float(np.mean(predictions["float"] == predictions["int8"])),
        "onnxruntime": ort.__version__,
    }
