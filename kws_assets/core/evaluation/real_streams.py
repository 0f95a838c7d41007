"""Every family as a wake-word detector at its shipped operating point on streams made of an
evaluation set's clips: real recordings (and the held-out engine's renders) played one word after
another, so each keyword sits among the set's other words.

A clip-level score says whether a centred word is classified right; a user meets the detector
sliding over running speech, where the windows between and across words are what fires it.
:func:`clip_stream` strings a set's clips into one stream (in a seeded order, short pauses, the
evaluation's noise floor under it); :func:`score_streams` runs each family's
:class:`~kws_assets.core.model.detect.StreamingDetector` at the point its evaluation selected
(:func:`shipped_points`, the ``operating_point.json`` files ``kws detect`` runs) and counts: a
detection of the right keyword near a keyword's place is a hit (``det.count_hits``), every other
detection is a false accept.  **The whole stream is negative time**: the words around the keywords,
the keywords themselves and the pauses all count in the hours FA/h divides by (a few minutes of
words: the Poisson interval says how little such a rate can claim).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kws_assets.core.corpus.real_sources import RealClips
from kws_assets.core.evaluation.det import SECONDS_PER_HOUR, OperatingPoint, count_hits
from kws_assets.core.evaluation.operating_point import PointBounds
from kws_assets.core.evaluation.streams import Positive, add_noise_floor, concatenate_clips
from kws_assets.core.model.detect import DetectorOperatingPoint, StreamingDetector
from kws_assets.core.ship.export import OPERATING_POINT_FILE, read_operating_point
from kws_assets.settings import SILENCE_LABEL, UNKNOWN_LABEL, EvalSettings

STREAMS_NOTE = (
    "each set's clips played one after another (seeded order, 0.1-0.8 s pauses, the "
    "evaluation's noise floor); FRR: keywords no detection of the right keyword found within "
    "0.5 s of their window; FA/h: every other detection per hour of the whole stream (the other "
    "words, the keywords and the pauses all count as negative time); intervals exact and "
    "two-sided (Clopper-Pearson, Poisson)"
)

STREAM_SUMMARY_COLUMNS = (
    "family",
    "set",
    "keywords",
    "hits",
    "frr",
    "frr_lower",
    "frr_upper",
    "false_accepts",
    "stream_hours",
    "fa_per_hour",
    "fa_per_hour_lower",
    "fa_per_hour_upper",
)
"""The columns of a stream row shown at a glance (the asset's metadata); the report has all."""


@dataclass(frozen=True, eq=False)
class ClipStream:
    """One evaluation set as a stream: the audio and where its keywords' windows start."""

    source: str
    samples: np.ndarray
    sample_rate: int
    positives: list[Positive]

    @property
    def hours(self) -> float:
        return len(self.samples) / self.sample_rate / SECONDS_PER_HOUR


def clip_stream(clips: RealClips, noise_floor_dbfs: float, seed: int) -> ClipStream:
    """The set's clips as one stream (:func:`~kws_assets.core.evaluation.streams.
    concatenate_clips`: every label other than ``_unknown_`` and ``_silence_`` is a keyword),
    with pink noise at ``noise_floor_dbfs`` under it so no pause is digital silence.  The order
    depends on ``seed`` and the set's name only, so a set keeps its stream when others come
    or go."""
    rng = np.random.default_rng([seed, zlib.crc32(clips.source.encode())])
    keywords = set(clips.labels) - {UNKNOWN_LABEL, SILENCE_LABEL}
    audio, positives = concatenate_clips(
        list(zip(clips.samples, clips.labels, clips.names, strict=True)),
        keywords,
        clips.sample_rate,
        rng,
    )
    return ClipStream(
        clips.source,
        add_noise_floor(audio, noise_floor_dbfs, rng),
        clips.sample_rate,
        positives,
    )


@dataclass(frozen=True)
class StreamScore:
    """One family at its operating point on one stream: the counts and their intervals."""

    family: str
    source: str
    detector: DetectorOperatingPoint
    measured: OperatingPoint
    bounds: PointBounds
    hits: int
    detections: int

    def as_row(self) -> dict[str, object]:
        """The row of the transfer report's ``streams`` table (no FRR on a stream without a
        keyword: its interval is then all of [0, 1])."""
        return {
            "family": self.family,
            "set": self.source,
            "keywords": self.bounds.keywords,
            "hits": self.hits,
            "frr": round(self.measured.frr, 4) if self.bounds.keywords else None,
            "frr_lower": round(self.bounds.frr_lower, 4),
            "frr_upper": round(self.bounds.frr_upper, 4),
            "false_accepts": self.measured.false_accepts,
            "stream_hours": round(self.bounds.negative_hours, 4),
            "fa_per_hour": round(self.measured.fa_per_hour, 3),
            "fa_per_hour_lower": round(self.bounds.fa_per_hour_lower, 3),
            "fa_per_hour_upper": round(self.bounds.fa_per_hour_upper, 3),
            "level": self.bounds.level,
            "threshold": self.detector.as_dict()["threshold"],
            "smoothing_windows": int(self.detector.smoothing_windows),
            "refractory_s": float(self.detector.refractory_s),
        }


def score_stream(
    family: str,
    classifier: Any,  # duck-typed, as StreamingDetector takes it
    point: DetectorOperatingPoint,
    stream: ClipStream,
    level: float,
) -> StreamScore:
    """Detect on the stream at ``point`` and count hits, misses and false accepts."""
    detections = StreamingDetector.at(classifier, point).detect(stream.samples, stream.sample_rate)
    hits = count_hits([(d.start_s, d.keyword) for d in detections], stream.positives)
    keywords = len(stream.positives)
    measured = OperatingPoint(
        point.threshold,
        (len(detections) - hits) / stream.hours,
        (keywords - hits) / keywords if keywords else 0.0,
        len(detections) - hits,
        keywords - hits,
    )
    return StreamScore(
        family,
        stream.source,
        point,
        measured,
        PointBounds.of(measured, stream.hours, keywords, level),
        hits,
        len(detections),
    )


def shipped_points(report_dir: Path, families: Sequence[str]) -> dict[str, DetectorOperatingPoint]:
    """The operating point the evaluation selected for each family that has one
    (``<report_dir>/<family>/operating_point.json``, what the family's release ships)."""
    points = {}
    for family in families:
        chosen = report_dir / family / OPERATING_POINT_FILE
        if chosen.is_file():
            point = read_operating_point(chosen)
            if point is not None:
                points[family] = point
    return points


def score_streams(
    classifiers: Mapping[str, Any],
    points: Mapping[str, DetectorOperatingPoint],
    sets: Sequence[RealClips],
    settings: EvalSettings,
) -> list[StreamScore]:
    """Every family with a shipped point on every non-empty set's stream (each stream built
    once), family by family in ``classifiers`` order."""
    streams = [
        clip_stream(clips, settings.noise_floor_dbfs, settings.seed) for clips in sets if len(clips)
    ]
    return [
        score_stream(family, classifier, points[family], stream, settings.confidence)
        for family, classifier in classifiers.items()
        if family in points
        for stream in streams
    ]
