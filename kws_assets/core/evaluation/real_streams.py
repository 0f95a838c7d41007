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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kws_assets.core.audio.io import resample
from kws_assets.core.corpus.real_sources import RealClips
from kws_assets.core.evaluation.det import SECONDS_PER_HOUR, OperatingPoint, count_hits
from kws_assets.core.evaluation.operating_point import PointBounds
from kws_assets.core.evaluation.peers import (
    MICROWAKEWORD,
    PEER_REFRACTORY_S,
    PeerModel,
    Phrase,
    count_phrase_hits,
    peer_scores,
    peers_for,
    track_events,
)
from kws_assets.core.evaluation.peers import SAMPLE_RATE as PEER_SAMPLE_RATE
from kws_assets.core.evaluation.peers import PointCounts as PeerPoint
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
    by_keyword: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    """Keyword -> (its keywords in the stream, hits, its other detections): the per-phrase
    numbers a pretrained model of one phrase is put beside (:func:`score_peer_streams`)."""

    def keyword_rows(self) -> list[dict[str, object]]:
        """One row per keyword, in the shape of :func:`score_peer_streams`'s rows."""
        return [
            {
                "system": self.family,
                "keyword": keyword,
                "set": self.source,
                **PeerPoint(
                    self.detector.threshold,
                    fa,
                    self.bounds.negative_hours,
                    n - hits,
                    n,
                    self.bounds.level,
                ).as_dict(),
            }
            for keyword, (n, hits, fa) in self.by_keyword.items()
        ]

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
    by_keyword = {}
    for keyword in classifier_keywords(classifier):
        found = [(d.start_s, d.keyword) for d in detections if d.keyword == keyword]
        placed = [p for p in stream.positives if p.label == keyword]
        keyword_hits = count_hits(found, placed)
        by_keyword[keyword] = (len(placed), keyword_hits, len(found) - keyword_hits)
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
        by_keyword,
    )


def classifier_keywords(classifier: Any) -> list[str]:
    """The keyword classes of a classifier (every label but ``_silence_`` and ``_unknown_``)."""
    return [label for label in classifier.labels if label not in (SILENCE_LABEL, UNKNOWN_LABEL)]


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


def score_peer_streams(
    keywords: Sequence[str],
    sets: Sequence[RealClips],
    settings: EvalSettings,
    clip_seconds: float,
    models: Sequence[PeerModel] | None = None,
) -> list[dict[str, object]]:
    """The pretrained models of the config's keywords (:func:`~kws_assets.core.evaluation.
    peers.peers_for`; none: nothing to do) on the same streams the families are scored on (built
    again from the same seed: the same audio), each in its own runtime at its shipped point.

    A family's detection names the window it found the keyword in (a hit within 0.5 s of the
    keyword's window); a peer fires when it has heard the phrase, so its detection is a hit
    when it fires between the start of the keyword's clip and
    :data:`~kws_assets.core.evaluation.peers.HIT_TAIL_S` after its end (``clip_seconds`` after
    its start).  Every other detection of the model is a false accept over the whole stream's
    hours, as for the families.  One row per (set, keyword, model)."""
    wanted = {keyword: peers_for(keyword, models) for keyword in keywords}
    chosen = [m for found in wanted.values() for m in found]
    if not chosen:
        return []
    rows: list[dict[str, object]] = []
    for clips in sets:
        if not len(clips):
            continue
        stream = clip_stream(clips, settings.noise_floor_dbfs, settings.seed)
        audio = resample(stream.samples, stream.sample_rate, PEER_SAMPLE_RATE)
        tracks = peer_scores(chosen, audio)
        for keyword, found in wanted.items():
            placed = [
                Phrase(keyword, p.start_s, p.start_s + clip_seconds)
                for p in stream.positives
                if p.label == keyword
            ]
            for model in found:
                fired = track_events(
                    tracks[model],
                    model.threshold,
                    PEER_REFRACTORY_S,
                    strict=model.system == MICROWAKEWORD,
                )
                hits = count_phrase_hits(fired, placed)
                point = PeerPoint(
                    model.threshold,
                    len(fired) - hits,
                    stream.hours,
                    len(placed) - hits,
                    len(placed),
                    settings.confidence,
                )
                rows.append(
                    {
                        "system": model.system,
                        "keyword": keyword,
                        "set": stream.source,
                        **point.as_dict(),
                    }
                )
    return rows


BESIDE_PEERS_COLUMNS = (
    "system",
    "keyword",
    "set",
    "frr",
    "frr_lower",
    "frr_upper",
    "positives",
    "fa_per_hour",
    "fa_per_hour_lower",
    "fa_per_hour_upper",
)
"""The columns of a row beside the pretrained models shown at a glance (the asset's metadata)."""


def beside_peers(
    scores: Sequence[StreamScore],
    keywords: Sequence[str],
    sets: Sequence[RealClips],
    settings: EvalSettings,
    clip_seconds: float,
    models: Sequence[PeerModel] | None = None,
) -> list[dict[str, object]]:
    """Per keyword that a pretrained model also spots, on each stream: every family's own
    numbers for that keyword (from ``scores``: nothing is run again) and each pretrained model's
    (:func:`score_peer_streams`); empty when no keyword has a pretrained model, and then no
    peer runtime is started."""
    peer_rows = score_peer_streams(keywords, sets, settings, clip_seconds, models)
    matched = {row["keyword"] for row in peer_rows}
    family_rows = [row for s in scores for row in s.keyword_rows() if row["keyword"] in matched]
    order = {keyword: i for i, keyword in enumerate(keywords)}
    rows = family_rows + peer_rows
    return sorted(rows, key=lambda r: (str(r["set"]), order.get(str(r["keyword"]), 0)))
