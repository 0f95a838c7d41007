"""The TFLite-Micro audio front end (what ESPHome's ``micro_wake_word`` computes on the device),
through the ``pymicro-features`` package: 40 features every 10 ms from a 30-ms window.

Not a hand copy: ``pymicro_features.MicroFrontend`` wraps the same C front end (noise reduction,
PCAN gain control, log scale) with ESPHome's settings, and ``pymicro_wakeword``'s
``MicroWakeWordFeatures`` streams audio through it the same way.  A clip is featurized by a
front end fed 10-ms chunks of 16-bit PCM, warmed up on the clip itself reversed (see
:func:`clip_features`); a 1-s clip gives 98 frames (the first ends 30 ms into the clip).
Values are the front end's floats (0..~26), which the device quantises to int8 with a fixed
scale, so nothing is normalised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from kws_assets.core.tables import MICRO_COLUMN

FAMILY = "micro_wake_word"
"""The family whose front end this is (recorded in ``front_end.json``)."""
COLUMN = MICRO_COLUMN
SAMPLE_RATE = 16_000
N_FEATURES = 40
STEP_MS = 10
WINDOW_MS = 30
CACHE_FORMAT = 2
"""Bumped when a clip's features change for the same spec (the feature cache's key)."""
_STEP = SAMPLE_RATE * STEP_MS // 1000
_WINDOW = SAMPLE_RATE * WINDOW_MS // 1000


def n_frames_of(samples: int) -> int:
    """Feature frames the front end gives for ``samples`` samples."""
    return 0 if samples < _WINDOW else (samples - _WINDOW) // _STEP + 1


@dataclass(frozen=True)
class MicroFrontEndSpec:
    """The front-end contract, saved as ``front_end.json`` in an artifact folder."""

    sample_rate: int = SAMPLE_RATE
    clip_samples: int = SAMPLE_RATE
    n_features: int = N_FEATURES
    step_ms: int = STEP_MS
    window_ms: int = WINDOW_MS
    family: str = field(default=FAMILY)

    def __post_init__(self) -> None:
        fixed = (self.sample_rate, self.n_features, self.step_ms, self.window_ms, self.family)
        if fixed != (SAMPLE_RATE, N_FEATURES, STEP_MS, WINDOW_MS, FAMILY):
            raise ValueError(
                f"the TFLite-Micro front end is {SAMPLE_RATE} Hz, {N_FEATURES} features, "
                f"{STEP_MS}/{WINDOW_MS} ms ({FAMILY}); got {fixed}"
            )
        if self.n_frames < 1:
            raise ValueError(f"a {self.clip_samples}-sample clip is shorter than one window")

    @property
    def n_frames(self) -> int:
        return n_frames_of(self.clip_samples)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_features)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "n_frames": self.n_frames}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> MicroFrontEndSpec:
        values = dict(data)
        recorded = values.pop("n_frames", None)
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown front-end fields {sorted(unknown)}")
        spec = cls(**values)  # type: ignore[arg-type]
        if recorded is not None and recorded != spec.n_frames:
            raise ValueError(f"n_frames {recorded} does not match the spec ({spec.n_frames})")
        return spec


def config_hash(spec: MicroFrontEndSpec) -> str:
    """A short hash of everything that determines a clip's features: the feature cache's key."""
    payload = {**spec.to_dict(), "format": CACHE_FORMAT}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def pcm16(audio: np.ndarray) -> bytes:
    """Float audio in [-1, 1] as little-endian 16-bit PCM bytes (what the front end reads)."""
    scaled = np.round(np.asarray(audio, dtype=np.float64) * 32767.0)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


def stream_features(audio: np.ndarray) -> np.ndarray:
    """Features ``[frames, 40]`` of float audio at 16 kHz, from a fresh front end fed 10-ms
    chunks (the host runtime's ``MicroWakeWordFeatures`` gives the same frames)."""
    from pymicro_features import MicroFrontend  # type: ignore[import-untyped]

    frontend = MicroFrontend()
    data = pcm16(audio)
    frames: list[list[float]] = []
    chunk = 2 * _STEP
    offset = 0
    while offset + chunk <= len(data):
        result = frontend.process_samples(data[offset : offset + chunk])
        offset += result.samples_read * 2
        if result.features:
            frames.append(result.features)
    if not frames:
        return np.empty((0, N_FEATURES), dtype=np.float32)
    return np.asarray(frames, dtype=np.float32)


def clip_features(clip: np.ndarray, n_frames: int) -> np.ndarray:
    """Features ``[n_frames, 40]`` of one clip as a running front end would see them: the
    front end first hears the clip reversed (its own level and noise, no keyword order), so its
    noise and gain estimates have settled as on a device that has been listening, instead of
    starting from zero at the clip's first sample (a fresh front end hears the clip's onset as
    a burst); the clip's own frames follow, aligned to its first sample."""
    warm = np.concatenate([clip[::-1], clip])
    return stream_features(warm)[len(clip) // _STEP :][:n_frames]


class MicroFeatures:
    """Features of a batch of clips ``[n, clip_samples]`` -> ``[n, n_frames, 40]`` float32 (the
    feature table's call and the classifier's; see :func:`clip_features`)."""

    def __init__(self, spec: MicroFrontEndSpec) -> None:
        self.spec = spec

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        out = np.zeros((len(clips), *self.spec.shape), dtype=np.float32)
        for i, clip in enumerate(clips):
            clip = np.asarray(clip, dtype=np.float32)[: self.spec.clip_samples]
            if len(clip) < self.spec.clip_samples:
                clip = np.pad(clip, (0, self.spec.clip_samples - len(clip)))
            out[i] = clip_features(clip, self.spec.n_frames)
        return out
