"""Streaming keyword detection: slide the int8 classifier over long audio.

The MFCC frames of the whole recording are computed once (the frame grid of a window starting
at a multiple of the hop equals the frames of that window cut out as a clip: no centre padding,
frame-local log-mel and DCT), then every ``hop_ms`` a window of ``n_frames`` frames — one clip
length — is classified.  Posteriors are smoothed with a causal moving average over
``smoothing_windows`` windows; a detection fires when a keyword's smoothed posterior reaches the
threshold outside the refractory period that follows the previous detection.  Its time span is
the window where that keyword's smoothed posterior peaks before falling back below the threshold.

The stream is padded with half a clip of silence at both ends so a word at the very start or end
can still sit in the middle of a window.

With a ``speech_embedding`` classifier (see :mod:`kws_assets.core.ship.export`) the front end
runs over the whole stream once, as openWakeWord streams: mel frames every 10 ms, one embedding
every 80 ms (both graphs are frame-local, so a stretch of the stream gives bit for bit the frames
of that stretch alone), and the head slides over ``n_frames`` consecutive embeddings — the 2-s
context a training clip is padded to — every ``hop`` (a multiple of 80 ms).  The head then sees
the real audio around the 1-s window where training padded the clip with silence, and the mel
graph's ``top_db`` floor is taken over that 2-s context around each frame rather than per clip.
``exact_windows=True`` instead cuts every window out as a 1-s clip and runs it through the
artifact's clip front end exactly as a training clip (silence padding and all): the same inputs
as training, about 20x slower (each window pays for its whole 2-s context).  A family with neither
front end (a new family's classifier, with a ``spec`` giving ``sample_rate`` and
``clip_samples``) is streamed that way too.

A detector's operating point (threshold, smoothing windows, refractory seconds, hop) is a
:class:`DetectorOperatingPoint`; the evaluation selects one per model family and ships it as
``operating_point.json`` (see :func:`kws_assets.core.ship.export.read_operating_point`).
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from scipy.ndimage import maximum_filter1d

from kws_assets.core.audio.io import read_audio, resample
from kws_assets.core.features import speech_embedding as emb
from kws_assets.core.features.mfcc import FeatureSpec, MfccExtractor, normalize
from kws_assets.core.features.speech_embedding import EmbeddingSpec, SpeechEmbeddingFrontEnd
from kws_assets.settings import SILENCE_LABEL, UNKNOWN_LABEL

DEFAULT_THRESHOLD = 0.8
DEFAULT_HOP_MS = 100.0
DEFAULT_SMOOTHING_WINDOWS = 3
DEFAULT_REFRACTORY_S = 1.0
"""The refractory period of a 1-s window; a detector left without one waits one window."""
STREAM_CHUNK_FRAMES = 500
"""MFCC frames computed per call when featurizing a long recording (10 s at a 20 ms hop)."""
WINDOW_CHUNK = 256
"""Windows cut out and classified per call by a clip-level (embedding) classifier."""
EMBEDDING_CHUNK = 256
"""Embeddings computed per embedding-graph call when streaming (about 20 s of audio)."""
HEAD_CHUNK = 4096
"""Windows of embeddings classified per call by the head when streaming."""
MS_PER_S = 1000.0
SCORE_DECIMALS = 4
TIME_DECIMALS = 3

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Detection:
    """One detected keyword: the 1-s window (seconds from the start of the audio) and its score."""

    keyword: str
    start_s: float
    end_s: float
    score: float

    def as_dict(self) -> dict[str, object]:
        return {
            "start": round(self.start_s, TIME_DECIMALS),
            "end": round(self.end_s, TIME_DECIMALS),
            "keyword": self.keyword,
            "score": round(self.score, SCORE_DECIMALS),
        }


def hop_frames(spec: FeatureSpec, hop_ms: float) -> int:
    """Window stride in feature frames (at least one); the effective hop is a frame multiple."""
    return max(1, round(hop_ms / spec.hop_ms))


def stream_padding(spec: FeatureSpec) -> int:
    """Samples of silence padded at each end: half a clip, rounded to whole feature hops."""
    return (spec.clip_samples // 2) // spec.hop_length * spec.hop_length


def stream_frames(
    samples: np.ndarray, spec: FeatureSpec, chunk_frames: int = STREAM_CHUNK_FRAMES
) -> np.ndarray:
    """Normalised MFCC frames ``[n_frames, n_mfcc]`` of a whole recording (at the spec's rate).

    Computed in chunks of ``chunk_frames`` frames with the same :class:`MfccExtractor` maths as
    the clips, so window ``i`` of :func:`window_features` equals the features of the clip that
    starts at sample ``i * hop``.
    """
    x = np.asarray(samples, dtype=np.float32)
    hop, win = spec.hop_length, spec.win_length
    if x.size < win:
        x = np.concatenate([x, np.zeros(win - x.size, dtype=np.float32)])
    total = 1 + (x.size - win) // hop
    chunk_len = win + (chunk_frames - 1) * hop
    extractor = MfccExtractor(spec.model_copy(update={"clip_samples": chunk_len}))
    out = np.empty((total, spec.n_mfcc), dtype=np.float32)
    for first in range(0, total, chunk_frames):
        piece = x[first * hop : first * hop + chunk_len]
        if piece.size < chunk_len:
            piece = np.concatenate([piece, np.zeros(chunk_len - piece.size, dtype=np.float32)])
        frames = extractor(piece[None, :])[0]
        count = min(chunk_frames, total - first)
        out[first : first + count] = frames[:count]
    return normalize(out, spec)


def window_features(frames: np.ndarray, spec: FeatureSpec, stride_frames: int) -> np.ndarray:
    """Windows of ``spec.n_frames`` frames every ``stride_frames``:
    ``[n_windows, n_frames, n_mfcc]``."""
    n = spec.n_frames
    if frames.shape[0] < n:
        frames = np.concatenate(
            [frames, np.zeros((n - frames.shape[0], frames.shape[1]), dtype=frames.dtype)]
        )
    view = np.lib.stride_tricks.sliding_window_view(frames, n, axis=0)[::stride_frames]
    return np.ascontiguousarray(view.transpose(0, 2, 1))


def smooth_posteriors(probs: np.ndarray, windows: int) -> np.ndarray:
    """Causal moving average over the last ``windows`` rows (fewer at the start)."""
    if windows <= 1:
        return np.asarray(probs, dtype=np.float32).copy()
    cumulative = np.cumsum(np.asarray(probs, dtype=np.float64), axis=0)
    out = cumulative.copy()
    out[windows:] = cumulative[windows:] - cumulative[:-windows]
    counts = np.minimum(np.arange(1, len(probs) + 1), windows)[:, None]
    return (out / counts).astype(np.float32)


def keyword_columns(labels: Sequence[str]) -> list[int]:
    """Indices of the keyword classes (every label except _silence_ and _unknown_)."""
    return [i for i, lab in enumerate(labels) if lab not in (SILENCE_LABEL, UNKNOWN_LABEL)]


def find_events(
    smoothed: np.ndarray, threshold: float, refractory_windows: int
) -> list[tuple[int, int, float]]:
    """Detections in smoothed keyword posteriors ``[n_windows, n_keywords]``, as
    ``(peak window, keyword column, score)``.

    A detection triggers at the first window where any keyword reaches ``threshold`` and
    ``refractory_windows`` have passed since the last trigger; the keyword is the best one at
    the trigger window, and the peak is where its score is highest until it drops below the
    threshold (or the refractory period ends).

    The triggers are a walk over the windows above the threshold (one bisection per
    detection); the keywords and peaks of all of them are then found at once, array-wise: an
    evaluation sweeps a grid of thresholds over half-hour streams, where a detection at a time
    cost most of its wall time.
    """
    if smoothed.size == 0:
        return []
    best = smoothed.max(axis=1)
    above = np.flatnonzero(best >= threshold).tolist()
    step = max(refractory_windows, 1)
    triggers: list[int] = []
    position, next_allowed = 0, 0
    while position < len(above):
        trigger = above[position]
        if trigger < next_allowed:
            position = bisect.bisect_left(above, next_allowed, position)
            continue
        triggers.append(trigger)
        next_allowed = trigger + step
        position += 1
    if not triggers:
        return []
    at = np.asarray(triggers, dtype=np.int64)
    columns = np.argmax(smoothed[at], axis=1)
    # each detection's track: its keyword's scores from the trigger to the end of the
    # refractory period, cut where the score first drops below the threshold
    offsets = np.arange(step, dtype=np.int64)
    rows = at[:, None] + offsets[None, :]
    inside = rows < len(smoothed)
    track = smoothed[np.minimum(rows, len(smoothed) - 1), columns[:, None]]
    kept = np.logical_and.accumulate(inside & ~(track < threshold), axis=1)
    peaks = at + np.argmax(np.where(kept, track, -np.inf), axis=1)
    scores = smoothed[peaks, columns]
    return [
        (int(p), int(c), float(v))
        for p, c, v in zip(peaks.tolist(), columns.tolist(), scores.tolist(), strict=True)
    ]


@dataclass(frozen=True)
class StreamPosteriors:
    """Per-window class posteriors of a recording and the window start times (seconds)."""

    start_s: np.ndarray
    probs: np.ndarray
    labels: list[str]
    window_s: float
    hop_s: float


def clip_windows(samples: np.ndarray, clip_samples: int, hop_samples: int) -> np.ndarray:
    """A read-only view of the 1-s windows every ``hop_samples``: ``[n_windows, clip_samples]``
    (a stream shorter than one clip is zero-padded to one window)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.size < clip_samples:
        x = np.concatenate([x, np.zeros(clip_samples - x.size, dtype=np.float32)])
    return np.lib.stride_tricks.sliding_window_view(x, clip_samples)[::hop_samples]


@dataclass(frozen=True)
class DetectorOperatingPoint:
    """What a detector needs besides the model: the threshold, the posterior smoothing, the
    refractory period and the hop it was chosen at (``operating_point.json``)."""

    threshold: float
    smoothing_windows: int = DEFAULT_SMOOTHING_WINDOWS
    refractory_s: float = DEFAULT_REFRACTORY_S
    hop_ms: float = DEFAULT_HOP_MS

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {self.threshold}")
        if int(self.smoothing_windows) != self.smoothing_windows or self.smoothing_windows < 1:
            raise ValueError(
                f"smoothing_windows must be a whole number >= 1, got {self.smoothing_windows}"
            )
        if self.refractory_s < 0 or self.hop_ms <= 0:
            raise ValueError(
                f"need refractory_s >= 0 and hop_ms > 0, got {self.refractory_s}, {self.hop_ms}"
            )

    def as_dict(self) -> dict[str, float]:
        return {
            "threshold": float(f"{self.threshold:.6g}"),
            "smoothing_windows": int(self.smoothing_windows),
            "refractory_s": float(self.refractory_s),
            "hop_ms": float(self.hop_ms),
        }


class EmbeddingStreamer:
    """The speech_embedding front end over a whole recording: ``[n_embeddings, 96]`` every 80 ms.

    Built from the graphs a
    :class:`~kws_assets.core.features.speech_embedding.SpeechEmbeddingFrontEnd` verified (the same
    in-memory adaptations: mel without its batch-wide floor, embedding over a whole mel sequence).
    The ``top_db`` floor of each mel frame is the loudest frame within the front end's context (2 s)
    centred on it, minus ``top_db``: what a clip-sized context gives.
    """

    def __init__(self, front_end: SpeechEmbeddingFrontEnd, threads: int | None = None) -> None:
        self.spec: EmbeddingSpec = front_end.spec
        mel_graph, self.top_db = emb.per_clip_mel_graph(onnx.load(front_end.melspec_path))
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self._mel = ort.InferenceSession(
            mel_graph.SerializeToString(), options, providers=providers
        )
        self._embed = ort.InferenceSession(
            emb.sequence_embedding_graph(onnx.load(front_end.embedding_path)).SerializeToString(),
            options,
            providers=providers,
        )
        self._mel_input = self._mel.get_inputs()[0].name
        self._embed_input = self._embed.get_inputs()[0].name

    @property
    def hop_samples(self) -> int:
        """Audio between consecutive embeddings (1280 samples, 80 ms)."""
        return emb.MEL_STRIDE_FRAMES * emb.MEL_HOP_SAMPLES

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """Log-mel frames ``[n, 32]`` (before the floor) of float audio in [-1, 1]."""
        x = np.clip(
            np.rint(np.asarray(samples, np.float32) * np.float32(emb.INT16_SCALE)),
            emb.INT16_MIN,
            emb.INT16_MAX,
        ).astype(np.float32)
        total = emb.mel_frames(x.size)
        if total < emb.MEL_WINDOW_FRAMES:
            raise ValueError(f"need at least {emb.MEL_WINDOW_FRAMES} mel frames of audio")
        chunk = emb.EMBEDDING_DIM * 64  # mel frames per call (~61 s)
        out = np.empty((total, emb.MEL_BANDS), dtype=np.float32)
        for first in range(0, total, chunk):
            count = min(chunk, total - first)
            piece = x[
                first * emb.MEL_HOP_SAMPLES : (first + count + emb.MEL_EDGE_FRAMES)
                * emb.MEL_HOP_SAMPLES
            ]
            out[first : first + count] = self._mel.run(None, {self._mel_input: piece[None, :]})[0][
                0, 0, :count
            ]
        return out

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Embeddings ``[n, 96]`` of a recording (at 16 kHz); embedding ``k`` covers samples from
        ``k * hop_samples`` for the 76 mel frames of one embedding window."""
        log_mel = self.log_mel(samples)
        context = emb.mel_frames(self.spec.context_samples)
        floor = maximum_filter1d(log_mel.max(axis=1), size=context, mode="nearest") - np.float32(
            self.top_db
        )
        mel = (
            np.maximum(log_mel, floor[:, None]) / np.float32(emb.MEL_SCALE)
            + np.float32(emb.MEL_OFFSET)
        ).astype(np.float32)
        n = (mel.shape[0] - emb.MEL_WINDOW_FRAMES) // emb.MEL_STRIDE_FRAMES + 1
        out = np.empty((n, emb.EMBEDDING_DIM), dtype=np.float32)
        for first in range(0, n, EMBEDDING_CHUNK):
            count = min(EMBEDDING_CHUNK, n - first)
            start = first * emb.MEL_STRIDE_FRAMES
            piece = mel[start : start + emb.MEL_WINDOW_FRAMES + (count - 1) * emb.MEL_STRIDE_FRAMES]
            out[first : first + count] = self._embed.run(
                None, {self._embed_input: np.ascontiguousarray(piece[None, :, :, None])}
            )[0][0, :count, 0]
        return out


class StreamingDetector:
    """Keyword detection over long audio with a classifier loaded from an artifact folder."""

    def __init__(
        self,
        classifier: Any,  # duck-typed: an export classifier or TfliteClassifier
        threshold: float = DEFAULT_THRESHOLD,
        hop_ms: float = DEFAULT_HOP_MS,
        smoothing_windows: int = DEFAULT_SMOOTHING_WINDOWS,
        refractory_s: float | None = None,
        exact_windows: bool = False,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
        if smoothing_windows < 1 or (refractory_s or 0.0) < 0 or hop_ms <= 0:
            raise ValueError("need smoothing_windows >= 1, refractory_s >= 0 and hop_ms > 0")
        self.classifier = classifier
        self.spec: FeatureSpec | EmbeddingSpec = classifier.spec
        self.labels: list[str] = list(classifier.labels)
        self.threshold = threshold
        if isinstance(self.spec, FeatureSpec):
            self.stride_frames = hop_frames(self.spec, hop_ms)
            self.hop_samples = self.stride_frames * self.spec.hop_length
        elif exact_windows or not isinstance(self.spec, EmbeddingSpec):
            # a family without a whole-stream front end: every window classified as a clip
            exact_windows = True
            self.hop_samples = max(1, round(hop_ms * self.spec.sample_rate / MS_PER_S))
        else:
            # as many inference threads as the classifier's own front end (1 in a worker process
            # beside others, so the workers do not oversubscribe the cores)
            self._streamer = EmbeddingStreamer(
                classifier.front_end, threads=classifier.front_end.threads
            )
            step = self._streamer.hop_samples
            self.stride_frames = max(1, round(hop_ms * self.spec.sample_rate / MS_PER_S / step))
            self.hop_samples = self.stride_frames * step
        self.exact_windows = exact_windows
        self.smoothing_windows = smoothing_windows
        # one window by default (1 s for a word, longer for a phrase): a keyword held in the
        # window keeps its posterior up about that long, and must not fire twice
        self.refractory_s = self.window_s if refractory_s is None else refractory_s

    @classmethod
    def at(cls, classifier: Any, point: DetectorOperatingPoint, **kwargs: Any) -> StreamingDetector:
        """A detector at a (shipped) operating point."""
        return cls(
            classifier,
            threshold=point.threshold,
            hop_ms=point.hop_ms,
            smoothing_windows=int(point.smoothing_windows),
            refractory_s=point.refractory_s,
            **kwargs,
        )

    @property
    def hop_s(self) -> float:
        return self.hop_samples / self.spec.sample_rate

    @property
    def window_s(self) -> float:
        return self.spec.clip_samples / self.spec.sample_rate

    def posteriors(self, samples: np.ndarray, sample_rate: int) -> StreamPosteriors:
        """Class posteriors of every window of a recording (any rate; resampled to the spec)."""
        x = np.asarray(samples, dtype=np.float32)
        if sample_rate != self.spec.sample_rate:
            x = resample(x, sample_rate, self.spec.sample_rate)
        if isinstance(self.spec, FeatureSpec):
            pad = stream_padding(self.spec)
            padded = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(pad, np.float32)])
            windows = window_features(
                stream_frames(padded, self.spec), self.spec, self.stride_frames
            )
            probs = self.classifier.classify_features(windows)
        elif self.exact_windows:
            pad = self.spec.clip_samples // 2
            padded = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(pad, np.float32)])
            # a classifier whose front end streams scores every window from one pass
            stream = getattr(self.classifier, "classify_stream", None)
            probs = stream(padded, self.hop_samples) if stream is not None else None
            if probs is None:
                views = clip_windows(padded, self.spec.clip_samples, self.hop_samples)
                probs = np.concatenate(
                    [
                        self.classifier.classify_clips(views[i : i + WINDOW_CHUNK])
                        for i in range(0, len(views), WINDOW_CHUNK)
                    ]
                )
        else:
            probs, pad = self._streamed_embedding_posteriors(x)
        starts = np.arange(len(probs)) * self.hop_samples - pad
        return StreamPosteriors(
            starts / self.spec.sample_rate, probs, self.labels, self.window_s, self.hop_s
        )

    def _streamed_embedding_posteriors(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Posteriors from the whole-stream front end; the window's 1-s clip sits ``pad_before``
        into its 2-s context, and the stream is padded so the first clip starts half a clip
        before the audio (as for the MFCC family)."""
        spec = self.spec
        if not isinstance(spec, EmbeddingSpec):
            raise TypeError(f"streamed embedding posteriors need an EmbeddingSpec, got {spec!r}")
        pad = spec.pad_before + spec.clip_samples // 2
        after = spec.context_samples + self.hop_samples
        padded = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(after, np.float32)])
        frames = self._streamer(padded)
        n = spec.n_frames
        view = np.lib.stride_tricks.sliding_window_view(frames, n, axis=0)[:: self.stride_frames]
        view = view[: min(len(view), x.size // self.hop_samples + 1)]  # clip starts up to the end
        probs = np.concatenate(
            [
                self.classifier.classify_features(
                    np.ascontiguousarray(view[i : i + HEAD_CHUNK].transpose(0, 2, 1))
                )
                for i in range(0, len(view), HEAD_CHUNK)
            ]
        )
        return probs, pad - spec.pad_before

    def events(
        self, posteriors: StreamPosteriors, threshold: float | None = None
    ) -> list[Detection]:
        """Detections from precomputed posteriors (so one pass serves many thresholds)."""
        columns = keyword_columns(self.labels)
        smoothed = smooth_posteriors(posteriors.probs, self.smoothing_windows)[:, columns]
        refractory = int(np.ceil(self.refractory_s / self.hop_s))
        found = find_events(
            smoothed, self.threshold if threshold is None else threshold, refractory
        )
        return [
            Detection(
                self.labels[columns[c]],
                float(posteriors.start_s[w]),
                float(posteriors.start_s[w] + self.window_s),
                score,
            )
            for w, c, score in found
        ]

    def detect(self, samples: np.ndarray, sample_rate: int) -> list[Detection]:
        """Keyword detections in a recording."""
        return self.events(self.posteriors(samples, sample_rate))

    def detect_file(self, path: PathLike) -> list[Detection]:
        """Keyword detections in an audio file (raises ``AudioReadError`` if it is unusable)."""
        info = read_audio(path)
        return self.detect(info.samples, info.sample_rate)


def window_latency_ms(classifier: Any, repeats: int = 50) -> float:  # duck-typed classifier
    """Median wall time (ms) to featurize and classify one 1-s window, one window at a time —
    what a device pays per hop when it runs the model on each new window (for the embedding
    family: both front-end graphs over the padded context, then the head)."""
    spec = classifier.spec
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(spec.clip_samples)).astype(np.float32)
    if isinstance(spec, FeatureSpec):
        extractor = MfccExtractor(spec)

        def one_window() -> None:
            classifier.classify_features(normalize(extractor(clip[None, :]), spec))
    else:

        def one_window() -> None:
            classifier.classify_clips(clip[None, :])

    timings = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        one_window()
        timings.append((time.perf_counter() - started) * MS_PER_S)
    return float(np.median(timings[1:]))


def detections_as_dicts(detections: Sequence[Detection]) -> list[dict[str, object]]:
    return [d.as_dict() for d in detections]
