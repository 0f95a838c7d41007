"""One model family's int8 artifact evaluated from its real outputs on the shared material:
clip accuracy on the test split and on held-out voices, the operating point selected on the
validation streams, the test streams' DET curve and FA/h and FRR at that point.

Family-blind: a family is its classifier (``labels``, ``spec``, ``classify_clips``); the test clips
go through the classifier's own front end whatever the family.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from kws_assets.core.evaluation import plots
from kws_assets.core.evaluation.det import SECONDS_PER_HOUR, threshold_grid
from kws_assets.core.evaluation.material import EvaluationMaterial, StreamAudio
from kws_assets.core.evaluation.operating_point import (
    ScoredStreams,
    StreamReport,
    select_operating_point,
    window_scaled,
)
from kws_assets.core.model.detect import (
    MS_PER_S,
    DetectorOperatingPoint,
    StreamingDetector,
    window_latency_ms,
)
from kws_assets.core.model.training import EvalReport, classification_report
from kws_assets.core.parallel import chunks, process_map
from kws_assets.core.ship.export import classify_with_cache
from kws_assets.core.storage.render_cache import NO_CACHE, RenderCache
from kws_assets.settings import EvalSettings

TEST_AUDIO_BATCH_CLIPS = 256
"""Test clips read and classified together (the rest stay on disk)."""


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
    family: str
    stream_seconds: float = 0.0
    """Wall time spent computing the family's stream posteriors (validation + test streams); kept
    out of ``summary``/``as_dict`` so the report stays reproducible."""

    @property
    def operating_point(self) -> DetectorOperatingPoint | None:
        """The selected detector settings (None for a report made without selection)."""
        return self.stream.selection.detector if self.stream.selection is not None else None

    def summary(self) -> dict[str, float | int | bool]:
        """The headline numbers (flat scalars: Dagster metadata and the report's summary)."""
        point, bounds = self.stream.operating_point, self.stream.bounds
        out: dict[str, float | int | bool] = {
            "test_accuracy": round(self.test.accuracy, 4),
            "test_clips": self.test.n,
            "unseen_voice_accuracy": round(self.unseen.accuracy, 4),
            "unseen_voice_clips": self.unseen.n,
            "frr_at_target": round(point.frr, 4),
            "fa_per_hour_at_target": round(point.fa_per_hour, 3),
            "frr_lower_at_target": round(bounds.frr_lower, 4),
            "frr_upper_at_target": round(bounds.frr_upper, 4),
            "fa_per_hour_lower_at_target": round(bounds.fa_per_hour_lower, 4),
            "fa_per_hour_upper_at_target": round(bounds.fa_per_hour_upper, 4),
            "false_accepts_at_target": point.false_accepts,
            "misses_at_target": point.misses,
            "confidence": bounds.level,
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
                    "target_met_measured_on_validation": bool(selection.meets_target_measured),
                    "operating_point_usable": selection.usable,
                    "max_frr": selection.max_frr,
                }
            )
            if selection.bounds is not None:
                out.update(
                    {
                        "val_fa_per_hour_upper_at_target": round(
                            selection.bounds.fa_per_hour_upper, 4
                        ),
                        "val_frr_upper_at_target": round(selection.bounds.frr_upper, 4),
                        "val_negative_hours": round(selection.bounds.negative_hours, 6),
                        "val_positives": selection.bounds.keywords,
                    }
                )
            if selection.negative_hours_needed is not None:
                out["val_negative_hours_needed"] = float(f"{selection.negative_hours_needed:.4g}")
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


