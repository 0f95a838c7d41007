"""The tone task's evaluation inputs shared by the evaluation tests: a keyword-free recording,
keyword clips embedded in filler, material built from them, and a classifier whose outputs carry
no information."""

from __future__ import annotations

import numpy as np
import polars as pl

from kws_assets.core.evaluation.material import EvaluationMaterial, StreamAudio
from kws_assets.core.evaluation.streams import Positive, embed_positives
from kws_assets.core.ship.export import KwsClassifier
from kws_assets_tests.tone_detector import LABELS, SR, labelled_clips, tone_stream


class UniformClassifier:
    """Wraps a classifier but answers every window with equal probabilities."""

    def __init__(self, inner: KwsClassifier) -> None:
        self.spec, self.labels = inner.spec, inner.labels

    def classify_features(self, x: np.ndarray) -> np.ndarray:
        return np.full((len(x), len(self.labels)), 1.0 / len(self.labels), dtype=np.float32)


def tone_streams(
    seed: int, keyword_clips: int = 12
) -> tuple[np.ndarray, np.ndarray, list[Positive]]:
    """Two minutes of _unknown_ tones every 3 s, and ``keyword_clips`` tone keywords (alternately
    high and low) embedded in filler tones; returns both streams and where the keywords are."""
    rng = np.random.default_rng(seed)
    negative_events = [(float(t), "_unknown_") for t in np.arange(1.0, 118.0, 3.0)]
    negative = tone_stream(negative_events, 120.0, seed)
    clips = []
    for i in range(keyword_clips):
        label = "low_tone" if i % 2 else "high_tone"
        clip = tone_stream([(0.35, label)], 1.0, seed + i)
        clips.append((clip, label, f"c{i}"))
    filler = [tone_stream([(0.5, "_unknown_")], 2.0, seed + 100)]
    positive, positives = embed_positives(clips, filler, SR, rng)
    return negative, positive, positives


def tone_material(seed: int = 3) -> EvaluationMaterial:
    """Evaluation material of the tone task built by hand (no TTS): validation and test streams
    from :func:`tone_streams`, a few labelled clips standing for the held-out voices."""
    unseen, y = labelled_clips(2, seed=seed + 50)
    streams = []
    for offset in (0, 1):
        negative, positive, positives = tone_streams(seed + offset)
        streams.append(StreamAudio(negative, positive, positives, 0, SR))
    return EvaluationMaterial(
        list(unseen),
        [LABELS[i] for i in y],
        streams[0],
        streams[1],
        pl.DataFrame({"label": ["low_tone"], "frechet": [1.0]}),
        ["built by hand"],
    )
