"""MFCC features: the one feature code path shared by training, export and inference.

The convention follows MLPerf Tiny / ARM's DS-CNN: 16 kHz audio, 40 ms Hann windows with a 20 ms
hop and no centre padding (49 frames for a 1 s clip), 40 mel bands between 20 Hz and 4 kHz, log-mel
energies and a DCT-II keeping 10 coefficients.  Log-mel (``log(mel + 1e-6)`` inside torchaudio)
is used rather than torchaudio's default dB scaling because dB scaling clamps to ``max - top_db``
over the whole batch, which would make one clip's features depend on the other clips it was
batched with.

``FeatureSpec`` is the self-contained feature contract saved next to a trained model; it carries
the per-coefficient normalisation statistics of the training split, so inference needs nothing but
the artifact folder.

``MfccExtractor`` takes its constants (window, mel filterbank, DCT matrix) from one
``torchaudio.transforms.MFCC`` and evaluates the same maths as a short chain of batched torch ops
(see :meth:`MfccExtractor.mfcc_chunk`); ``MfccExtractor.reference`` runs the torchaudio transform
itself, and the tests hold the two equal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torchaudio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kws_assets.core.audio.io import fit_to_length, read_audio
from kws_assets.core.features.table import ClipSpec
from kws_assets.core.tables import MFCC_COLUMN
from kws_assets.settings import AudioSettings, FeatureSettings

CHUNK_CLIPS = 16
"""Clips per batched MFCC evaluation: a chunk's frames (16 x 49 x 640 floats, 2 MB) stay in the
L2 cache, which on CPU is faster than one huge batch. Measured on the 2-core CI machine with two
worker threads: 8 -> ~14.4k, 16 -> ~16.3k, 32 -> ~14.8k clips/s (best of 5 interleaved rounds)."""

LOG_OFFSET = 1e-6
"""Added to mel energies before the log (torchaudio's ``MFCC(log_mels=True)`` uses the same)."""

MIN_STD = 1e-5
"""Floor for a normalisation standard deviation, so a constant coefficient cannot divide by 0."""

MS_PER_SECOND = 1000.0

PathLike = str | os.PathLike[str]

FAMILY = "mfcc"
"""The model family whose front end this is (artifacts and checkpoints record it)."""

COLUMN = MFCC_COLUMN
"""The feature column of the MFCC table."""
CACHE_FORMAT = "mfcc-cache-v2"
"""Goes into the cache file's name with the feature config: change it when the maths change."""


class FeatureSpec(BaseModel):
    """Everything needed to turn a WAV file into model input, saved as ``feature_config.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: int = Field(gt=0)
    clip_samples: int = Field(gt=0)
    window_ms: float = Field(gt=0)
    hop_ms: float = Field(gt=0)
    n_mels: int = Field(gt=0)
    n_mfcc: int = Field(gt=0)
    f_min: float = Field(ge=0)
    f_max: float = Field(gt=0)
    mean: list[float] | None = Field(None, description="Per-coefficient train-split mean.")
    std: list[float] | None = Field(None, description="Per-coefficient train-split std.")

    @model_validator(mode="after")
    def _check(self) -> FeatureSpec:
        if self.n_mfcc > self.n_mels:
            raise ValueError("n_mfcc must not exceed n_mels")
        if not self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError("need f_min < f_max <= sample_rate / 2")
        if self.win_length > self.clip_samples:
            raise ValueError("the analysis window is longer than a clip")
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must be given together")
        if self.mean is not None and self.std is not None:
            if len(self.mean) != self.n_mfcc or len(self.std) != self.n_mfcc:
                raise ValueError("mean/std must have one value per MFCC coefficient")
            if not all(math.isfinite(m) for m in self.mean):
                raise ValueError("mean must be finite")
            if not all(math.isfinite(s) and s > 0 for s in self.std):
                raise ValueError("std must be finite and positive")
        return self

    @classmethod
    def from_settings(cls, features: FeatureSettings, audio: AudioSettings) -> FeatureSpec:
        """The spec for a pipeline config (without normalisation stats)."""
        return cls(
            sample_rate=audio.sample_rate,
            clip_samples=audio.clip_samples,
            window_ms=features.window_ms,
            hop_ms=features.hop_ms,
            n_mels=features.n_mels,
            n_mfcc=features.n_mfcc,
            f_min=features.f_min,
            f_max=features.f_max,
        )

    def with_stats(self, mean: Sequence[float], std: Sequence[float]) -> FeatureSpec:
        """A copy carrying normalisation statistics (validated)."""
        data = self.model_dump()
        data.update(mean=[float(m) for m in mean], std=[float(s) for s in std])
        return FeatureSpec.model_validate(data)

    @property
    def win_length(self) -> int:
        """Analysis window length in samples (640 for 40 ms at 16 kHz)."""
        return round(self.sample_rate * self.window_ms / MS_PER_SECOND)

    @property
    def hop_length(self) -> int:
        """Frame hop in samples (320 for 20 ms at 16 kHz)."""
        return round(self.sample_rate * self.hop_ms / MS_PER_SECOND)

    @property
    def n_fft(self) -> int:
        """FFT size: one window (torchaudio frames by ``n_fft``, so a larger FFT would drop
        frames)."""
        return self.win_length

    @property
    def n_frames(self) -> int:
        """Frames per clip without centre padding (49 for the defaults)."""
        return 1 + (self.clip_samples - self.win_length) // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        """Feature shape of one clip: (n_frames, n_mfcc)."""
        return (self.n_frames, self.n_mfcc)

    @property
    def has_stats(self) -> bool:
        return self.mean is not None and self.std is not None


_TORCH_THREADS_LOCK = threading.Lock()
_single_threaded_depth = 0
_saved_torch_threads = 1


@contextlib.contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run a block with one torch intra-op thread, then restore the previous setting.

    The feature path parallelises over clips with Python threads (torch releases the GIL inside
    its kernels), so each thread runs torch single-threaded instead of oversubscribing the cores;
    on a busy 2-core machine torch's own intra-op threads make these small kernels several times
    slower.  The setting is process-wide, so nested and concurrent uses are counted: the first
    entry saves the previous thread count and the last exit restores it.
    """
    global _single_threaded_depth, _saved_torch_threads
    with _TORCH_THREADS_LOCK:
        if _single_threaded_depth == 0:
            _saved_torch_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _single_threaded_depth += 1
    try:
        yield
    finally:
        with _TORCH_THREADS_LOCK:
            _single_threaded_depth -= 1
            if _single_threaded_depth == 0:
                torch.set_num_threads(_saved_torch_threads)


class MfccExtractor:
    """Turns a batch of clips ``[n, clip_samples]`` into MFCCs ``[n, n_frames, n_mfcc]``.

    The clips are processed in chunks of ``chunk_clips`` with torch single-threaded (see
    :func:`single_threaded_torch`); with ``workers > 1`` the chunks are spread over that many
    threads.  Results do not depend on the chunking or the number of workers: every clip is
    computed on its own frames only.
    """

    def __init__(self, spec: FeatureSpec, chunk_clips: int = CHUNK_CLIPS, workers: int = 1) -> None:
        if chunk_clips < 1:
            raise ValueError("chunk_clips must be at least 1")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.spec = spec
        self.chunk_clips = chunk_clips
        self.workers = workers
        self._transform = torchaudio.transforms.MFCC(
            sample_rate=spec.sample_rate,
            n_mfcc=spec.n_mfcc,
            log_mels=True,
            melkwargs={
                "n_fft": spec.n_fft,
                "win_length": spec.win_length,
                "hop_length": spec.hop_length,
                "n_mels": spec.n_mels,
                "f_min": spec.f_min,
                "f_max": spec.f_max,
                "center": False,
                "window_fn": torch.hann_window,
                "power": 2.0,
            },
        ).eval()
        mel = self._transform.MelSpectrogram
        filterbank = mel.mel_scale.fb.detach().clone()  # [n_fft // 2 + 1, n_mels]
        used_bins = torch.nonzero(filterbank.abs().sum(dim=1) > 0).flatten()
        # Bins above the highest mel filter (f_max) have all-zero weights: skip them entirely.
        self.n_bins = int(used_bins.max()) + 1 if used_bins.numel() else 1
        self._window = mel.spectrogram.window.detach().clone()  # [n_fft] (win_length == n_fft)
        # One weight row for the real part and one for the imaginary part of each bin, so
        # |X|^2 = re^2 + im^2 is summed by the mel matmul itself.
        self._mel_weights = filterbank[: self.n_bins].repeat_interleave(2, dim=0).contiguous()
        self._dct = self._transform.dct_mat.detach().clone()  # [n_mels, n_mfcc]

    def mfcc_chunk(self, clips: torch.Tensor) -> torch.Tensor:
        """MFCCs ``[n, n_frames, n_mfcc]`` of float32 clips ``[n, clip_samples]``.

        Frames (a strided view, no centre padding) times the Hann window, a real FFT, the power
        spectrum of the bins below f_max folded into the mel matmul, ``log(mel + 1e-6)``, and the
        orthonormal DCT-II — the same sequence as torchaudio's ``MFCC(log_mels=True)``.
        """
        spec = self.spec
        frames = clips.unfold(-1, spec.n_fft, spec.hop_length) * self._window
        spectrum = torch.fft.rfft(frames, n=spec.n_fft)[..., : self.n_bins]
        power_parts = torch.view_as_real(spectrum).square_().flatten(-2)
        mel = torch.matmul(power_parts, self._mel_weights)
        return torch.matmul(mel.add_(LOG_OFFSET).log_(), self._dct)

    def _check(self, batch: np.ndarray) -> np.ndarray:
        clips = np.ascontiguousarray(batch, dtype=np.float32)
        if clips.ndim != 2 or clips.shape[1] != self.spec.clip_samples:
            raise ValueError(
                f"expected clips of shape [n, {self.spec.clip_samples}], got {clips.shape}"
            )
        return clips

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """MFCCs of each row of ``batch`` (float32 ``[n, clip_samples]``), un-normalised."""
        clips = self._check(batch)
        out = np.empty((clips.shape[0], *self.spec.shape), dtype=np.float32)
        starts = range(0, clips.shape[0], self.chunk_clips)

        def run(start: int) -> None:
            with torch.inference_mode():
                chunk = torch.from_numpy(clips[start : start + self.chunk_clips])
                out[start : start + chunk.shape[0]] = self.mfcc_chunk(chunk).numpy()

        with single_threaded_torch():
            if self.workers > 1 and len(starts) > 1:
                with ThreadPoolExecutor(self.workers) as pool:
                    list(pool.map(run, starts))
            else:
                for start in starts:
                    run(start)
        return out

    def reference(self, batch: np.ndarray) -> np.ndarray:
        """The same MFCCs computed by the ``torchaudio.transforms.MFCC`` transform itself."""
        clips = self._check(batch)
        with torch.inference_mode():
            mfcc = self._transform(torch.from_numpy(clips))  # [n, n_mfcc, n_frames]
        return mfcc.transpose(1, 2).contiguous().numpy()


def feature_config_hash(spec: FeatureSpec) -> str:
    """A short hash of everything that determines a clip's MFCC (normalisation stats excluded):
    the feature cache's key."""
    payload = spec.model_dump(mode="json", exclude={"mean", "std"})
    payload["format"] = CACHE_FORMAT
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def compute_norm_stats(mfcc: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-coefficient mean and std over all clips and frames of ``[n, n_frames, n_mfcc]``."""
    values = np.asarray(mfcc, dtype=np.float64)
    if values.ndim != 3 or values.shape[0] == 0:
        raise ValueError(f"expected a non-empty [n, n_frames, n_mfcc] array, got {values.shape}")
    flat = values.reshape(-1, values.shape[-1])
    mean = flat.mean(axis=0)
    std = np.maximum(flat.std(axis=0), MIN_STD)
    return mean.tolist(), std.tolist()


def normalize(mfcc: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Apply the spec's mean/std per coefficient (a float32 copy unchanged if it has none)."""
    values = np.asarray(mfcc, dtype=np.float32)
    if values.shape[-1] != spec.n_mfcc:
        raise ValueError(f"last axis must hold {spec.n_mfcc} coefficients, got {values.shape}")
    if spec.mean is None or spec.std is None:
        return values.copy()
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return ((values - mean) / std).astype(np.float32)


def load_clip(path: PathLike, spec: ClipSpec) -> np.ndarray:
    """One audio file as a model-ready clip: mono, resampled to the spec, padded or cut.

    Raises ``kws_assets.core.audio.io.AudioReadError`` for unreadable, empty or non-finite audio.
    """
    info = read_audio(path, target_sr=spec.sample_rate)
    return fit_to_length(info.samples, spec.clip_samples).astype(np.float32, copy=False)


def features_for_clips(
    clips: np.ndarray | Sequence[np.ndarray],
    spec: FeatureSpec,
    extractor: MfccExtractor | None = None,
) -> np.ndarray:
    """Normalised features ``[n, n_frames, n_mfcc]`` for clips already at the spec's rate/length."""
    extractor = extractor or MfccExtractor(spec)
    if len(clips) == 0:
        return np.empty((0, *spec.shape), dtype=np.float32)
    batch = np.stack([np.asarray(c, dtype=np.float32) for c in clips])
    return normalize(extractor(batch), spec)


def features_for_files(
    paths: Sequence[PathLike],
    spec: FeatureSpec,
    extractor: MfccExtractor | None = None,
) -> np.ndarray:
    """Normalised features for audio files of any rate/channel count/length (the inference path)."""
    return features_for_clips([load_clip(p, spec) for p in paths], spec, extractor)
