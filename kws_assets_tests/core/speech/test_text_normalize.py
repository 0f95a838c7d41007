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
    number_symbols,
    split_words,
)


def test_case_is_folded_and_punctuation_separates_words():
    assert normalize_words("¡Sí! No, ARRIBA...", "es") == ["sí", "no", "arriba"]
    assert normalize_words("Die Straße!", "de") == ["die", "strasse"]  # casefold, not lower
    assert normalize_words("«Bonjour» — dit-il ; (oui)", "fr") == ["bonjour", "dit-il", "oui"]
    assert normalize_words("  ...  ", "en") == []


def test_apostrophes_and_hyphens_stay_inside_words_only():
    assert normalize_words("Don\u2019t stop, it's 'quoted' -dash- word's", "en") == [
        "don't",
        "stop",
        "it's",
        "quoted",
        "dash",
        "word's",
    ]
    # typographic apostrophe and hyphen on purpose: normalisation must fold them
    assert normalize_words("c'est-à-dire aujourd’hui peut‐être", "fr") == [  # noqa: RUF001
        "c'est-à-dire",
        "aujourd'hui",
        "peut-être",
    ]
    assert normalize_words("col·lecció", "ca") == ["col·lecció"]


def test_accents_and_scripts_are_kept_in_one_normal_form():
    decomposed = unicodedata.normalize("NFD", "Sí")
    assert decomposed != "Sí"
    assert normalize_words(decomposed, "es") == ["sí"] == normalize_words("SÍ", "es")
    assert normalize_words("Привет, мир", "ru") == ["привет", "мир"]
    assert normalize_words("हिन्दी ठीक है", "hi") == ["हिन्दी", "ठीक", "है"]  # vowel signs are marks
    assert normalize_words("你好，世界", "zh-CN") == ["你好", "世界"]  # noqa: RUF001 - CJK comma


def test_numbers_become_words_in_the_language():
    assert normalize_words("42", "en") == ["forty-two"]
    assert normalize_words("23 pájaros", "es") == ["veintitrés", "pájaros"]
    assert normalize_words("42", "fr") == ["quarante-deux"]
    assert normalize_text("1,500 people", "en") == "one thousand five hundred people"
    assert normalize_text("1.500 personas", "es") == "mil quinientos personas"
    assert normalize_text("2 500 euros", "fr") == "deux mille cinq cents euros"
    assert normalize_text("3,5 kg", "es") == "tres coma cinco kg"  # Spain reads its comma
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


@pytest.mark.parametrize(
    "keyword,language,form",
    [
        ("Sí", "es", "sí"),
        ("ARRIBA", "es", "arriba"),
        ("Peut-Être", "fr", "peut-être"),
        ("Straße", "de", "strasse"),
        ("7", "en", "seven"),
    ],
)
def test_keywords_meet_transcript_words(keyword, language, form):
    assert normalize_keyword(keyword, language) == form
    assert form in normalize_words(f"x {keyword}, y", language)


def test_split_words_is_the_tokeniser():
    assert split_words("a--b 'c' d'e -f-") == ["a", "b", "c", "d'e", "f"]


@pytest.mark.parametrize(
    "text,language,spoken",
    [
        # es-MX (CLDR: decimal point, comma groups) against es-ES (decimal comma, point groups)
        ("1,500 personas", "es_MX", "mil quinientos personas"),
        ("3.5", "es_MX", "tres punto cinco"),
        ("1.500", "es-ES", "mil quinientos"),
        ("3,5", "es-ES", "tres coma cinco"),
        ("1,500.25", "es-419", "mil quinientos punto dos cinco"),
        ("1.500", "es_MX", "uno punto cinco cero cero"),  # a decimal point in Mexico, not a group
        ("3,5", "es_MX", "tres cinco"),  # a comma groups three digits in Mexico: not one number
        # de-CH: decimal point, apostrophe groups (CLDR ' and the typographic one)
        ("1'500.5", "de-CH", "eintausendfünfhundert komma fünf"),
        ("1\u2019500", "de_CH", "eintausendfünfhundert"),
        ("3.5", "de-CH", "drei komma fünf"),
        ("3,5", "de-DE", "drei komma fünf"),
        ("3.5", "de-DE", "drei fünf"),
        # fr-CA: decimal comma, no-break space groups (narrow and plain spaces read the same)
        ("1\u00a0500,5", "fr-CA", "mille cinq cents virgule cinq"),
        ("1\u202f500", "fr-CA", "mille cinq cents"),
        ("2 500 euros", "fr-CA", "deux mille cinq cents euros"),
        (
            "1.234.567,89",
            "pt-BR",
            "um milhão duzentos e trinta e quatro mil quinhentos e sessenta e "
            "sete vírgula oito nove",
        ),
        ("3,5", "it", "tre virgola cinque"),  # num2words alone would say "tre"
    ],
)
def test_numbers_are_read_with_the_locales_separators(text, language, spoken):
    assert normalize_text(text, language) == spoken


def test_number_symbols_come_from_cldr_per_locale():
    mexico, spain = number_symbols("es-MX"), number_symbols("es_ES")
    assert (mexico.decimal, mexico.groups[0], mexico.source) == (".", ",", "es_MX")
    assert (spain.decimal, spain.groups[0], spain.source) == (",", ".", "es_ES")
    assert number_symbols("es-419").source == "es_419"
    swiss = number_symbols("de-CH")
    assert swiss.decimal == "." and "'" in swiss.groups and "\u2019" in swiss.groups
    canada = number_symbols("fr-CA")
    assert canada.decimal == "," and {"\u00a0", "\u202f"} <= set(canada.groups)
    assert "." not in canada.groups and "," not in canada.groups
    assert number_symbols("en-US").groups == (",",)  # no space grouping: "5 100" is two numbers
    # A code CLDR lacks falls back to the primary subtag, then to the built-in table.
    assert number_symbols("es-XX").source == "es"
    assert number_symbols("qq").source == "fallback"
