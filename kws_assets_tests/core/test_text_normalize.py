"""Per-language transcript and keyword normalisation before alignment."""

from __future__ import annotations

import unicodedata

import pytest

from kws_assets.core.speech.text_normalize import (
    expand_numbers,
    normalize_keyword,
    normalize_text,
    normalize_words,
    num2words_language,
    split_words,
)


def test_case_is_folded_and_punctuation_separates_words():
    assert normalize_words("¡Sí! No, ARRIBA...", "es") == ["sí", "no", "arriba"]
    assert normalize_words("Die Straße!", "de") == ["die", "strasse"]  # casefold, not lower
    assert normalize_words("«Bonjour» — dit-il ; (oui)", "fr") == ["bonjour", "dit-il", "oui"]
    assert normalize_words("  ...  ", "en") == []


def test_apostrophes_and_hyphens_stay_inside_words_only():
    assert normalize_words("Don\u2019t stop, it's 'quoted' -dash- word's", "en") == [
        "don't", "stop", "it's", "quoted", "dash", "word's"]
    assert normalize_words("c'est-à-dire aujourd’hui peut‐être", "fr") == [
        "c'est-à-dire", "aujourd'hui", "peut-être"]
    assert normalize_words("col·lecció", "ca") == ["col·lecció"]


def test_accents_and_scripts_are_kept_in_one_normal_form():
    decomposed = unicodedata.normalize("NFD", "Sí")
    assert decomposed != "Sí"
    assert normalize_words(decomposed, "es") == ["sí"] == normalize_words("SÍ", "es")
    assert normalize_words("Привет, мир", "ru") == ["привет", "мир"]
    assert normalize_words("हिन्दी ठीक है", "hi") == ["हिन्दी", "ठीक", "है"]  # vowel signs are marks
    assert normalize_words("你好，世界", "zh-CN") == ["你好", "世界"]


def test_numbers_become_words_in_the_language():
    assert normalize_words("42", "en") == ["forty-two"]
    assert normalize_words("23 pájaros", "es") == ["veintitrés", "pájaros"]
    assert normalize_words("42", "fr") == ["quarante-deux"]
    assert normalize_text("1,500 people", "en") == "one thousand five hundred people"
    assert normalize_text("1.500 personas", "es") == "mil quinientos personas"
    assert normalize_text("2 500 euros", "fr") == "deux mille cinq cents euros"
    assert normalize_text("3,5 kg", "es") == "tres punto cinco kg"  # num2words' Spanish decimal
    assert normalize_text("3.5", "en") == "three point five"


def test_ordinals_and_units_after_digits():
    assert normalize_text("the 3rd and 21st", "en") == "the third and twenty-first"
    assert normalize_text("el 2º", "es") == "el segundo"
    assert normalize_text("le 1er", "fr") == "le premier"
    assert normalize_text("10km", "en") == "ten km"


def test_digits_that_are_not_one_number_are_read_run_by_run():
    assert normalize_text("5 100", "en") == "five one hundred"  # no space grouping in English
    assert normalize_text("3.5", "es") == "tres cinco"  # '.' groups thousands in Spanish
    assert normalize_text("mp3 covid19", "en") == "mp3 covid19"  # digits inside a word stay


def test_languages_num2words_lacks_keep_their_digits():
    assert num2words_language("es-CO") == "es_CO"
    assert num2words_language("es-MX") == "es"
    assert num2words_language("zh-CN") is None
    assert num2words_language("xx") is None
    assert expand_numbers("你好 2", "zh-CN") == "你好 2"
    long_id = "123456789012345678"
    assert normalize_words(f"id {long_id}", "en") == ["id", long_id]


@pytest.mark.parametrize("keyword,language,form", [
    ("Sí", "es", "sí"), ("ARRIBA", "es", "arriba"), ("Peut-Être", "fr", "peut-être"),
    ("Straße", "de", "strasse"), ("7", "en", "seven"),
])
def test_keywords_meet_transcript_words(keyword, language, form):
    assert normalize_keyword(keyword, language) == form
    assert form in normalize_words(f"x {keyword}, y", language)


def test_split_words_is_the_tokeniser():
    assert split_words("a--b 'c' d'e -f-") == ["a", "b", "c", "d'e", "f"]
