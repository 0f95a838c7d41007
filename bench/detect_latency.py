"""Streaming detection cost per 1-s window: ``kws detect``'s path against the naive peer.

``StreamingDetector`` computes the MFCC frames of a recording once and classifies every window
(one per hop) from shared frames in batches; the peer does what a device loop without frame
sharing does: cut each 1-s window out of the audio, featurize it and classify it alone (batch 1).
Both run the same int8 artifact on the same recording, timed in interleaved rounds; the
comparable number is the ratio.  The artifact is a DS-CNN with the demo's shape and random
weights (cost does not depend on the weights' values).

    python -m bench.detect_latency [--seconds 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.timing import interleaved
from kws_assets.core.audio.io import colored_noise
from kws_assets.core.families import load_classifier
from kws_assets.core.families.mfcc_dscnn import write_artifact
from kws_assets.core.features.mfcc import FeatureSpec, MfccExtractor, compute_norm_stats, normalize
from kws_assets.core.model.detect import StreamingDetector
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.ship.export import export_onnx, quantize_int8
from kws_assets.settings import AudioSettings, FeatureSettings, ModelSettings

LABELS = [
    "_silence_",
    "_unknown_",
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
]
HOP_MS = 100.0


def _artifact(folder: Path, spec: FeatureSpec, audio: np.ndarray) -> Path:
    torch.manual_seed(0)
    model = DSCNN(len(LABELS), ModelSettings()).eval()
    count = min(32, audio.size // spec.clip_samples)
    clips = np.stack(
        [audio[i * spec.clip_samples : (i + 1) * spec.clip_samples] for i in range(count)]
    )
    raw = MfccExtractor(spec)(clips)
    spec = spec.with_stats(*compute_norm_stats(raw))
    float_path = export_onnx(model, spec, folder / "model.onnx")
    int8_path = quantize_int8(float_path, folder / "model.int8.onnx", normalize(raw, spec))
    return write_artifact(folder / "artifact", int8_path, LABELS, spec, {})


def run_detect_bench(seconds: float = 60.0, rounds: int = 3, threads: int = 1) -> dict:
    """Milliseconds per window of the streaming path and of the per-window peer."""
    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
    rng = np.random.default_rng(0)
    audio = (0.05 * colored_noise("pink", int(seconds * spec.sample_rate), rng)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="kws-bench-detect-") as tmp:
        classifier = load_classifier(_artifact(Path(tmp), spec, audio), threads=threads)
        detector = StreamingDetector(classifier, hop_ms=HOP_MS)
        hop = detector.stride_frames * spec.hop_length
        starts = range(0, audio.size - spec.clip_samples + 1, hop)
        extractor = MfccExtractor(classifier.spec)

        def per_window() -> None:
            for start in starts:
                window = audio[start : start + spec.clip_samples][None, :]
                classifier.classify_features(normalize(extractor(window), classifier.spec))

        windows = len(detector.posteriors(audio, spec.sample_rate).start_s)
        timings = interleaved(
            {
                "streaming": (lambda: detector.posteriors(audio, spec.sample_rate), windows),
                "per_window": (per_window, len(starts)),
            },
            rounds,
        )
    ms = {name: 1000.0 * t.best_s / t.items for name, t in timings.items()}
    return {
        "audio_seconds": seconds,
        "hop_ms": HOP_MS,
        "threads": threads,
        "windows": {name: t.items for name, t in timings.items()},
        "ms_per_window": ms,
        "streaming_speedup": ms["per_window"] / ms["streaming"],
        "real_time_factor_streaming": timings["streaming"].best_s / seconds,
        "timings": {name: t.as_dict() for name, t in timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(run_detect_bench(args.seconds, args.rounds, args.threads), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
