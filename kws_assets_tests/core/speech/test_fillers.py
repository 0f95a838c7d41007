"""Carrier phrases and filler words of the languages the project speaks besides English."""

from __future__ import annotations

import pytest

from kws_assets.core.speech import fillers, tts
from kws_assets.core.speech.languages import alignment_voice


@pytest.mark.parametrize("language", ["fr", "es", "de", "it", "pt", "nl", "ru"])
def test_carrier_phrases_and_fillers(language: str) -> None:
    phrases = fillers.carrier_phrases(language)
    assert len(phrases) >= 3
    voice = alignment_voice(language)
    words = fillers.filler_words(language)
    for phrase in phrases:
        assert phrase.count("{}") == 1, phrase
        spoken = tts.phonemize(phrase.replace("{}", words[-1]), voice=voice)
        assert "(" not in spoken, (phrase, spoken)  # espeak-ng reads it in the language itself
    assert words and len(set(words)) == len(words)
    assert all(w.isalpha() and w == w.lower() for w in words)
