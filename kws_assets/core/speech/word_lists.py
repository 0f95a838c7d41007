"""Frequency-ranked everyday words of a language, for ``_unknown_`` negatives in any language.

English has a pronouncing dictionary and a language model (pocketsphinx, :mod:`.lexicon`);
other languages get their words here:

* **wordfreq** (PyPI ``wordfreq`` 3.x): word frequencies of 40+ languages from Wikipedia,
  subtitles, news, books, web text and Twitter.  The data ships inside the wheel
  (``wordfreq/data/*.msgpack.gz``), so nothing is downloaded; :func:`wordfreq_languages` lists
  what the installed wheel covers (3.1.1: ar bg bn ca cs da de el en es fa fi fil fr he hi hu id
  is it ja ko lt lv mk ms nb nl pl pt ro ru sh sk sl sv ta tr uk ur vi zh).
  Licenses: the code is **Apache-2.0**; the data files are redistributable under
  **CC BY-SA 4.0** (they include Google Books Ngrams, Leeds Internet Corpus, Wikipedia, OPUS
  OpenSubtitles, SUBTLEX and Twitter statistics; see the wheel's METADATA).  A word list drawn
  from them and published with a dataset should carry that attribution.
* **num2words** (LGPL-2.1, already a dependency): the number words of a language ("zéro",
  "vingt", "mille"), an extra pool, and the only one for a language wordfreq lacks (Welsh,
  Esperanto...): :func:`word_list` then names that fallback (:data:`NUMBER_WORDS_SOURCE`).

Every word returned is lower-case, made of letters of the language's script only (no
punctuation, digits, apostrophes or hyphens, which espeak-ng reads as several words), and a
single letter only where it is a real word of the language ("a", "y", "à").  Order is
deterministic: most frequent first (wordfreq's own ranking of the installed data).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from kws_assets.core.speech.languages import normalize_language, primary_subtag

WORDFREQ_SOURCE = "wordfreq"
NUMBER_WORDS_SOURCE = "num2words"
NO_SOURCE = "none"
WORDFREQ_LIST = "best"
"""wordfreq's ``best`` list: its ``large`` data where it has it, else ``small``."""
MAX_WORD_LETTERS = 16
"""Longer tokens are mostly compounds and junk; they never make good 1-s negatives."""
NUMBERS_SPELLED = (*tuple(range(101)), 200, 300, 1000, 1000000)
"""Numbers whose words make the number-word pool (every word 0-100, hundreds, thousand, million)."""

