"""The material's words and the sentences it needs: a vocabulary without the keywords, a pool
with its share of hard negatives, and enough sentences for the stream."""

from __future__ import annotations

import math

import numpy as np

from kws_assets.core.evaluation.material import (
    FILLER_SHARE_PERCENT,
    NEIGHBOUR_WORD_SHARE,
    SECONDS_PER_SENTENCE,
    _sentences_for,
    evaluation_vocabulary,
    sentence_words,
)
from kws_assets.settings import NegativeSettings

KEYWORDS = ["yes", "no"]


def test_vocabulary_leaves_out_the_keywords_and_follows_the_seed() -> None:
    words, neighbours = evaluation_vocabulary(KEYWORDS, NegativeSettings(), "en", 50, seed=0)
    assert len(words) == 50 and not set(words) & set(KEYWORDS)
    assert neighbours and not set(neighbours) & set(KEYWORDS)  # phoneme neighbours, not keywords
    again, _ = evaluation_vocabulary(KEYWORDS, NegativeSettings(), "en", 50, seed=0)
    other, _ = evaluation_vocabulary(KEYWORDS, NegativeSettings(), "en", 50, seed=1)
    assert again == words and other != words


def test_sentence_pool_holds_its_share_of_hard_negatives() -> None:
    words = [f"w{i}" for i in range(80)]
    pool = sentence_words(words, ["near"], np.random.default_rng(0), len(words))
    assert pool[: len(words)] == words
    assert pool.count("near") / len(pool) == NEIGHBOUR_WORD_SHARE
    assert sentence_words(words, [], np.random.default_rng(0), len(words)) == words


def test_enough_sentences_for_the_stream_and_its_fillers() -> None:
    count = _sentences_for(10.0)
    stream_sentences = count - max(1, count * FILLER_SHARE_PERCENT // 100)
    assert stream_sentences * SECONDS_PER_SENTENCE >= 10.0 * 60 - SECONDS_PER_SENTENCE
    assert count == math.ceil(600 / SECONDS_PER_SENTENCE * 100 / (100 - FILLER_SHARE_PERCENT))
