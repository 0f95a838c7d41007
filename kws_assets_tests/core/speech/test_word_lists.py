"""Word lists per language: wordfreq words, num2words number words, the named fallback."""

from __future__ import annotations

import pytest

from kws_assets.core.speech import word_lists as W

LANGUAGES = ("en", "fr", "es", "de")


@pytest.mark.parametrize("language", LANGUAGES)
def test_top_words_are_plain_words_of_the_language(language: str) -> None:
    words = W.top_words(language, 3000)
    assert len(words) == 3000 and len(set(words)) == 3000
    for word in words:
        assert word == word.lower() and word.isalpha(), word
        assert W.in_script(word, language), word
        if len(word) == 1:
            assert word in W.SINGLE_LETTER_WORDS[language], word
        else:
            assert not W.LATIN_VOWELS.isdisjoint(word), word  # no "tv", "km"


def test_tokenising_leftovers_and_abbreviations_are_dropped() -> None:
    fr = set(W.top_words("fr", 5000))
    assert {"l", "d", "qu", "km"}.isdisjoint(fr)
    assert {"à", "de", "maison"} <= fr
    de = set(W.top_words("de", 5000))
    assert {"bzw", "nr", "s"}.isdisjoint(de)


def test_other_scripts_are_kept_apart() -> None:
    assert W.in_script("привет", "ru") and not W.in_script("привет", "fr")
    assert not W.in_script("hello", "ru")
    assert not W.is_plain_word("co2", "en") and not W.is_plain_word("don't", "en")
    assert all(W.in_script(w, "ru") for w in W.top_words("ru", 500))


def test_top_words_follow_frequency_and_exclusions() -> None:
    words = W.top_words("es", 50)
    assert words[:3] == ["de", "la", "que"]  # wordfreq's ranking, most frequent first
    fewer = W.top_words("es", 50, exclude=["DE", "que"])
    assert "de" not in fewer and "que" not in fewer and len(fewer) == 50
    assert fewer[:5] == [w for w in words if w not in {"de", "que"}][:5]


def test_deterministic() -> None:
    assert W.top_words("de", 2000) == W.top_words("de", 2000)
    assert W.number_words("fr") == W.number_words("fr")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", {"zéro", "un", "deux", "neuf", "vingt", "cent", "mille"}),
        ("es", {"cero", "uno", "nueve", "veinte", "cien", "mil"}),
        ("de", {"null", "eins", "neun", "zwanzig", "einhundert", "eintausend"}),  # compounds
        ("en", {"zero", "one", "nine", "twenty", "hundred", "thousand"}),
    ],
)
def test_number_words(language: str, expected: set[str]) -> None:
    words = W.number_words(language)
    assert expected <= set(words)
    assert all(W.is_plain_word(w, language) for w in words)


def test_wordfreq_covers_the_main_languages_offline() -> None:
    assert {"en", "fr", "es", "de", "it", "pt", "nl", "ru"} <= W.wordfreq_languages()
    assert W.word_list("fr-CA", 10).source == W.WORDFREQ_SOURCE  # primary subtag serves


def test_language_wordfreq_lacks_falls_back_to_number_words() -> None:
    assert "cy" not in W.wordfreq_languages()
    listed = W.word_list("cy", 1000)
    assert listed.source == W.NUMBER_WORDS_SOURCE
    assert "number words only" in listed.note and "cy" in listed.note
    assert listed.words == W.number_words("cy")[:1000] and {"un", "dau", "tri"} <= set(listed.words)
    assert W.top_words("cy", 5) == list(W.number_words("cy")[:5])


def test_language_nobody_has_is_empty_with_a_note() -> None:
    listed = W.word_list("eu", 100)  # Basque: neither wordfreq nor num2words
    assert listed.source == W.NO_SOURCE and listed.words == () and "eu" in listed.note
    assert W.top_words("eu", 10) == []


def test_bad_count() -> None:
    with pytest.raises(W.WordListError, match="count"):
        W.word_list("en", -1)