DEFAULT_SCRIPT = "LATIN"
SCRIPTS: dict[str, tuple[str, ...]] = {
    # Unicode character-name prefixes of each language's letters (default: LATIN).
    "ar": ("ARABIC",),
    "fa": ("ARABIC",),
    "ur": ("ARABIC",),
    "bg": ("CYRILLIC",),
    "mk": ("CYRILLIC",),
    "ru": ("CYRILLIC",),
    "uk": ("CYRILLIC",),
    "be": ("CYRILLIC",),
    "kk": ("CYRILLIC",),
    "tg": ("CYRILLIC",),
    "sr": ("CYRILLIC", "LATIN"),
    "el": ("GREEK",),
    "he": ("HEBREW",),
    "hi": ("DEVANAGARI",),
    "bn": ("BENGALI",),
    "ta": ("TAMIL",),
    "te": ("TELUGU",),
    "kn": ("KANNADA",),
    "th": ("THAI",),
    "am": ("ETHIOPIC",),
    "ko": ("HANGUL",),
    "zh": ("CJK",),
    "ja": ("CJK", "HIRAGANA", "KATAKANA"),
}
SINGLE_LETTER_WORDS: dict[str, frozenset[str]] = {
    # One-letter tokens that are words of the language; any other lone letter is a tokenising
    # leftover ("l" of "l'eau", "s" of "it's") and is dropped.
    "en": frozenset("ai"),
    "fr": frozenset({"a", "à", "y"}),
    "es": frozenset("aeouy"),
    "it": frozenset({"a", "e", "o", "è", "i"}),
    "pt": frozenset({"a", "e", "o", "é", "à"}),
    "ca": frozenset({"a", "i", "o", "e"}),
    "nl": frozenset(),
    "de": frozenset(),
    "pl": frozenset({"a", "i", "o", "u", "w", "z"}),
    "cs": frozenset({"a", "i", "k", "o", "s", "u", "v", "z"}),
    "sk": frozenset({"a", "i", "k", "o", "s", "u", "v", "z"}),
    "sv": frozenset({"i", "å", "ö"}),
    "ru": frozenset({"а", "в", "и", "к", "о", "с", "у", "я"}),  # noqa: RUF001 - Cyrillic words
    "uk": frozenset({"а", "в", "і", "з", "й", "у", "я"}),  # noqa: RUF001 - Cyrillic words
}
LATIN_VOWELS = frozenset("aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœąęěőűůų")
"""A Latin-script token without one of these is an abbreviation ("tv", "km", "bzw"), which
espeak-ng spells letter by letter: never a good word."""
ELISION_FRAGMENTS: dict[str, frozenset[str]] = {
    # What wordfreq's tokeniser leaves of an elided word ("qu'il" -> "qu", "dell'anno" -> "dell").
    "fr": frozenset({"qu", "jusqu", "lorsqu", "puisqu", "quoiqu", "presqu", "aujourd"}),
    "it": frozenset({"dell", "all", "nell", "dall", "sull", "coll", "quest", "quell"}),
    "en": frozenset({"ll", "ve", "re"}),
}


class WordListError(ValueError):
    """A word list that cannot be built (a bad count, a missing package)."""


@dataclass(frozen=True)
class WordList:
    """The words of one language and where they came from.

    ``source`` is :data:`WORDFREQ_SOURCE`, :data:`NUMBER_WORDS_SOURCE` (wordfreq lacks the
    language: number words only) or :data:`NO_SOURCE` (neither has it: empty); ``note`` says so
    in words, for logs and the data card."""

    language: str
    source: str
    words: tuple[str, ...]
    note: str = ""


def wordfreq_languages() -> frozenset[str]:
    """Language codes the installed wordfreq wheel has data for (nothing is downloaded)."""
    return frozenset(_wordfreq().available_languages(WORDFREQ_LIST))


def _wordfreq():  # noqa: ANN202 - the wordfreq module
    try:
        import wordfreq
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise WordListError("word lists need the 'wordfreq' package: pip install wordfreq") from exc
    return wordfreq


def _wordfreq_code(language: str) -> str | None:
    """wordfreq's code for ``language``: the normalised tag, else its primary subtag."""
    available = wordfreq_languages()
    tag = normalize_language(language)
    for code in (tag, primary_subtag(tag)):
        if code in available:
            return code
    return None


def in_script(word: str, language: str) -> bool:
    """True when every character of ``word`` is a letter of the language's script (its Unicode
    name starts with one of :data:`SCRIPTS`' prefixes; combining marks count as letters)."""
    prefixes = SCRIPTS.get(primary_subtag(language), (DEFAULT_SCRIPT,))
    for ch in word:
        category = unicodedata.category(ch)
        if not (category.startswith("L") or category == "Mn"):
            return False
        if not unicodedata.name(ch, "").startswith(prefixes):
            return False
    return bool(word)


