"""A small real int8 artifact for streaming tests: two "keywords" that are tone bursts.

Labels follow the pipeline's convention: ``_silence_`` (faint noise), ``_unknown_`` (chirps and
noise bursts), then the keywords ``low_tone`` (300-600 Hz) and ``high_tone`` (1.5-2.8 kHz).
A DS-CNN is trained on them for real, exported, quantised to int8 and written as an artifact
folder, so the detection, evaluation and CLI tests run the genuine model path end to end.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_assets.core.families.mfcc_dscnn import write_artifact
from kws_assets.core.features.mfcc import FeatureSpec, MfccExtractor, compute_norm_stats, normalize
from kws_assets.core.model.training import train_model
from kws_assets.core.ship.export import export_onnx, quantize_int8
from kws_assets.settings import AudioSettings, FeatureSettings, ModelSettings, TrainSettings
from kws_assets_tests.tone_task import CLIP, SR, tone_clip

LABELS = ["_silence_", "_unknown_", "low_tone", "high_tone"]
KEYWORDS = LABELS[2:]
SMALL_MODEL = ModelSettings(n_filters=24, n_blocks=1)
# Trained to confident posteriors (~0.9 on a clean burst): 15 epochs classified right but with
# posteriors near 0.5, too flat for a streaming threshold. About 4 s.
TRAIN = TrainSettings(
    max_epochs=40, min_epochs=25, batch_size=32, learning_rate=3e-3, patience=6, seed=0, threads=1
)
SILENCE_NOISE = 0.004


def labelled_clip(label: str, rng: np.random.Generator) -> np.ndarray:
    """One 1-s clip of a class (tone bursts reuse the training tests' generator)."""
    if label == "_silence_":
        return (rng.standard_normal(CLIP) * SILENCE_NOISE * rng.uniform(0.3, 1.5)).astype(
            np.float32
        )
    if label == "_unknown_":
        return tone_clip(int(rng.choice([2, 3])), rng)
    return tone_clip(0 if label == "low_tone" else 1, rng)


def labelled_clips(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(len(LABELS)), n_per_class)
    return np.stack([labelled_clip(LABELS[i], rng) for i in y]), y.astype(np.int64)


@dataclass(frozen=True)
class ToneArtifact:
    folder: Path
    spec: FeatureSpec
    val_accuracy: float


@functools.lru_cache(maxsize=1)
def tone_artifact() -> ToneArtifact:
    """Train, quantise and write the artifact once per test process (a few seconds)."""
    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
    extractor = MfccExtractor(spec)
    clips_train, y_train = labelled_clips(40, seed=20)
    clips_val, y_val = labelled_clips(12, seed=21)
    raw = extractor(clips_train)
    spec = spec.with_stats(*compute_norm_stats(raw))
    x_train, x_val = normalize(raw, spec), normalize(extractor(clips_val), spec)
    result = train_model(x_train, y_train, x_val, y_val, LABELS, SMALL_MODEL, TRAIN)
    folder = Path(tempfile.mkdtemp(prefix="kws-tone-artifact-"))
    float_path = export_onnx(result.model, spec, folder / "model.onnx")
    int8_path = quantize_int8(float_path, folder / "model.int8.onnx", x_val)
    artifact = write_artifact(
        folder / "artifact", int8_path, LABELS, spec, {"val_accuracy": result.best_val_accuracy}
    )
    return ToneArtifact(artifact, spec, result.best_val_accuracy)


@functools.lru_cache(maxsize=1)
def tone_embedding_artifact() -> Path:
    """The same tone task for the speech_embedding family: a small head on the front end's
    embeddings, quantised and written as an artifact folder with its float graph (a few
    seconds)."""
    from kws_assets.core.families.speech_embedding import (
        write_artifact as write_embedding_artifact,
    )
    from kws_assets.core.features.speech_embedding import SpeechEmbeddingFrontEnd
    from kws_assets.core.model.embedding_head import train_head

    front_end = SpeechEmbeddingFrontEnd(threads=1)
    clips_train, y_train = labelled_clips(16, seed=30)
    clips_val, y_val = labelled_clips(6, seed=31)
    x_train, x_val = front_end(clips_train), front_end(clips_val)
    result = train_head(
        x_train,
        y_train,
        x_val,
        y_val,
        LABELS,
        TrainSettings(
            max_epochs=30,
            min_epochs=10,
            batch_size=16,
            learning_rate=3e-3,
            patience=8,
            seed=0,
            threads=1,
        ),
        kind="dnn",
        width=32,
    )
    folder = Path(tempfile.mkdtemp(prefix="kws-tone-embedding-"))
    float_path = export_onnx(result.model, front_end.spec, folder / "head.onnx")
    int8_path = quantize_int8(float_path, folder / "head.int8.onnx", x_val)
    return write_embedding_artifact(
        folder / "artifact",
        int8_path,
        LABELS,
        front_end.spec,
        {"val_accuracy": result.best_val_accuracy},
        float_onnx_path=float_path,
    )


@functools.lru_cache(maxsize=1)
def tone_micro_artifact() -> Path:
    """The same tone task for the micro_wake_word family: a small streaming network on the
    TFLite-Micro front end, written as an artifact folder (int8 ONNX, front_end.json; no ESPHome
    files: the evaluation runs the clip network), about 10 s."""
    import json

    from kws_assets.core.features.micro_frontend import MicroFeatures, MicroFrontEndSpec
    from kws_assets.core.model.streaming_net import StreamingKws, StreamingShape
    from kws_assets.core.ship.export import FRONT_END_FILE, write_artifact_folder
    from kws_assets.core.tables import MICRO_COLUMN

    spec = MicroFrontEndSpec()
    features = MicroFeatures(spec)
    clips_train, y_train = labelled_clips(30, seed=50)
    clips_val, y_val = labelled_clips(8, seed=51)
    x_train, x_val = features(clips_train), features(clips_val)
    shape = StreamingShape(channels=16, n_classes=len(LABELS))
    result = train_model(
        x_train,
        y_train,
        x_val,
        y_val,
        LABELS,
        ModelSettings(),
        TrainSettings(
            max_epochs=25, min_epochs=10, batch_size=16, learning_rate=3e-3, seed=0, threads=1
        ),
        augment=None,
        model_factory=lambda: StreamingKws(shape),
    )
    folder = Path(tempfile.mkdtemp(prefix="kws-tone-micro-"))
    float_path = export_onnx(result.model, spec, folder / "model.onnx", input_name=MICRO_COLUMN)
    int8_path = quantize_int8(float_path, folder / "model.int8.onnx", x_val)
    return write_artifact_folder(
        folder / "artifact",
        int8_path,
        LABELS,
        {"val_accuracy": result.best_val_accuracy},
        {FRONT_END_FILE: json.dumps(spec.to_dict(), indent=2) + "\n"},
    )


def tone_stream(events: list[tuple[float, str]], seconds: float, seed: int) -> np.ndarray:
    """Faint noise with tone bursts (0.3 s) starting at the given times; ``_unknown_`` events are
    chirps/noise bursts."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    audio = (rng.standard_normal(n) * SILENCE_NOISE).astype(np.float32)
    t = np.arange(int(0.3 * SR)) / SR
    for start_s, label in events:
        if label == "low_tone":
            burst = np.sin(2 * np.pi * 450 * t)
        elif label == "high_tone":
            burst = np.sin(2 * np.pi * 2200 * t)
        else:
            burst = rng.standard_normal(t.size)
        start = int(start_s * SR)
        audio[start : start + t.size] += (0.3 * burst).astype(np.float32)[: n - start]
    return audio


__all__ = [
    "KEYWORDS",
    "LABELS",
    "SR",
    "labelled_clips",
    "tone_artifact",
    "tone_embedding_artifact",
    "tone_micro_artifact",
    "tone_stream",
]
