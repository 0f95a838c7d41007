"""Evaluation the way keyword-spotting systems are compared: from the model's real outputs.

* **Clip accuracy**: top-1 accuracy, per-class precision/recall and the confusion matrix of the
  int8 model on the test split (speakers the model never trained on), and on clips spoken by
  held-out voices (espeak-ng variants the training grid never used).
* **Streaming wake-word metrics**: the int8 model slides over a long *negative* recording
  (running speech without keywords, non-keyword clips of the test split, noise) and over a
  *positive* recording (test-split keyword clips embedded in such audio).  Sweeping the detection
  threshold gives false accepts per hour on the first and the false rejection rate on the
  second: the DET curve, and the FRR at a target false-accept rate (e.g. 1 FA/h).
* **Operating point, selected not just reported**: the threshold, the smoothing windows and the
  refractory period (small grids in ``evaluation``) are chosen on *validation* streams (built the
  same way from validation-split clips and voices) as the lowest-FRR point meeting the FA/h
  target; the test streams then report the FA/h and FRR at that point, so it is not tuned on the
  test set.  Every model family is evaluated the same way and ships its own point.
* **Synthetic vs real**: per keyword, how far the MFCC statistics of synthetic clips are from
  clips cut out of recorded corpora (a Fréchet distance between Gaussian fits).

Everything here is pure: audio arrays and tables in, numbers and PNG bytes out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import polars as pl

from kws_assets.core.audio.io import colored_noise, resample, scale_to_dbfs
from kws_assets.core.dataset import synthesis
from kws_assets.core.dataset.domain_gap import synthetic_real_gap
from kws_assets.core.evaluation import plots
from kws_assets.core.features.loader import training_speakers
from kws_assets.core.features.mfcc import normalize
from kws_assets.core.model.detect import (
    MS_PER_S,
    DetectorOperatingPoint,
    StreamingDetector,
    StreamPosteriors,
    find_events,
    keyword_columns,
    smooth_posteriors,
    window_latency_ms,
)
from kws_assets.core.model.training import EvalReport, classification_report
from kws_assets.core.speech import tts
from kws_assets.core.speech.fillers import filler_words as everyday_words
from kws_assets.settings import (
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AudioSettings,
    KwsConfig,
    NoiseKind,
    TtsSettings,
)

SENTENCE_WORDS = (5, 12)
SENTENCE_RATE = (120, 210)
SENTENCE_PITCH = (20, 80)
GAP_S = (0.1, 0.8)
"""Pause between pieces of the negative stream, seconds."""
POSITIVE_LEAD_S = (1.0, 2.5)
"""Negative audio before each embedded keyword clip, seconds."""
NOISE_PIECE_S = (0.5, 3.0)
NOISE_PIECE_DBFS = (-45.0, -20.0)
NOISE_PIECE_SHARE = 0.1
"""About this share of the negative stream's pieces are bursts of coloured noise."""
NEIGHBOUR_WORD_SHARE = 0.2
"""Share of the words in negative sentences that are phoneme neighbours of the keywords."""
MATCH_TOLERANCE_S = 0.5
"""A detection hits a positive when its window starts within this of the clip's start."""
SECONDS_PER_HOUR = 3600.0
TRIM_DB = -45.0
MIN_THRESHOLD = 0.01
MAX_THRESHOLD = 0.999
SATURATED_THRESHOLDS = (0.9995, 0.9999, 0.99995, 0.99999)
ZERO_FA_DRAWN_AT = 0.25
"""On the log-scale DET plot, zero false accepts are drawn as this fraction of one accept."""
UNSEEN_VOCABULARY = 3000
"""Common words the negative sentences draw from (most never spoken in training)."""
UNSEEN_UNKNOWN_WORDS = 10
"""Non-keyword words each held-out voice speaks for the unseen-voice accuracy."""
SECONDS_PER_SENTENCE = 3.0
FILLER_SHARE_PERCENT = 15
"""Share of the synthesised sentences kept apart as filler around the positives."""


# --- long recordings ------------------------------------------------------------------------------