def is_plain_word(word: str, language: str) -> bool:
    """A lower-case word of the language's script, of 1-:data:`MAX_WORD_LETTERS` letters, a single
    letter only where it is a real word (:data:`SINGLE_LETTER_WORDS`); in Latin script never an
    abbreviation (no vowel) nor an elision fragment (:data:`ELISION_FRAGMENTS`)."""
    if not word or word != word.lower() or len(word) > MAX_WORD_LETTERS:
        return False
    primary = primary_subtag(language)
    if len(word) == 1 and word not in SINGLE_LETTER_WORDS.get(primary, frozenset()):
        return False
    if word in ELISION_FRAGMENTS.get(primary, frozenset()):
        return False
    if not in_script(word, language):
        return False
    latin = SCRIPTS.get(primary, (DEFAULT_SCRIPT,)) == (DEFAULT_SCRIPT,)
    return not latin or len(word) == 1 or not LATIN_VOWELS.isdisjoint(word)


@functools.lru_cache(maxsize=16)
def _ranked_wordfreq(code: str, language: str, count: int) -> tuple[str, ...]:
    """The ``count`` most frequent plain words of ``code``, most frequent first."""
    # Ask for more than needed: 20-30 % of raw tokens are punctuation, digits, foreign script.
    raw_count = count
    while True:
        raw = _wordfreq().top_n_list(code, raw_count, wordlist=WORDFREQ_LIST)
        kept = tuple(dict.fromkeys(unicodedata.normalize("NFC", w.lower()) for w in raw))
        kept = tuple(w for w in kept if is_plain_word(w, language))
        if len(kept) >= count or len(raw) < raw_count:
            return kept[:count]
        raw_count *= 2


@functools.lru_cache(maxsize=16)
def number_words(language: str) -> tuple[str, ...]:
    """The words num2words spells the numbers :data:`NUMBERS_SPELLED` with in ``language``
    (each word once, in order of first use: "zéro", "un", "deux"...); empty where num2words
    does not speak the language."""
    from num2words import CONVERTER_CLASSES, num2words

    tag = normalize_language(language)
    candidates = (tag.replace("-", "_"), primary_subtag(tag))
    code = next((c for c in candidates if c in CONVERTER_CLASSES), None)
    if code is None:
        return ()
    words: dict[str, None] = {}
    for number in NUMBERS_SPELLED:
        try:
            spelled = num2words(number, lang=code)
        except (NotImplementedError, OverflowError):  # pragma: no cover - per-language gaps
            continue
        for token in spelled.replace("-", " ").replace(",", " ").split():
            token = unicodedata.normalize("NFC", token.lower())
            if is_plain_word(token, language):
                words.setdefault(token)
    return tuple(words)


def word_list(language: str, count: int) -> WordList:
    """Up to ``count`` words of ``language``, most frequent first, with their source.

    From wordfreq where it has the language; otherwise the named fallback, number words only
    (:func:`number_words`), and empty with a note where num2words lacks the language too."""
    if count < 0:
        raise WordListError(f"count={count} must be >= 0")
    code = _wordfreq_code(language)
    if code is not None:
        return WordList(language, WORDFREQ_SOURCE, _ranked_wordfreq(code, language, count))
    numbers = number_words(language)
    if numbers:
        return WordList(
            language,
            NUMBER_WORDS_SOURCE,
            numbers[:count],
            note=f"wordfreq has no word list for {language!r}: number words only "
            f"({len(numbers)} from num2words)",
        )
    return WordList(
        language,
        NO_SOURCE,
        (),
        note=f"neither wordfreq nor num2words has words for {language!r}: no "
        f"synthetic _unknown_ words (add a corpus with non-keyword speech)",
    )


def top_words(language: str, count: int, exclude: Iterable[str] = ()) -> list[str]:
    """The ``count`` most frequent plain words of ``language`` not in ``exclude`` (compared
    lower-cased), most frequent first; number words where wordfreq lacks the language
    (:func:`word_list` says which)."""
    skip = {unicodedata.normalize("NFC", w.lower()) for w in exclude}
    found: list[str] = []
    asked = count + len(skip)
    while True:
        listed = word_list(language, asked).words
        found = [w for w in listed if w not in skip][:count]
        if len(found) >= count or len(listed) < asked:
            return found
        asked *= 2
