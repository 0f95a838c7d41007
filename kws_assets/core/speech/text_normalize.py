"""Transcript and keyword normalisation before alignment, for any language.

The same function turns a transcript into the words an aligner places and a configured keyword
into the form those words are compared with, so ``"¡Sí!"`` in a transcript and the keyword
``Sí`` meet as ``"sí"``:

1. Unicode NFC, typographic apostrophes to ``'``, hyphen variants to ``-``, dashes to spaces;
2. numbers to words with `num2words` where it knows the language (cardinals, decimals, digit
   grouping, ordinals such as ``1st``/``2º``/``3e``), reading the separators the locale writes
   (CLDR number symbols via Babel: es-MX ``1,500.5``, es-ES ``1.500,5``, de-CH ``1'500.5``,
   fr-CA ``1 500,5``); numbers in other languages stay digits, and the TTS+DTW aligner lets
   espeak-ng read them (its word events still fall inside the token);
3. ``str.casefold`` (``"Straße"`` -> ``"strasse"``);
4. words are runs of letters, combining marks and digits in any script; ``'``, ``-``, ``·`` and
   zero-width (non-)joiners are kept only *inside* a word (``"aujourd'hui"``, ``"peut-être"``,
   ``"col·lecció"``); all other punctuation separates words.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import NamedTuple

from kws_assets.core.speech.languages import normalize_language, primary_subtag

# Characters folded before tokenising.
_APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'", "\u00b4": "'"}
_HYPHENS = {"\u2010": "-", "\u2011": "-"}
_DASHES = {"\u2012": " ", "\u2013": " ", "\u2014": " ", "\u2015": " ", "\u2212": " "}
_FOLD = str.maketrans({**_APOSTROPHES, **_HYPHENS, **_DASHES})
# Kept only between two word characters.
INNER_JOINERS = frozenset("'-\u00b7\u200c\u200d")
WORD_CATEGORIES = ("L", "M", "N")

# Numbers: digits with optional grouping/decimal separators and an optional ordinal suffix.
MAX_NUMBER_DIGITS = 15  # longer digit strings (ids, phone numbers) are left to espeak-ng
_SUFFIX = r"([^\W\d_]{1,3}|[\u00ba\u00aa\u00b0])?(?![^\W_])"
# Fallback where CLDR (Babel) lacks a locale: languages writing a decimal point (others write a
# decimal comma and group with . or a space).
DECIMAL_POINT_LANGUAGES = frozenset(
    {
        "en",
        "zh",
        "cmn",
        "yue",
        "ja",
        "ko",
        "he",
        "th",
        "hi",
        "ta",
        "te",
        "kn",
        "ml",
        "mr",
        "bn",
        "ur",
        "ms",
        "sw",
        "ga",
        "mt",
    }
)
GROUP_SPACES = ("\u00a0", "\u202f", " ")
GROUP_APOSTROPHES = ("'", "\u2019")  # de-CH/it-CH/fr-CH write 1'500 (CLDR ' or typographic ')
# How a decimal separator is read aloud where num2words reads one word for both (its Spanish says
# "punto" even for the comma Spain writes): language -> {written separator: spoken word}.
SPOKEN_DECIMAL_SEPARATORS = {
    "es": {",": "coma", ".": "punto"},
    "ca": {",": "coma", ".": "punt"},
    "it": {",": "virgola", ".": "punto"},  # num2words' Italian drops the fraction altogether
    "pt": {",": "v\u00edrgula", ".": "ponto"},
}


class NumberSymbols(NamedTuple):
    """How a locale writes numbers: its decimal separator and the separators it groups digits
    with (CLDR's group symbol, plus the spaces and apostrophes written for it)."""

    decimal: str
    groups: tuple[str, ...]
    source: str  # the CLDR locale the symbols come from, or "fallback"


def _cldr_symbols(language: str) -> tuple[str, str, str] | None:
    """(decimal, group, locale) from CLDR for a BCP-47-ish code (``es_MX``, ``es-419``, ``fr-CA``),
    trying the full tag, then its primary subtag; None where CLDR has neither."""
    try:
        from babel import Locale, UnknownLocaleError
        from babel.numbers import get_decimal_symbol, get_group_symbol
    except ImportError:  # babel is a declared dependency; without it the fallback table serves
        return None
    tag = str(language or "").strip().replace("-", "_")
    for candidate in dict.fromkeys((tag, tag.split("_", 1)[0])):
        if not candidate:
            continue
        try:
            locale = Locale.parse(candidate)
        except (UnknownLocaleError, ValueError, TypeError):
            continue
        # Latin digits: the regexes below read ASCII digits, whatever the locale's default system.
        return (
            get_decimal_symbol(locale, numbering_system="latn"),
            get_group_symbol(locale, numbering_system="latn"),
            str(locale),
        )
    return None


@lru_cache(maxsize=256)
def number_symbols(language: str) -> NumberSymbols:
    """The decimal and group separators of a locale's written numbers, from CLDR: es-MX writes
    ``1,500.5``, es-ES ``1.500,5``, de-CH ``1'500.5``, fr-CA ``1 500,5`` (no-break space).

    Space grouping (any of :data:`GROUP_SPACES`) is accepted wherever the locale writes a decimal
    comma or groups with a space; an apostrophe group accepts both apostrophes."""
    cldr = _cldr_symbols(language)
    if cldr is None:
        point = primary_subtag(language) in DECIMAL_POINT_LANGUAGES
        decimal, group, source = ("." if point else ","), ("," if point else "."), "fallback"
    else:
        decimal, group, source = cldr
    groups = [group]
    if group in GROUP_APOSTROPHES:
        groups += GROUP_APOSTROPHES
    if decimal == "," or group.isspace():
        groups += GROUP_SPACES
    return NumberSymbols(decimal, tuple(dict.fromkeys(g for g in groups if g != decimal)), source)


@lru_cache(maxsize=64)
def _number_pattern(symbols: NumberSymbols) -> re.Pattern:
    """Digits with separators: ``.`` and ``,`` always (so a number grouped another locale's way is
    read run by run, not cut in two), the locale's other group symbols only before three digits."""
    others = [g for g in symbols.groups if g not in ".,"]
    grouped = "|".join(re.escape(g) for g in others)
    body = r"[.,]\d+" + (rf"|(?:{grouped})\d{{3}}(?!\d)" if grouped else "")
    return re.compile(r"(?<![^\W_])(\d+(?:" + body + r")*)" + _SUFFIX)


# Ordinal suffixes written after digits, by language (num2words ``to="ordinal"``).
ORDINAL_SUFFIXES = {
    "en": ("st", "nd", "rd", "th"),
    "es": ("\u00ba", "\u00aa", "\u00b0", "o", "a", "er", "ro", "do", "to", "vo", "no"),
    "pt": ("\u00ba", "\u00aa", "\u00b0", "o", "a"),
    "it": ("\u00ba", "\u00aa", "\u00b0", "o", "a"),
    "fr": ("e", "er", "re", "ère", "ème", "eme", "nd", "nde"),
}


def num2words_language(language: str) -> str | None:
    """The num2words converter code for a language (``"es-co"`` -> ``"es_CO"``, ``"es-mx"`` ->
    ``"es"``), or None when num2words does not speak it."""
    try:
        from num2words import CONVERTER_CLASSES
    except ImportError:  # num2words is a declared dependency; without it digits stay digits
        return None
    tag = normalize_language(language)
    parts = tag.split("-")
    candidates = [f"{parts[0]}_{parts[1].upper()}"] if len(parts) > 1 else []
    candidates.append(parts[0])
    return next((c for c in candidates if c in CONVERTER_CLASSES), None)


def _parse_number(digits: str, language: str) -> Decimal | None:
    """The value of a digit string with separators, or None when its grouping is not a number
    written the language's way (``"1,5"`` is 1.5 in Spanish, ``"1,500"`` is 1500 in English)."""
    symbols = number_symbols(language)
    integer, _, fraction = digits.partition(symbols.decimal)
    if fraction and not fraction.isdigit():
        return None
    groups = re.split("|".join(re.escape(s) for s in symbols.groups), integer)
    if len(groups) > 1 and not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
        return None
    plain = "".join(groups)
    if not plain.isdigit() or len(plain) + len(fraction) > MAX_NUMBER_DIGITS:
        return None
    try:
        return Decimal(f"{int(plain)}.{fraction}" if fraction else str(int(plain)))
    except (InvalidOperation, ValueError):
        return None


def _spoken_number(match: re.Match, language: str, converter: str) -> str:
    """One matched number in words; digits whose grouping is not one number are read run by run."""
    from num2words import num2words

    digits, suffix = match.group(1), match.group(2) or ""
    suffixes = ORDINAL_SUFFIXES.get(primary_subtag(language), ())
    ordinal = bool(suffix) and suffix.casefold() in suffixes
    value = _parse_number(digits, language)
    tail = "" if ordinal or not suffix else f" {suffix}"
    try:
        if value is None or (ordinal and value != value.to_integral_value()):
            runs = re.findall(r"\d+", digits)
            if any(len(run) > MAX_NUMBER_DIGITS for run in runs):
                return match.group(0)
            return " ".join(num2words(int(run), lang=converter) for run in runs) + (
                f" {suffix}" if suffix else ""
            )
        if ordinal:
            return num2words(int(value), lang=converter, to="ordinal")
        if value == value.to_integral_value():
            return num2words(int(value), lang=converter) + tail
        return _spoken_decimal(value, language, converter) + tail
    except (NotImplementedError, OverflowError, ValueError, TypeError, KeyError, IndexError):
        return match.group(0)


def _spoken_decimal(value: Decimal, language: str, converter: str) -> str:
    """A non-integral number read the way the locale writes it: the integer, the spoken name of
    the written separator, then the fraction digit by digit (es-ES ``3,5`` -> "tres coma cinco",
    es-MX ``3.5`` -> "tres punto cinco"); num2words' own reading where no name is known."""
    from num2words import num2words

    spoken = SPOKEN_DECIMAL_SEPARATORS.get(primary_subtag(language), {})
    word = spoken.get(number_symbols(language).decimal)
    if word is None:
        return num2words(value, lang=converter)
    integer, _, fraction = format(value, "f").partition(".")
    digits = " ".join(num2words(int(d), lang=converter) for d in fraction)
    return f"{num2words(int(integer), lang=converter)} {word} {digits}"


def expand_numbers(text: str, language: str) -> str:
    """Digits written out as words in ``language`` (unchanged where num2words lacks it)."""
    converter = num2words_language(language)
    if converter is None:
        return text
    pattern = _number_pattern(number_symbols(language))
    return pattern.sub(lambda m: f" {_spoken_number(m, language, converter)} ", text)


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch).startswith(WORD_CATEGORIES)


def split_words(text: str) -> list[str]:
    """Words of already folded text: runs of letters/marks/digits, joined by inner ``'-·``."""
    words: list[str] = []
    current: list[str] = []
    for i, ch in enumerate(text):
        if _is_word_char(ch) or (
            ch in INNER_JOINERS and current and i + 1 < len(text) and _is_word_char(text[i + 1])
        ):
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def normalize_words(text: str, language: str) -> list[str]:
    """The words of a transcript as aligners place them (see the module docstring)."""
    folded = unicodedata.normalize("NFC", str(text)).translate(_FOLD)
    spoken = expand_numbers(folded, language)
    lowered = unicodedata.normalize("NFC", spoken.casefold())
    return split_words(lowered)


def normalize_text(text: str, language: str) -> str:
    """:func:`normalize_words` joined with single spaces."""
    return " ".join(normalize_words(text, language))


def normalize_keyword(keyword: str, language: str) -> str:
    """A configured keyword in the form aligned words take (``"Sí"`` -> ``"sí"``)."""
    return normalize_text(keyword, language)
