"""int8 vs float ONNX inference latency per 1-s window (batch 1) and the artifact sizes."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from kws_assets.core.audio.features import FeatureSpec
from kws_assets.core.model.export import export_onnx, quantize_int8
from kws_assets.core.model.networks import DSCNN
from kws_assets.settings import ModelSettings

DEMO_CLASSES = 12  # _silence_, _unknown_ and the ten Speech Commands keywords
WARMUP_RUNS = 50


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx_bench(
    spec: FeatureSpec,
    features: np.ndarray,
    runs: int,
    rounds: int = 5,
    threads: int = 1,
    model_settings: ModelSettings | None = None,
) -> dict:
    """Median latency (µs) of one window ``[1, n_frames, n_mfcc]`` through the float and the
    int8 model, measured in interleaved rounds of ``runs`` calls each.

    The DS-CNN has the demo's shape and random weights: latency and size do not depend on the
    weights' values; int8 calibration uses ``features`` (normalised MFCCs of the bench clips).
    """
    torch.manual_seed(0)
    model = DSCNN(DEMO_CLASSES, model_settings or ModelSettings()).eval()
    x = np.ascontiguousarray(features, dtype=np.float32)
    windows = [x[i : i + 1] for i in range(min(len(x), 64))]
    with tempfile.TemporaryDirectory(prefix="kws-bench-onnx-") as tmp:
        float_path, int8_path = Path(tmp) / "model.float.onnx", Path(tmp) / "model.int8.onnx"
        export_onnx(model, spec, float_path)
        quantize_int8(float_path, int8_path, x[:256])
        sessions = {"float": _session(float_path, threads), "int8": _session(int8_path, threads)}
        sizes = {"float": float_path.stat().st_size, "int8": int8_path.stat().st_size}
        name = sessions["float"].get_inputs()[0].name
        agree = float(
            np.mean(
                [
                    np.argmax(sessions["float"].run(None, {name: w})[0])
                    == np.argmax(sessions["int8"].run(None, {name: w})[0])
                    for w in windows
                ]
            )
        )
        samples: dict[str, list[float]] = {"float": [], "int8": []}
        for session in sessions.values():
            for i in range(WARMUP_RUNS):
                session.run(None, {name: windows[i % len(windows)]})
        for _ in range(rounds):
            for kind, session in sessions.items():
                for i in range(runs):
                    window = windows[i % len(windows)]
                    started = time.perf_counter()
                    session.run(None, {name: window})
                    samples[kind].append(time.perf_counter() - started)
    median_us = {kind: statistics.median(values) * 1e6 for kind, values in samples.items()}
    p90_us = {kind: float(np.percentile(values, 90)) * 1e6 for kind, values in samples.items()}
    return {
        "threads": threads,
        "calls_per_model": runs * rounds,
        "median_us": median_us,
        "p90_us": p90_us,
        "int8_speedup": median_us["float"] / median_us["int8"],
        "size_kib": {kind: size / 1024 for kind, size in sizes.items()},
        "int8_size_ratio": sizes["int8"] / sizes["float"],
        "top1_agreement_float_vs_int8": agree,
        "onnxruntime": ort.__version__,
    }
