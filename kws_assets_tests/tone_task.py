"""The tone task: four synthetic classes of 1-s clips (low tone, high tone, chirp, noise burst)
that a small DS-CNN separates in seconds, and that model trained once per test process.

Shared by the training, distillation, export and CLI tests and by ``tone_detector``: a fixture
library of its own, so no test module imports another.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from kws_assets.core.features.mfcc import FeatureSpec, MfccExtractor, compute_norm_stats, normalize
from kws_assets.core.model.training import TrainResult, train_model
from kws_assets.settings import AudioSettings, FeatureSettings, ModelSettings, TrainSettings

SR = 16000
CLIP = 16000
TONE_LABELS = ["low_tone", "high_tone", "chirp", "noise_burst"]
SMALL_MODEL = ModelSettings(n_filters=32, n_blocks=2)
FAST_TRAIN = TrainSettings(
    max_epochs=30, min_epochs=1, batch_size=32, learning_rate=3e-3, patience=3, seed=0, threads=1
)


def tone_clip(label_index: int, rng: np.random.Generator) -> np.ndarray:
    """One 1-s clip of a class: a burst of a low tone, high tone, rising chirp or noise, in
    noise."""
    t = np.arange(CLIP) / SR
    start = rng.uniform(0.05, 0.5)
    duration = rng.uniform(0.25, 0.45)
    envelope = ((t >= start) & (t < start + duration)).astype(np.float64)
    if label_index == 0:
        burst = np.sin(2 * np.pi * rng.uniform(300, 600) * t)
    elif label_index == 1:
        burst = np.sin(2 * np.pi * rng.uniform(1500, 2800) * t)
    elif label_index == 2:
        freq = np.interp(t, [start, start + duration], [300.0, 2800.0])
        burst = np.sin(2 * np.pi * np.cumsum(freq) / SR)
    else:
        burst = rng.standard_normal(CLIP) * 0.5
    clip = burst * envelope * rng.uniform(0.05, 0.5) + rng.standard_normal(CLIP) * rng.uniform(
        0.002, 0.02
    )
    return clip.astype(np.float32)


def make_tone_clips(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(clips [n, 16000] float32, labels [n] int64)`` of the four tone classes, interleaved."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(len(TONE_LABELS)), n_per_class).astype(np.int64)
    return np.stack([tone_clip(int(label), rng) for label in y]), y


@dataclass(frozen=True)
class ToneTask:
    spec: FeatureSpec  # with train normalisation stats
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    clips_test: np.ndarray


@functools.lru_cache(maxsize=1)
def tone_task() -> ToneTask:
    """Normalised MFCC train/val/test sets of the tone task."""
    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
    extractor = MfccExtractor(spec)
    clips_train, y_train = make_tone_clips(50, seed=10)
    clips_val, y_val = make_tone_clips(15, seed=11)
    clips_test, y_test = make_tone_clips(15, seed=12)
    raw_train = extractor(clips_train)
    spec = spec.with_stats(*compute_norm_stats(raw_train))
    return ToneTask(
        spec=spec,
        x_train=normalize(raw_train, spec),
        y_train=y_train,
        x_val=normalize(extractor(clips_val), spec),
        y_val=y_val,
        x_test=normalize(extractor(clips_test), spec),
        y_test=y_test,
        clips_test=clips_test,
    )


@functools.lru_cache(maxsize=1)
def trained_tone_model() -> tuple[ToneTask, TrainResult, list[str]]:
    """The tone task, a small DS-CNN trained on it, and the log lines of that training."""
    task = tone_task()
    lines: list[str] = []
    result = train_model(
        task.x_train,
        task.y_train,
        task.x_val,
        task.y_val,
        TONE_LABELS,
        SMALL_MODEL,
        FAST_TRAIN,
        log=lines.append,
    )
    return task, result, lines


def warbles(n: int, seed: int) -> np.ndarray:
    """A sound that is none of the four classes but that the tone model takes for the chirp: a
    warbling tone burst (1.2 kHz, +-0.8 kHz at 6 Hz), in noise, at the task's levels (the review
    tests' "television" that wakes the device)."""
    rng = np.random.default_rng(seed)
    t = np.arange(CLIP) / SR
    out = []
    for _ in range(n):
        start, duration = rng.uniform(0.05, 0.5), rng.uniform(0.25, 0.45)
        freq = 1200.0 + 800.0 * np.sin(2 * np.pi * 6.0 * t + rng.uniform(0, 2 * np.pi))
        phase = 2 * np.pi * np.cumsum(freq) / SR
        envelope = ((t >= start) & (t < start + duration)).astype(np.float64)
        level, noise = rng.uniform(0.05, 0.5), rng.uniform(0.002, 0.02)
        x = level * envelope * np.sin(phase) + noise * rng.standard_normal(CLIP)
        out.append(x.astype(np.float32))
    return np.stack(out)
