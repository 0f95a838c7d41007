"""Cutting keyword and _unknown_ clips from word alignments."""

from __future__ import annotations

import numpy as np

from kws_assets.core.corpus.segment import choose_clips, cut_word_clips
from kws_assets.core.speech.alignment import WordSpan
from kws_assets.settings import UNKNOWN_LABEL

SR = 16000


def _utterance_with_bursts(spans: list[tuple[float, float]], seconds: float = 3.0) -> np.ndarray:
    x = np.zeros(int(seconds * SR), dtype=np.float32)
    for start, end in spans:
        t = np.arange(int((end - start) * SR)) / SR
        x[int(start * SR) : int(start * SR) + len(t)] = 0.5 * np.sin(2 * np.pi * 440 * t)
    return x


WORDS = [
    WordSpan("please", 0.2, 0.6, 0.9),
    WordSpan("say", 0.7, 0.95, 0.9),
    WordSpan("yes", 1.4, 1.8, 0.8),
    WordSpan("now", 2.2, 2.5, 0.9),
    WordSpan("a", 2.6, 2.62, 0.5),
]


def test_every_keyword_and_n_unknowns_are_chosen_deterministically():
    chosen = choose_clips(WORDS, ["yes"], "utt-1", unknown_per_utterance=2, min_word_seconds=0.08)
    labels = [label for label, _ in chosen]
    assert labels.count("yes") == 1 and labels.count(UNKNOWN_LABEL) == 2
    assert all(span.word not in {"yes", "a"} for label, span in chosen if label == UNKNOWN_LABEL)
    assert chosen == choose_clips(WORDS, ["yes"], "utt-1", 2, 0.08)
    picks = {
        tuple(
            s.word
            for label, s in choose_clips(WORDS, ["yes"], f"utt-{i}", 1, 0.08)
            if label == UNKNOWN_LABEL
        )
        for i in range(20)
    }
    assert len(picks) > 1, "different utterances pick different unknown words"


def test_clips_are_centred_on_the_aligned_word():
    samples = _utterance_with_bursts([(1.4, 1.8)])
    clips = cut_word_clips(samples, SR, WORDS, ["yes"], "utt", SR, 10.0, 0, 0.08)
    assert [c.label for c in clips] == ["yes"]
    energy = clips[0].samples.astype(np.float64) ** 2
    centroid = (energy * np.arange(len(energy))).sum() / energy.sum()
    assert abs(centroid - SR / 2) < 0.02 * SR
    assert len(clips[0].samples) == SR


def test_a_word_at_the_end_is_zero_padded():
    samples = _utterance_with_bursts([(2.7, 2.95)], seconds=3.0)
    clips = cut_word_clips(
        samples, SR, [WordSpan("go", 2.7, 2.95, 1.0)], ["go"], "u", SR, 10.0, 0, 0.08
    )
    tail = clips[0].samples[-int(0.3 * SR) :]
    assert len(clips[0].samples) == SR and np.all(tail == 0)
