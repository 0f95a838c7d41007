"""The material's words and the sentences it needs: a vocabulary without the keywords, each
keyword's hard negatives, and enough sentences for the stream."""

from __future__ import annotations

import math

from kws_assets.core.evaluation.material import (
    FILLER_SHARE_PERCENT,
    SECONDS_PER_SENTENCE,
    _sentences_for,
    evaluation_vocabulary,
)
from kws_assets.settings import NegativeSettings

KEYWORDS = ["yes", "no"]


def test_vocabulary_leaves_out_the_keywords_and_follows_the_seed() -> None:
    words, neighbours = evaluation_vocabulary(KEYWORDS, NegativeSettings(), "en", 50, seed=0)
    assert len(words) == 50 and not set(words) & set(KEYWORDS)
    assert list(neighbours) == KEYWORDS  # each keyword's phoneme neighbours, never a keyword
    assert all(ws and not set(ws) & set(KEYWORDS) for ws in neighbours.values())
    again, _ = evaluation_vocabulary(KEYWORDS, NegativeSettings(), "en", 50, seed=0)
    other, _ = evaluation_vocabulary(KEYWORDS, NegativeSettings(), "en", 50, seed=1)
    assert again == words and other != words


def test_enough_sentences_for_the_stream_and_its_fillers() -> None:
    count = _sentences_for(10.0)
    stream_sentences = count - max(1, count * FILLER_SHARE_PERCENT // 100)
    assert stream_sentences * SECONDS_PER_SENTENCE >= 10.0 * 60 - SECONDS_PER_SENTENCE
    assert count == math.ceil(600 / SECONDS_PER_SENTENCE * 100 / (100 - FILLER_SHARE_PERCENT))
