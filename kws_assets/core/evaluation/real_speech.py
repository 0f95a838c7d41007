"""Scores of a classifier on the clips of a real source (recordings by people).

A synthetic test split says how well the model learnt espeak-ng; real voices are what it meets.
:func:`score_real_source` runs any waveform classifier on :class:`RealClips` and reports the
accuracy on every clip and on keyword clips alone, next to the always-``_unknown_`` baseline (a
dev set of mostly other words flatters a model that never fires), the false-accept rate of the
``_unknown_`` clips, per-class precision/recall/support, the confusion matrix (from
``training.classification_report``) and the accuracy per speaker.

:func:`waveform_classifier` adapts an artifact's classifier (either family) to the waveform
interface; :func:`score_families` scores every family on every set, and :func:`transfer_rows`
puts the numbers side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from kws_assets.core.corpus.real_sources import RealClips
from kws_assets.core.model.training import EvalReport, classification_report
from kws_assets.core.ship.export import ClipClassifier, classify_with_cache
from kws_assets.core.storage.render_cache import NO_CACHE, RenderCache
from kws_assets.settings import SILENCE_LABEL, UNKNOWN_LABEL

WaveformClassifier = Callable[[np.ndarray], np.ndarray]
SCORE_BATCH = 256
MAX_LISTED_ERRORS = 50


@dataclass(frozen=True)
class SpeakerScore:
    n: int
    accuracy: float


@dataclass(frozen=True)
class ClipError:
    """A misclassified clip (for listening to)."""

    name: str
    speaker: str
    label: str
    predicted: str
    score: float


@dataclass(frozen=True)
class RealSourceReport:
    """How a classifier did on one real source (see the module docstring)."""

    source: str
    n: int
    accuracy: float
    n_keyword: int
    keyword_accuracy: float  # on clips whose true label is a keyword; 0 when there are none
    unknown_baseline: float  # accuracy of always answering _unknown_ on the same clips
    unknown_false_accept_rate: float  # _unknown_ clips classified as a keyword
    report: EvalReport
    per_speaker: dict[str, SpeakerScore]
    errors: list[ClipError] = field(default_factory=list)  # the first MAX_LISTED_ERRORS

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "n": self.n,
            "accuracy": self.accuracy,
            "n_keyword": self.n_keyword,
            "keyword_accuracy": self.keyword_accuracy,
            "unknown_baseline": self.unknown_baseline,
            "unknown_false_accept_rate": self.unknown_false_accept_rate,
            **{k: v for k, v in self.report.as_dict().items() if k not in ("accuracy", "n")},
            "per_speaker": {k: asdict(v) for k, v in self.per_speaker.items()},
            "errors": [asdict(e) for e in self.errors],
        }


def _probabilities(
    classify: WaveformClassifier, samples: np.ndarray, n_labels: int, batch_size: int
) -> np.ndarray:
    parts = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        probs = np.asarray(classify(chunk))
        if probs.shape != (len(chunk), n_labels):
            raise ValueError(
                f"classifier returned shape {probs.shape} for {len(chunk)} clips; "
                f"expected ({len(chunk)}, {n_labels}), one column per label"
            )
        if not np.isfinite(probs).all():
            raise ValueError("classifier returned NaN or inf probabilities")
        parts.append(probs)
    return np.concatenate(parts) if parts else np.zeros((0, n_labels))


def score_real_source(
    classify: WaveformClassifier,
    clips: RealClips,
    labels: Sequence[str],
    batch_size: int = SCORE_BATCH,
) -> RealSourceReport:
    """Classify every clip (``classify``: waveforms ``[n, samples]`` -> probabilities
    ``[n, len(labels)]``) and score it against the clip labels.

    Raises ValueError when a clip's label is not one of ``labels`` (the source was loaded with
    other keywords than the model has) or the classifier's output has the wrong shape.
    """
    labels = list(labels)
    index = {label: i for i, label in enumerate(labels)}
    strangers = sorted(set(clips.labels) - set(index))
    if strangers:
        raise ValueError(
            f"real source {clips.source!r}: labels {strangers} are not classifier "
            f"labels {labels}; load the source with the model's keywords"
        )
    if UNKNOWN_LABEL not in index:
        raise ValueError(f"classifier labels {labels} have no {UNKNOWN_LABEL}")
    y_true = np.array([index[label] for label in clips.labels], dtype=np.int64)
    probs = _probabilities(classify, clips.samples, len(labels), batch_size)
    y_pred = probs.argmax(axis=1).astype(np.int64) if len(y_true) else y_true
    report = classification_report(y_true, y_pred, labels)
    hit = y_true == y_pred
    keyword_ids = np.array(
        [i for i, lab in enumerate(labels) if lab not in (UNKNOWN_LABEL, SILENCE_LABEL)],
        dtype=np.int64,
    )
    is_keyword = np.isin(y_true, keyword_ids)
    is_unknown = y_true == index[UNKNOWN_LABEL]
    per_speaker: dict[str, SpeakerScore] = {}
    speakers = np.array(clips.speakers, dtype=object)
    for speaker in sorted(set(clips.speakers)):
        mine = speakers == speaker
        per_speaker[speaker] = SpeakerScore(int(mine.sum()), float(hit[mine].mean()))
    errors = [
        ClipError(
            clips.names[i],
            clips.speakers[i],
            labels[y_true[i]],
            labels[y_pred[i]],
            round(float(probs[i, y_pred[i]]), 6),
        )
        for i in np.flatnonzero(~hit)[:MAX_LISTED_ERRORS]
    ]
    return RealSourceReport(
        source=clips.source,
        n=len(y_true),
        accuracy=report.accuracy,
        n_keyword=int(is_keyword.sum()),
        keyword_accuracy=float(hit[is_keyword].mean()) if is_keyword.any() else 0.0,
        unknown_baseline=float(is_unknown.mean()) if len(y_true) else 0.0,
        unknown_false_accept_rate=(
            float(np.isin(y_pred[is_unknown], keyword_ids).mean()) if is_unknown.any() else 0.0
        ),
        report=report,
        per_speaker=per_speaker,
        errors=errors,
    )


def waveform_classifier(
    classifier: ClipClassifier, features: RenderCache = NO_CACHE
) -> WaveformClassifier:
    """An artifact's classifier (either family) on 1-s waveforms at 16 kHz, through the
    artifact's own front end (``classify_clips``; its features kept in ``features``:
    :func:`~kws_assets.core.ship.export.classify_with_cache`), with the input shape checked."""
    clip_samples = int(classifier.spec.clip_samples)

    def classify(samples: np.ndarray) -> np.ndarray:
        if samples.ndim != 2 or samples.shape[1] != clip_samples:
            raise ValueError(f"expected clips [n, {clip_samples}], got {samples.shape}")
        return classify_with_cache(classifier, samples, features)

    return classify


def score_families(
    classifiers: dict[str, ClipClassifier],
    sets: Sequence[RealClips],
    features: RenderCache = NO_CACHE,
) -> dict[str, dict[str, RealSourceReport]]:
    """Every family's classifier on every evaluation set: ``{family: {set: report}}``
    (the clips' front-end features kept in ``features``)."""
    return {
        family: {
            clips.source: score_real_source(
                waveform_classifier(classifier, features), clips, classifier.labels
            )
            for clips in sets
            if len(clips)
        }
        for family, classifier in classifiers.items()
    }


def transfer_rows(scores: dict[str, dict[str, RealSourceReport]]) -> list[dict[str, object]]:
    """One row per family and evaluation set: the numbers to compare families by."""
    return [
        {
            "family": family,
            "set": name,
            "clips": r.n,
            "accuracy": round(r.accuracy, 4),
            "keyword_clips": r.n_keyword,
            "keyword_accuracy": round(r.keyword_accuracy, 4),
            "always_unknown": round(r.unknown_baseline, 4),
            "unknown_false_accepts": round(r.unknown_false_accept_rate, 4),
        }
        for family, by_set in scores.items()
        for name, r in by_set.items()
    ]