def speak_sentences(
    words: Sequence[str],
    voices: Sequence[str],
    count: int,
    sample_rate: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``count`` sentences of random ``words`` (5-12 each), each by a random voice at a random
    rate and pitch, trimmed of leading/trailing silence.  Voices espeak-ng rejects are skipped."""
    if not words or not voices:
        return []
    spoken: list[np.ndarray] = []
    for _ in range(count):
        n = int(rng.integers(SENTENCE_WORDS[0], SENTENCE_WORDS[1] + 1))
        text = " ".join(str(words[int(i)]) for i in rng.integers(0, len(words), size=n))
        voice = str(voices[int(rng.integers(0, len(voices)))])
        try:
            synthesis = tts.synthesize(
                text,
                voice=voice,
                rate=int(rng.integers(*SENTENCE_RATE)),
                pitch=int(rng.integers(*SENTENCE_PITCH)),
            )
        except tts.TtsError:
            continue
        samples = resample(synthesis.samples, synthesis.sample_rate, sample_rate)
        trimmed, _ = tts.trim_silence(samples, sample_rate, TRIM_DB)
        if trimmed.size:
            spoken.append(trimmed)
    return spoken


def trim_clip(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """A clip without the (often digital) silence around its sound."""
    trimmed, _ = tts.trim_silence(np.asarray(samples, np.float32), sample_rate, TRIM_DB)
    return trimmed


def noise_piece(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A burst of coloured noise of random kind, length and level."""
    n = int(rng.uniform(*NOISE_PIECE_S) * sample_rate)
    kind = cast("NoiseKind", str(rng.choice(["white", "pink", "brown"])))
    return scale_to_dbfs(colored_noise(kind, n, rng), float(rng.uniform(*NOISE_PIECE_DBFS)))


def concatenate_pieces(
    pieces: Sequence[np.ndarray], seconds: float, sample_rate: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Pieces in random order with short random pauses until ``seconds`` are filled (noise bursts
    interleaved); returns the audio and how many times the material had to be reused (0 when
    there was enough)."""
    usable = [p for p in pieces if p.size]
    if not usable:
        raise ValueError("no audio to build a stream from")
    target = int(seconds * sample_rate)
    parts: list[np.ndarray] = []
    filled, passes = 0, 0
    while filled < target:
        for index in rng.permutation(len(usable)):
            if filled >= target:
                break
            piece = (
                noise_piece(sample_rate, rng) if rng.random() < NOISE_PIECE_SHARE else usable[index]
            )
            gap = np.zeros(int(rng.uniform(*GAP_S) * sample_rate), dtype=np.float32)
            parts += [gap, piece]
            filled += gap.size + piece.size
        passes += 1
    return np.concatenate(parts)[:target].astype(np.float32), passes - 1


NOISE_FLOOR_BLOCK_SAMPLES = 1 << 19
"""Pink noise floor generated block by block (about 33 s at 16 kHz): one FFT over a 30-minute
stream holds ~1.5 GB of float64 and complex intermediates; blocks keep it to ~40 MB."""


def add_noise_floor(samples: np.ndarray, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Pink noise at ``level_dbfs`` under the whole recording (no stretch is digital silence),
    made in blocks of :data:`NOISE_FLOOR_BLOCK_SAMPLES` so memory does not grow with length."""
    out = np.array(samples, dtype=np.float32, copy=True)
    for start in range(0, out.size, NOISE_FLOOR_BLOCK_SAMPLES):
        block = out[start : start + NOISE_FLOOR_BLOCK_SAMPLES]
        block += scale_to_dbfs(colored_noise("pink", block.size, rng), level_dbfs)
    return out


@dataclass(frozen=True)
class Positive:
    """A keyword clip placed in the positive stream."""

    label: str
    start_s: float
    clip_id: str


def embed_positives(
    clips: Sequence[tuple[np.ndarray, str, str]],
    fillers: Sequence[np.ndarray],
    sample_rate: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[Positive]]:
    """A recording of ``(clip, label, clip_id)`` keyword clips, each after 1-2.5 s of filler
    audio (a random stretch of the negative material); returns it and where each clip starts."""
    if not fillers:
        raise ValueError("embedding positives needs filler audio")
    material = np.concatenate([f for f in fillers if f.size]).astype(np.float32)
    parts: list[np.ndarray] = []
    positives: list[Positive] = []
    position = 0
    for clip, label, clip_id in clips:
        lead = int(rng.uniform(*POSITIVE_LEAD_S) * sample_rate)
        offset = int(rng.integers(0, max(1, material.size - lead)))
        filler = material[offset : offset + lead]
        parts.append(filler)
        position += filler.size
        positives.append(Positive(label, position / sample_rate, clip_id))
        parts.append(np.asarray(clip, dtype=np.float32))
        position += len(clip)
    tail = int(POSITIVE_LEAD_S[1] * sample_rate)
    parts.append(material[:tail])
    return np.concatenate(parts).astype(np.float32), positives


# --- detection error trade-off ------------------------------------------------------------------


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    fa_per_hour: float
    frr: float
    false_accepts: int
    misses: int

    def as_dict(self) -> dict[str, float]:
        return {
            "threshold": round(self.threshold, 4),
            "fa_per_hour": round(self.fa_per_hour, 3),
            "frr": round(self.frr, 4),
            "false_accepts": self.false_accepts,
            "misses": self.misses,
        }


@dataclass(frozen=True)
class DetCurve:
    """False accepts per hour (negative stream) and false rejection rate (positive stream) over
    a sweep of detection thresholds (ascending)."""

    thresholds: np.ndarray
    false_accepts: np.ndarray
    misses: np.ndarray
    negative_hours: float
    positives: int

    @property
    def fa_per_hour(self) -> np.ndarray:
        return self.false_accepts / self.negative_hours

    @property
    def frr(self) -> np.ndarray:
        return self.misses / max(self.positives, 1)

    def point(self, index: int) -> OperatingPoint:
        return OperatingPoint(
            float(self.thresholds[index]),
            float(self.fa_per_hour[index]),
            float(self.frr[index]),
            int(self.false_accepts[index]),
            int(self.misses[index]),
        )

    def at_fa_rate(self, target_fa_per_hour: float) -> OperatingPoint:
        """The lowest-FRR threshold whose false-accept rate is at most the target (the highest
        threshold if none reaches it; its FA rate then shows by how much it is missed)."""
        ok = np.flatnonzero(self.fa_per_hour <= target_fa_per_hour)
        if ok.size == 0:
            return self.point(len(self.thresholds) - 1)
        best = ok[np.argmin(self.frr[ok])]
        ties = ok[self.frr[ok] == self.frr[best]]
        return self.point(int(ties.min()))  # the lowest threshold among equals: most sensitive


def count_hits(
    detections: Sequence[tuple[float, str]],
    positives: Sequence[Positive],
    tolerance_s: float = MATCH_TOLERANCE_S,
) -> int:
    """How many positives a detection ``(window start, keyword)`` of the right keyword found
    (each detection counts for at most one positive)."""
    used = [False] * len(detections)
    starts = np.array([d[0] for d in detections]) if detections else np.zeros(0)
    hits = 0
    for positive in positives:
        near = np.flatnonzero(np.abs(starts - positive.start_s) <= tolerance_s)
        for index in near:
            if not used[index] and detections[int(index)][1] == positive.label:
                used[index] = True
                hits += 1
                break
    return hits


def threshold_grid(steps: int) -> np.ndarray:
    """``steps`` thresholds from 0.01 to 0.999, denser near 1 where wake-word operating points
    live, the last few of them replaced by :data:`SATURATED_THRESHOLDS` (0.9995 ... 0.99999):
    a confident model's false accepts score above 0.999, and a sweep that stops there cannot
    reach a low false-accept target."""
    tail = SATURATED_THRESHOLDS[: max(0, steps - 2)]
    linear = np.linspace(0.0, 1.0, steps - len(tail))
    head = MIN_THRESHOLD + (MAX_THRESHOLD - MIN_THRESHOLD) * (1.0 - (1.0 - linear) ** 2)
    return np.concatenate([head, np.asarray(tail, dtype=np.float64)])


def det_curve(
    detector: StreamingDetector,
    negative: StreamPosteriors,
    negative_seconds: float,
    positive: StreamPosteriors,
    positives: Sequence[Positive],
    thresholds: np.ndarray,
) -> DetCurve:
    """Sweep ``thresholds`` over posteriors already computed for both streams, at the
    detector's smoothing and refractory period."""
    return det_curve_at(
        negative,
        negative_seconds,
        positive,
        positives,
        thresholds,
        detector.smoothing_windows,
        detector.refractory_s,
    )


def det_curve_at(
    negative: StreamPosteriors,
    negative_seconds: float,
    positive: StreamPosteriors,
    positives: Sequence[Positive],
    thresholds: np.ndarray,
    smoothing_windows: int,
    refractory_s: float,
) -> DetCurve:
    """Sweep ``thresholds`` over precomputed posteriors at a given smoothing (windows) and
    refractory period (seconds): exactly what a detector with those settings reports."""
    labels = negative.labels
    columns = keyword_columns(labels)
    names = [labels[c] for c in columns]
    refractory = int(np.ceil(refractory_s / negative.hop_s))
    neg = smooth_posteriors(negative.probs, smoothing_windows)[:, columns]
    pos = smooth_posteriors(positive.probs, smoothing_windows)[:, columns]
    false_accepts, misses = [], []
    for threshold in thresholds:
        false_accepts.append(len(find_events(neg, float(threshold), refractory)))
        found = [
            (float(positive.start_s[w]), names[c])
            for w, c, _ in find_events(pos, float(threshold), refractory)
        ]
        misses.append(len(positives) - count_hits(found, positives))
    return DetCurve(
        np.asarray(thresholds, dtype=np.float64),
        np.asarray(false_accepts),
        np.asarray(misses),
        negative_seconds / SECONDS_PER_HOUR,
        len(positives),
    )


# --- operating-point selection ---------------------------------------------------------------


@dataclass(frozen=True)
class ScoredStreams:
    """Posteriors of one negative and one positive stream (one model pass each), reusable for
    every threshold, smoothing and refractory setting."""

    negative: StreamPosteriors
    negative_seconds: float
    positive: StreamPosteriors
    positives: list[Positive]

    def curve(
        self, thresholds: np.ndarray, smoothing_windows: int, refractory_s: float
    ) -> DetCurve:
        return det_curve_at(
            self.negative,
            self.negative_seconds,
            self.positive,
            self.positives,
            thresholds,
            smoothing_windows,
            refractory_s,
        )


@dataclass(frozen=True)
class Selection:
    """The operating point chosen on validation streams, and how every candidate did there."""

    detector: DetectorOperatingPoint
    validation: OperatingPoint
    meets_target: bool
    target_fa_per_hour: float
    candidates: list[dict[str, object]]

    def as_dict(self) -> dict[str, object]:
        return {
            "detector": self.detector.as_dict(),
            "validation": self.validation.as_dict(),
            "meets_target_on_validation": self.meets_target,
            "target_fa_per_hour": self.target_fa_per_hour,
            "candidates": self.candidates,
        }


def select_operating_point(
    scored: ScoredStreams,
    thresholds: np.ndarray,
    smoothing_grid: Sequence[int],
    refractory_grid_s: Sequence[float],
    target_fa_per_hour: float,
    hop_ms: float,
) -> Selection:
    """The (threshold, smoothing, refractory) with the lowest FRR among those whose false-accept
    rate on ``scored`` is at most the target; ties go to fewer false accepts, then less smoothing
    (earlier detections), then the shorter refractory period.  When no setting meets the target,
    the one with the fewest false accepts at its strictest threshold is returned, flagged."""
    if not len(smoothing_grid) or not len(refractory_grid_s):
        raise ValueError(
            "operating-point selection needs a non-empty smoothing and refractory grid"
        )
    best_key, best = None, None
    candidates: list[dict[str, object]] = []
    for smoothing in smoothing_grid:
        for refractory in refractory_grid_s:
            point = scored.curve(thresholds, int(smoothing), float(refractory)).at_fa_rate(
                target_fa_per_hour
            )
            meets = point.fa_per_hour <= target_fa_per_hour
            candidates.append(
                {
                    "smoothing_windows": int(smoothing),
                    "refractory_s": float(refractory),
                    "meets_target": meets,
                    **point.as_dict(),
                }
            )
            key = (
                not meets,
                point.frr if meets else point.fa_per_hour,
                point.fa_per_hour if meets else point.frr,
                int(smoothing),
                float(refractory),
            )
            if best_key is None or key < best_key:
                best_key, best = key, (point, int(smoothing), float(refractory), meets)
    if best is None:  # the grids were checked non-empty above
        raise ValueError("operating-point selection found no candidate")
    point, smoothing, refractory, meets = best
    return Selection(
        DetectorOperatingPoint(point.threshold, smoothing, refractory, hop_ms),
        point,
        meets,
        target_fa_per_hour,
        candidates,
    )


# --- pictures --------------------------------------------------------------------------------


def det_png(
    curve: DetCurve,
    target_fa_per_hour: float,
    title: str = "DET curve",
    point: OperatingPoint | None = None,
) -> bytes:
    """A PNG of the DET curve: false rejection rate against false accepts per hour (log x),
    with ``point`` (default: the curve's own lowest-FRR point at the target rate) marked."""
    import matplotlib.pyplot as plt  # the Agg backend is selected by importing core.plots

    from kws_assets.core.evaluation.plots import figure_png

    floor = ZERO_FA_DRAWN_AT / max(curve.negative_hours, 1e-9)  # where 0 FA/h is drawn (log x)
    fa = np.maximum(curve.fa_per_hour, floor)
    point = point or curve.at_fa_rate(target_fa_per_hour)
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=110)
    try:
        ax.step(fa, curve.frr * 100, where="post", color="tab:blue", label="int8 model")
        ax.axvline(target_fa_per_hour, color="0.6", linestyle="--", linewidth=1)
        ax.plot(
            [max(point.fa_per_hour, floor)],
            [point.frr * 100],
            "o",
            color="tab:red",
            label=f"{point.frr:.1%} FRR at {point.fa_per_hour:.2g} FA/h "
            f"(threshold {point.threshold:.6g})",
        )
        ax.set_xscale("log")
        ax.set_xlabel(
            f"false accepts per hour ({curve.negative_hours:.2f} h of negatives; "
            f"0 drawn at {floor:.2g})"
        )
        ax.set_ylabel(f"false rejection rate, % ({curve.positives} positives)")
        ax.set_ylim(-2, 102)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        return figure_png(fig)
    finally:
        plt.close(fig)


@dataclass
class StreamReport:
    """What the streaming evaluation measured, for metadata and ``evaluation.json``."""

    negative_seconds: float
    negative_reuse_passes: int
    positives: int
    curve: DetCurve
    target_fa_per_hour: float
    selection: Selection | None = None
    """Set: the curve is the test streams' at the selected smoothing/refractory and the operating
    point is the selected threshold's; unset: the point is the curve's own lowest-FRR one."""
    operating_point: OperatingPoint = field(init=False)

    def selected(self) -> Selection:
        """The selection, where one was made (:func:`evaluate_family` always makes one)."""
        if self.selection is None:
            raise ValueError("this stream report was made without operating-point selection")
        return self.selection

    def __post_init__(self) -> None:
        if self.selection is None:
            self.operating_point = self.curve.at_fa_rate(self.target_fa_per_hour)
        else:
            index = int(
                np.argmin(np.abs(self.curve.thresholds - self.selection.detector.threshold))
            )
            self.operating_point = self.curve.point(index)

    def as_dict(self) -> dict[str, object]:
        return {
            "negative_hours": round(self.negative_seconds / SECONDS_PER_HOUR, 6),
            "negative_material_reused": self.negative_reuse_passes,
            "positives": self.positives,
            "target_fa_per_hour": self.target_fa_per_hour,
            "operating_point": self.operating_point.as_dict(),
            **({"selection": self.selection.as_dict()} if self.selection is not None else {}),
            "det_curve": [self.curve.point(i).as_dict() for i in range(len(self.curve.thresholds))],
        }


def streaming_report(
    detector: StreamingDetector,
    negative_audio: np.ndarray,
    positive_audio: np.ndarray,
    positives: Sequence[Positive],
    sample_rate: int,
    threshold_steps: int,
    target_fa_per_hour: float,
    reuse_passes: int = 0,
    progress: Callable[[str], None] | None = None,
) -> StreamReport:
    """Posteriors of both streams (one pass each), then the threshold sweep."""
    say = progress or (lambda _msg: None)
    say(f"streaming {negative_audio.size / sample_rate / 60:.1f} min of negative audio")
    negative = detector.posteriors(negative_audio, sample_rate)
    say(
        f"streaming {positive_audio.size / sample_rate / 60:.1f} min with {len(positives)} keywords"
    )
    positive = detector.posteriors(positive_audio, sample_rate)
    curve = det_curve(
        detector,
        negative,
        negative_audio.size / sample_rate,
        positive,
        positives,
        threshold_grid(threshold_steps),
    )
    return StreamReport(
        negative_audio.size / sample_rate, reuse_passes, len(positives), curve, target_fa_per_hour
    )


# --- the whole evaluation of one artifact -------------------------------------------------------


def unseen_voice_clips(
    keywords: Sequence[str],
    unknown_words: Sequence[str],
    voices: Sequence[str],
    grid: TtsSettings,
    audio: AudioSettings,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Each keyword spoken by every held-out voice alone and in a carrier phrase, plus
    ``unknown_words`` as ``_unknown_``; returns clips, labels and a description of each."""
    clips, labels, names = [], [], []
    carriers = list(grid.carrier_phrases)
    jobs = [(k, k) for k in keywords] + [(w, UNKNOWN_LABEL) for w in unknown_words]
    for voice in voices:
        for word, label in jobs:
            for carrier in (
                None,
                carriers[int(rng.integers(0, len(carriers)))] if carriers else None,
            ):
                recipe = synthesis.ClipRecipe(
                    label,
                    word,
                    voice,
                    int(rng.integers(*SENTENCE_RATE)),
                    int(rng.integers(*SENTENCE_PITCH)),
                    0,
                    carrier=carrier,
                    floor_dbfs=float(rng.uniform(*synthesis.SELF_NOISE_DBFS)),
                )
                try:
                    clips.append(synthesis.render_keyword_clip(recipe, audio))
                except tts.TtsError:
                    continue
                labels.append(label)
                names.append(recipe.origin_id)
                if carrier is None and not carriers:
                    break
    return clips, labels, names


def evaluation_vocabulary(cfg: KwsConfig, count: int, seed: int) -> tuple[list[str], list[str]]:
    """Words for the negative stream: common dictionary words that are not keywords or their
    homophones, and the keywords' phoneme neighbours (hard negatives)."""
    neighbours: list[str] = []
    for keyword in cfg.keywords:
        neighbours += synthesis.negative_words(
            keyword, cfg.keywords, cfg.negatives.model_copy(update={"other_words": 0}), cfg.language
        )
    if not cfg.negatives.lexicon and not cfg.language.lower().startswith(synthesis.ENGLISH):
        # No pronouncing dictionary: the language's everyday words (core.fillers), if any.
        everyday = everyday_words(cfg.language) or ()
        return [w for w in everyday if w not in set(cfg.keywords)][:count], neighbours
    words = synthesis.sentence_vocabulary(
        cfg.keywords, cfg.negatives, cfg.language, count, salt=f"evaluation|{seed}"
    )
    return words, neighbours


def sentence_words(
    words: Sequence[str], neighbours: Sequence[str], rng: np.random.Generator, size: int
) -> list[str]:
    """A word pool for sentences with about ``NEIGHBOUR_WORD_SHARE`` hard negatives."""
    pool = list(words)
    if neighbours:
        extra = int(len(pool) * NEIGHBOUR_WORD_SHARE / (1 - NEIGHBOUR_WORD_SHARE))
        pool += [str(w) for w in rng.choice(list(neighbours), size=max(extra, 1))]
    return pool[: max(size, len(pool))]


@dataclass
class EvaluationResult:
    """Everything the evaluation asset reports about one model family."""

    test: EvalReport
    unseen: EvalReport
    stream: StreamReport
    synthetic_real: pl.DataFrame
    latency_ms: float
    pictures: dict[str, bytes]
    notes: list[str]
    family: str = "mfcc"
    stream_seconds: float = 0.0
    """Wall time spent computing the family's stream posteriors (validation + test streams); kept
    out of ``summary``/``as_dict`` so the report stays reproducible."""

    @property
    def operating_point(self) -> DetectorOperatingPoint | None:
        """The selected detector settings (None for a report made without selection)."""
        return self.stream.selection.detector if self.stream.selection is not None else None

    def summary(self) -> dict[str, float | int | bool]:
        """The headline numbers (flat scalars: Dagster metadata and the report's summary)."""
        point = self.stream.operating_point
        out: dict[str, float | int | bool] = {
            "test_accuracy": round(self.test.accuracy, 4),
            "test_clips": self.test.n,
            "unseen_voice_accuracy": round(self.unseen.accuracy, 4),
            "unseen_voice_clips": self.unseen.n,
            "frr_at_target": round(point.frr, 4),
            "fa_per_hour_at_target": round(point.fa_per_hour, 3),
            "target_fa_per_hour": self.stream.target_fa_per_hour,
            "threshold_at_target": float(f"{point.threshold:.6g}"),
            "negative_hours": round(self.stream.negative_seconds / SECONDS_PER_HOUR, 6),
            "positives": self.stream.positives,
            "window_latency_ms": round(self.latency_ms, 3),
        }
        selection = self.stream.selection
        if selection is not None:
            out.update(
                {
                    "smoothing_at_target": selection.detector.smoothing_windows,
                    "refractory_s_at_target": selection.detector.refractory_s,
                    "val_frr_at_target": round(selection.validation.frr, 4),
                    "val_fa_per_hour_at_target": round(selection.validation.fa_per_hour, 3),
                    "target_met_on_validation": selection.meets_target,
                }
            )
        return out

    def as_dict(self) -> dict[str, object]:
        return {
            "family": self.family,
            "summary": self.summary(),
            "test": self.test.as_dict(),
            "unseen_voices": self.unseen.as_dict(),
            "streaming": self.stream.as_dict(),
            "synthetic_vs_real": self.synthetic_real.to_dicts(),
            "notes": self.notes,
        }


@dataclass(frozen=True)
class StreamAudio:
    """A keyword-free stream and a stream with keyword clips embedded, as audio."""

    negative: np.ndarray
    positive: np.ndarray
    positives: list[Positive]
    reuse_passes: int
    sample_rate: int

    @property
    def negative_seconds(self) -> float:
        return self.negative.size / self.sample_rate

    def score(self, detector: StreamingDetector) -> ScoredStreams:
        return ScoredStreams(
            detector.posteriors(self.negative, self.sample_rate),
            self.negative_seconds,
            detector.posteriors(self.positive, self.sample_rate),
            self.positives,
        )


@dataclass
class EvaluationMaterial:
    """The audio every family is evaluated on, built once: held-out voice clips, the
    validation streams (operating-point selection) and the test streams (reporting)."""

    unseen_clips: list[np.ndarray]
    unseen_labels: list[str]
    validation: StreamAudio
    test: StreamAudio
    synthetic_real: pl.DataFrame
    notes: list[str]


def _tts_voices(clips: pl.DataFrame) -> list[str]:
    return sorted(
        s.removeprefix(synthesis.TTS_SPEAKER_PREFIX)
        for s in clips["speaker"].unique().to_list()
        if s.startswith(synthesis.TTS_SPEAKER_PREFIX)
    )


def _streams(
    cfg: KwsConfig,
    clips: pl.DataFrame,
    voices: Sequence[str],
    pool: Sequence[str],
    minutes: float,
    read_clip: Callable[[str], np.ndarray],
    rng: np.random.Generator,
    what: str,
    say: Callable[[str], None],
    notes: list[str],
) -> StreamAudio:
    """A negative stream (sentences by ``voices``, the split's _unknown_/_silence_ clips, noise
    bursts) of ``minutes`` and a positive stream of the split's keyword clips in filler speech."""
    settings, sr = cfg.evaluation, cfg.audio.sample_rate
    say(
        f"{what}: speaking about {minutes:.0f} min of keyword-free sentences with "
        f"{len(voices)} voices"
    )
    sentences = speak_sentences(pool, voices, _sentences_for(minutes), sr, rng)
    negatives = clips.filter(pl.col("label").is_in([UNKNOWN_LABEL, SILENCE_LABEL]))
    clip_pieces = [trim_clip(read_clip(uri), sr) for uri in negatives["uri"].to_list()]
    split_at = max(1, len(sentences) * FILLER_SHARE_PERCENT // 100)
    fillers, stream_sentences = sentences[:split_at], sentences[split_at:]
    negative_audio, reuse = concatenate_pieces(
        stream_sentences + clip_pieces, minutes * 60.0, sr, rng
    )
    if reuse:
        notes.append(f"{what}: negative material was reused {reuse} time(s) to fill the stream")
    negative_audio = add_noise_floor(negative_audio, settings.noise_floor_dbfs, rng)
    keyword_rows = (
        clips.filter(pl.col("label").is_in(list(cfg.keywords)))
        .sort("clip_id")
        .group_by("label", maintain_order=True)
        .head(settings.positives_per_keyword)
    )
    if keyword_rows.is_empty():
        raise ValueError(
            f"{what}: no keyword clips to embed in the positive stream (the split "
            f"needs keyword clips: check the split percentages and the keywords)"
        )
    positives_in = [
        (read_clip(r["uri"]), r["label"], r["clip_id"]) for r in keyword_rows.iter_rows(named=True)
    ]
    order = rng.permutation(len(positives_in))
    positive_audio, positives = embed_positives(
        [positives_in[i] for i in order], fillers or stream_sentences or clip_pieces, sr, rng
    )
    positive_audio = add_noise_floor(positive_audio, settings.noise_floor_dbfs, rng)
    return StreamAudio(negative_audio, positive_audio, positives, reuse, sr)


def build_material(
    cfg: KwsConfig,
    test_clips: pl.DataFrame,
    val_clips: pl.DataFrame,
    read_clip: Callable[[str], np.ndarray],
    mfcc_table: pl.DataFrame | pl.LazyFrame,
    progress: Callable[[str], None] | None = None,
) -> EvaluationMaterial:
    """Held-out voice clips, validation streams and test streams (see :func:`evaluate_family`).

    ``test_clips``/``val_clips`` are validated rows of the two splits (``uri``, ``label``,
    ``clip_id``, ``speaker``).  The test negatives are spoken by the held-out voices and the
    test split's TTS voices; the validation negatives by the validation split's TTS voices (the
    held-out voices when it has none, noted), from the same vocabulary with fresh sentences.
    """
    say = progress or (lambda _msg: None)
    settings = cfg.evaluation
    rng = np.random.default_rng(settings.seed)
    notes: list[str] = []
    train_speakers = training_speakers(mfcc_table)
    held_out = [
        v for v in settings.held_out_voices if synthesis.tts_speaker_id(v) not in train_speakers
    ]
    dropped = sorted(set(settings.held_out_voices) - set(held_out))
    if dropped:
        notes.append(f"held-out voices that are training speakers, not used: {dropped}")
    words, neighbours = evaluation_vocabulary(cfg, UNSEEN_VOCABULARY, settings.seed)
    say(f"speaking keywords with {len(held_out)} held-out voices")
    unseen_words = [str(w) for w in words[:UNSEEN_UNKNOWN_WORDS]]
    clips, unseen_labels, _ = unseen_voice_clips(
        cfg.keywords, unseen_words, held_out, cfg.tts, cfg.audio, rng
    )
    if not clips:
        notes.append("no held-out voice could be synthesised")
    test_voices = held_out + [v for v in _tts_voices(test_clips) if v not in held_out]
    val_voices = _tts_voices(val_clips)
    if not val_voices:
        val_voices = held_out or test_voices
        notes.append(
            "the validation split has no TTS voices: its negative sentences are spoken "
            "by the held-out voices"
        )
    pool = sentence_words(words, neighbours, rng, len(words))
    test = _streams(
        cfg,
        test_clips,
        test_voices,
        pool,
        settings.negative_minutes,
        read_clip,
        rng,
        "test streams",
        say,
        notes,
    )
    validation = _streams(
        cfg,
        val_clips,
        val_voices,
        pool,
        settings.selection_negative_minutes or settings.negative_minutes,
        read_clip,
        rng,
        "validation streams",
        say,
        notes,
    )
    gap = synthetic_real_gap(mfcc_table, cfg.keywords)
    return EvaluationMaterial(clips, unseen_labels, validation, test, gap, notes)


def evaluate_family(
    classifier: Any,  # duck-typed: an export classifier or TfliteClassifier
    cfg: KwsConfig,
    material: EvaluationMaterial,
    test_labels: Sequence[str],
    test_features: np.ndarray | None = None,
    test_audio: np.ndarray | Iterable[np.ndarray] | None = None,
    family: str = "mfcc",
    progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Evaluate one int8 artifact (a ``KwsClassifier`` or ``EmbeddingClassifier``).

    Clip accuracy on the test split from raw MFCCs ``test_features`` (MFCC family) or from
    ``test_audio`` clips ``[n, samples]``, or batches of them read as they are needed (any
    family), with ``test_labels``; accuracy on the
    held-out voices; the operating point selected on ``material.validation`` over the
    ``evaluation`` grids for ``target_fa_per_hour``; the test streams' DET curve at the selected
    smoothing/refractory and the FA/h and FRR at the selected threshold.
    """
    say = progress or (lambda _msg: None)
    settings = cfg.evaluation
    labels = list(classifier.labels)
    index = {label: i for i, label in enumerate(labels)}
    pictures: dict[str, bytes] = {}
    unknown = sorted(set(test_labels) - set(index))
    if unknown:
        raise ValueError(
            f"{family}: test labels {unknown} are not classes of the artifact {labels}"
        )
    y_test = np.array([index[label] for label in test_labels], dtype=np.int64)
    if test_features is not None and hasattr(classifier.spec, "n_mfcc"):
        probs = classifier.classify_features(normalize(test_features, classifier.spec))
    elif test_audio is not None:
        clips = [test_audio] if isinstance(test_audio, np.ndarray) else test_audio
        batches = [classifier.classify_clips(batch) for batch in clips]
        probs = np.concatenate(batches) if batches else np.zeros((0, len(labels)), np.float32)
    else:
        raise ValueError(f"{family}: give test_audio (or test_features for the MFCC family)")
    test_report = classification_report(y_test, probs.argmax(axis=1), labels)
    pictures["confusion_test"] = plots.confusion_matrix_png(
        labels, test_report.confusion, f"{family} int8 model, test split (unseen speakers)"
    )
    if material.unseen_clips:
        unseen_probs = classifier.classify_clips(np.stack(material.unseen_clips))
        unseen_report = classification_report(
            np.array([index[label] for label in material.unseen_labels]),
            unseen_probs.argmax(axis=1),
            labels,
        )
        pictures["confusion_unseen_voices"] = plots.confusion_matrix_png(
            labels, unseen_report.confusion, f"{family} int8 model, held-out voices"
        )
    else:
        unseen_report = classification_report(np.zeros(0), np.zeros(0), labels)

    detector = StreamingDetector(classifier, hop_ms=settings.hop_ms)
    started = time.perf_counter()
    say(
        f"{family}: streaming the validation streams "
        f"({material.validation.negative_seconds / 60:.1f} min negative)"
    )
    validation = material.validation.score(detector)
    say(
        f"{family}: streaming the test streams "
        f"({material.test.negative_seconds / 60:.1f} min negative)"
    )
    test = material.test.score(detector)
    stream_seconds = time.perf_counter() - started
    thresholds = threshold_grid(settings.threshold_steps)
    hop_ms = detector.hop_s * MS_PER_S  # the hop the detector really uses (a frame multiple)
    selection = select_operating_point(
        validation,
        thresholds,
        settings.smoothing_grid or [settings.smoothing_windows],
        settings.refractory_grid_s or [settings.refractory_s],
        settings.target_fa_per_hour,
        hop_ms,
    )
    curve = test.curve(
        thresholds, selection.detector.smoothing_windows, selection.detector.refractory_s
    )
    stream = StreamReport(
        material.test.negative_seconds,
        material.test.reuse_passes,
        len(material.test.positives),
        curve,
        settings.target_fa_per_hour,
        selection,
    )
    pictures["det_curve"] = det_png(
        stream.curve,
        settings.target_fa_per_hour,
        f"{family} int8 model, test streams",
        stream.operating_point,
    )
    return EvaluationResult(
        test_report,
        unseen_report,
        stream,
        material.synthetic_real,
        window_latency_ms(classifier),
        pictures,
        list(material.notes),
        family,
        stream_seconds,
    )


def evaluate_artifact(
    classifier: Any,  # duck-typed: an export classifier or TfliteClassifier
    cfg: KwsConfig,
    test_features: np.ndarray,
    test_labels: Sequence[str],
    test_clips: pl.DataFrame,
    read_clip: Callable[[str], np.ndarray],
    mfcc_table: pl.DataFrame,
    progress: Callable[[str], None] | None = None,
    val_clips: pl.DataFrame | None = None,
) -> EvaluationResult:
    """Evaluate the MFCC int8 artifact alone (:func:`build_material` + :func:`evaluate_family`);
    ``val_clips`` (validation-split rows) are required: the operating point is selected on them."""
    if val_clips is None:
        raise ValueError(
            "evaluate_artifact needs val_clips: the operating point is selected on "
            "validation-split streams, never on the test streams"
        )
    material = build_material(cfg, test_clips, val_clips, read_clip, mfcc_table, progress)
    return evaluate_family(
        classifier, cfg, material, test_labels, test_features=test_features, progress=progress
    )


def _sentences_for(minutes: float) -> int:
    """Sentences to synthesise for ``minutes`` of stream (about 3 s each, plus the fillers)."""
    return math.ceil(minutes * 60.0 / SECONDS_PER_SENTENCE * 100 / (100 - FILLER_SHARE_PERCENT))
