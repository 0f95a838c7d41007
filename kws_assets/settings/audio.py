"""Audio and feature settings: sample rate, clip length, MFCC front end.

The clip length follows the longest keyword: a config whose keywords are all single words keeps
the 1-s clip of the Speech Commands convention, and one with a phrase ("hey jarvis") gets a
window long enough for the whole phrase (:func:`phrase_clip_seconds`), chosen when the config
leaves ``audio.clip_seconds`` out or writes ``clip_seconds: auto``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

from pydantic import Field, model_validator

from kws_assets.settings.base import StrictSettings

AUTO_CLIP = "auto"
"""``audio.clip_seconds: auto``: the window follows the longest keyword."""
WORD_CLIP_SECONDS = 1.0
"""The clip of single-word keywords (and the shortest automatic window)."""
SECONDS_PER_WORD = 0.5
SECONDS_PER_SYLLABLE = 0.15
"""An upper estimate of a spoken phrase's length: measured on espeak-ng at the slowest default
rate (115 wpm, 60 ms word gap, four variants), the slowest render of "hey jarvis" lasts 1.36 s
(estimate 1.45), "hey mycroft" 1.38 (1.45), "okay nabu" 1.59 (1.6), "bonjour maison" 1.44
(1.6), "hallo computer" 1.60 (1.75), "stop the music" 1.68 (2.1); flite and festival render
them shorter.  A render that still does not fit is quarantined, never cut."""
CLIP_STEP_SECONDS = 0.1
VOWEL_GROUPS = re.compile(r"[aeiouy]+")


def estimated_syllables(word: str) -> int:
    """Vowel groups of a word with its accents folded ("maison" 2, "jarvis" 2), at least one: a
    rough syllable count that works in any Latin-script language."""
    folded = unicodedata.normalize("NFKD", word.lower())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return max(1, len(VOWEL_GROUPS.findall(plain)))


def phrase_clip_seconds(keywords: Sequence[str], max_seconds: float) -> float:
    """The clip length for ``keywords``: 1 s when every keyword is one word, else the longest
    phrase's estimated spoken length (:data:`SECONDS_PER_WORD` per word plus
    :data:`SECONDS_PER_SYLLABLE` per syllable), rounded up to 0.1 s, within [1 s,
    ``max_seconds``] (the model families' limit: the speech-embedding family reads a fixed
    context around the clip)."""
    longest = WORD_CLIP_SECONDS
    for keyword in keywords:
        words = keyword.split()
        if len(words) < 2:
            continue
        spoken = SECONDS_PER_WORD * len(words) + SECONDS_PER_SYLLABLE * sum(
            estimated_syllables(w) for w in words
        )
        longest = max(longest, math.ceil(round(spoken / CLIP_STEP_SECONDS, 6)) * CLIP_STEP_SECONDS)
    return round(min(longest, max(max_seconds, WORD_CLIP_SECONDS)), 3)


class AudioSettings(StrictSettings):
    sample_rate: int = Field(16000, gt=0, description="Sample rate of every clip, Hz.")
    clip_seconds: float = Field(
        WORD_CLIP_SECONDS,
        gt=0,
        description="Length of every keyword clip, seconds; 'auto' (the default of a config "
        "with a multi-word keyword) fits the longest phrase.",
    )
    fade_ms: float = Field(10.0, ge=0, description="Fade in/out applied when cutting a clip.")

    @property
    def clip_samples(self) -> int:
        return round(self.sample_rate * self.clip_seconds)


class FeatureSettings(StrictSettings):
    """MFCC settings; defaults follow the MLPerf Tiny / ARM DS-CNN convention (49x10)."""

    window_ms: float = Field(40.0, gt=0)
    hop_ms: float = Field(20.0, gt=0)
    n_mels: int = Field(40, gt=0)
    n_mfcc: int = Field(10, gt=0)
    f_min: float = Field(20.0, ge=0)
    f_max: float = Field(4000.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> FeatureSettings:
        if self.n_mfcc > self.n_mels:
            raise ValueError("n_mfcc must not exceed n_mels")
        if self.f_min >= self.f_max:
            raise ValueError("f_min must be below f_max")
        return self