def evaluate_family(
    classifier: Any,  # duck-typed: an export classifier or TfliteClassifier
    family: str,
    settings: EvalSettings,
    material: EvaluationMaterial,
    test_labels: Sequence[str],
    test_audio: np.ndarray | Iterable[np.ndarray],
    progress: Callable[[str], None] | None = None,
    scored: FamilyStreams | None = None,
    features: RenderCache = NO_CACHE,
) -> EvaluationResult:
    """Evaluate one family's int8 artifact through its classifier (``labels``, ``spec``,
    ``classify_clips``: the artifact's own front end, whatever the family).  ``scored``: its
    streams' posteriors computed already (:func:`score_family_streams`), else computed here.

    Clip accuracy on the test split from ``test_audio`` clips ``[n, samples]``, or batches of
    them read as they are needed, with ``test_labels``; accuracy on the held-out voices; the
    operating point selected on ``material.validation`` over the ``settings`` grids for
    ``target_fa_per_hour``; the test streams' DET curve at the selected smoothing/refractory and
    the FA/h and FRR at the selected threshold, each with its exact interval at
    ``settings.confidence`` (a point meets the target by its FA/h upper bound; one missing more
    than ``settings.max_frr`` of the validation keywords is flagged not usable).  ``features``
    keeps the clips' front-end features (:func:`classify_with_cache`).
    """
    say = progress or (lambda _msg: None)
    labels = list(classifier.labels)
    index = {label: i for i, label in enumerate(labels)}
    pictures: dict[str, bytes] = {}
    unknown = sorted(set(test_labels) - set(index))
    if unknown:
        raise ValueError(
            f"{family}: test labels {unknown} are not classes of the artifact {labels}"
        )
    y_test = np.array([index[label] for label in test_labels], dtype=np.int64)
    clips = [test_audio] if isinstance(test_audio, np.ndarray) else test_audio
    batches = [classify_with_cache(classifier, batch, features) for batch in clips]
    probs = np.concatenate(batches) if batches else np.zeros((0, len(labels)), np.float32)
    test_report = classification_report(y_test, probs.argmax(axis=1), labels)
    pictures["confusion_test"] = plots.confusion_matrix_png(
        labels, test_report.confusion, f"{family} int8 model, test split (unseen speakers)"
    )
    if material.unseen_clips:
        unseen_probs = classify_with_cache(classifier, np.stack(material.unseen_clips), features)
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
    if scored is None:
        scored = _score_here(detector, family, material, say)
    validation, test, stream_seconds = scored.validation, scored.test, scored.seconds
    thresholds = threshold_grid(settings.threshold_steps)
    hop_ms = detector.hop_s * MS_PER_S  # the hop the detector really uses (a frame multiple)
    selection = select_operating_point(
        validation,
        thresholds,
        settings.smoothing_grid or [settings.smoothing_windows],
        window_scaled(settings.refractory_grid_s or [settings.refractory_s], detector.window_s),
        settings.target_fa_per_hour,
        hop_ms,
        settings.confidence,
        settings.max_frr,
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
        settings.confidence,
    )
    pictures["det_curve"] = plots.det_png(
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


def clip_batches(
    uris: Sequence[str],
    read_clip: Callable[[str], np.ndarray],
    batch_clips: int = TEST_AUDIO_BATCH_CLIPS,
) -> Iterator[np.ndarray]:
    """The clips' audio ``[n, samples]`` a batch at a time: memory does not grow with the split."""
    for batch in chunks(list(uris), batch_clips):
        yield np.stack([read_clip(uri) for uri in batch])


@dataclass(frozen=True)
class FamilyStreams:
    """One family's posteriors on the validation and the test streams, and the wall time spent
    computing them (where they were computed)."""

    validation: ScoredStreams
    test: ScoredStreams
    seconds: float


STREAM_SETS = ("validation", "test")
"""The material's stream sets a family is scored on: the operating point is selected on the
first, reported on the second."""


def _score_here(
    detector: StreamingDetector,
    family: str,
    material: EvaluationMaterial,
    say: Callable[[str], None],
) -> FamilyStreams:
    started = time.perf_counter()
    scored = []
    for which in STREAM_SETS:
        streams: StreamAudio = getattr(material, which)
        say(
            f"{family}: streaming the {which} streams "
            f"({streams.negative_seconds / 60:.1f} min negative)"
        )
        scored.append(streams.score(detector))
    return FamilyStreams(scored[0], scored[1], time.perf_counter() - started)


def score_family_streams(
    classifiers: Mapping[str, Callable[[], Any]],
    hop_ms: float,
    material: EvaluationMaterial,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, FamilyStreams]:
    """Every family's posteriors on the validation and the test streams, one (family, stream
    set) per job on ``workers`` processes (1: here, one after the other).  ``classifiers`` map a
    family to the function that loads its classifier: a worker loads its own (an inference
    session does not survive a fork), and the material reaches the workers through the fork.
    A job's posteriors depend only on the classifier and the audio, so they are the same for
    any worker count; ``seconds`` is the sum of the family's jobs' wall times."""
    say = progress or (lambda _msg: None)
    jobs = [(family, which) for family in classifiers for which in STREAM_SETS]
    loaded: dict[str, StreamingDetector] = {}

    def score(job: tuple[str, str]) -> tuple[ScoredStreams, float]:
        family, which = job
        started = time.perf_counter()
        if family not in loaded:
            loaded[family] = StreamingDetector(classifiers[family](), hop_ms=hop_ms)
        return getattr(material, which).score(loaded[family]), time.perf_counter() - started

    say(
        f"streaming the validation and test streams "
        f"({material.validation.negative_seconds / 60:.1f} + "
        f"{material.test.negative_seconds / 60:.1f} min negative) of "
        f"{len(classifiers)} families on {min(workers, len(jobs))} worker(s)"
    )
    done: dict[tuple[str, str], tuple[ScoredStreams, float]] = {}
    for job, result in zip(jobs, process_map(score, jobs, workers), strict=True):
        done[job] = result
        say(f"{job[0]}: {job[1]} streams scored in {result[1]:.1f} s")
    return {
        family: FamilyStreams(
            done[(family, "validation")][0],
            done[(family, "test")][0],
            done[(family, "validation")][1] + done[(family, "test")][1],
        )
        for family in classifiers
    }


def evaluate_families(
    classifiers: Mapping[str, Callable[[], Any]],
    settings: EvalSettings,
    material: EvaluationMaterial,
    test_labels: Sequence[str],
    test_audio: Callable[[], Iterable[np.ndarray]],
    progress: Callable[[str], None] | None = None,
    workers: int = 1,
    features: RenderCache = NO_CACHE,
) -> dict[str, EvaluationResult]:
    """Every family's classifier evaluated on the same ``material`` (:func:`evaluate_family`), in
    the order of ``classifiers`` (family: the function that loads its classifier); the streams
    are scored first, on ``workers`` processes (:func:`score_family_streams`), then each family's
    clips, operating point and plots, a family per worker; ``test_audio`` starts a fresh pass
    over the test clips' audio batches for each family; ``features`` keeps the clips' front-end
    features (:func:`classify_with_cache`)."""
    scored = score_family_streams(classifiers, settings.hop_ms, material, workers, progress)
    families = list(classifiers)

    def evaluate(family: str) -> EvaluationResult:
        return evaluate_family(
            classifiers[family](),
            family,
            settings,
            material,
            test_labels,
            test_audio(),
            None,  # its streams are scored: nothing left to say
            scored[family],
            features,
        )

    # the clips, the operating-point sweep and the plots: a family per worker too
    return dict(zip(families, process_map(evaluate, families, workers), strict=True))
