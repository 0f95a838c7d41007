"""A pronouncing lexicon of any language, made by espeak-ng from a frequency-ranked word list.

English has the CMU dictionary (:mod:`.lexicon`); every other language gets its pronunciations
from the voice that speaks it: the :mod:`.word_lists` words, phonemized once by espeak-ng
(:func:`kws_assets.core.speech.tts.phonemize`) and cached in memory per process.  20 000 words
take about a second (espeak's text-to-phoneme step is a dictionary lookup plus its letter rules).

Symbols are espeak's ASCII phoneme mnemonics, asked for with a separator (``"z_e_r_'o"``), so
multi-letter phonemes (``tS``, ``A~``, ``aI``, ``**``) stay one symbol.  Stress and syllable marks
(``' , % = -``) are dropped (neighbours are about sounds, not stress), as are espeak's pause
phonemes (``_!`` before a French vowel, ``_|`` the German glottal onset).  Words espeak reads as a
loan in another language (its output switches language, ``(en)...(fr)``) or as several words
(abbreviations, Roman numerals) are left out of the lexicon.

Neighbours are words 1-2 phoneme edits away, found with the same vectorised Levenshtein as the
English path (:func:`kws_assets.core.speech.lexicon.distances_to`), most frequent first.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from kws_assets.core.speech import lexicon, tts, word_lists
from kws_assets.core.speech.languages import alignment_voice

DEFAULT_SIZE = 20_000
"""Words phonemized per language: ~1 s of espeak-ng, covers the everyday vocabulary."""
PHONEME_SEPARATOR = "_"
STRESS_AND_SYLLABLE_MARKS = "',%=-"
PAUSE_SYMBOLS = frozenset({"", "!", "|", "||"})
MODIFIER_SYMBOLS = frozenset({";", ":"})
"""espeak sometimes emits a palatalisation/length mark as its own symbol: it joins the previous."""
LANGUAGE_SWITCH = "("
"""espeak marks a word it reads in another language's voice as ``(en)...(fr)``."""


class SpokenLexiconError(ValueError):
    """A lexicon that cannot be built (no espeak-ng voice for the language)."""


def phoneme_symbols(mnemonics: str) -> tuple[str, ...]:
    """The phoneme symbols of espeak output made with :data:`PHONEME_SEPARATOR` (words separated
    by spaces are concatenated): ``"z_e_r_'o"`` -> ``("z", "e", "r", "o")``."""
    symbols: list[str] = []
    for word in mnemonics.split():
        for token in word.split(PHONEME_SEPARATOR):
            token = token.strip(STRESS_AND_SYLLABLE_MARKS)
            if token in PAUSE_SYMBOLS:
                continue
            if token in MODIFIER_SYMBOLS and symbols:
                symbols[-1] += token
                continue
            symbols.append(token)
    return tuple(symbols)


def pronounce(text: str, voice: str) -> tuple[str, ...]:
    """espeak-ng's phoneme symbols for ``text`` (a word or a phrase, words concatenated)."""
    return phoneme_symbols(tts.phonemize(text, voice=voice, separator=PHONEME_SEPARATOR))


def _lexicon_entry(word: str, voice: str) -> tuple[str, ...] | None:
    """The word's symbols, or None where espeak reads it as a loan or as several words."""
    try:
        raw = tts.phonemize(word, voice=voice, separator=PHONEME_SEPARATOR)
    except tts.TtsError:
        return None
    if LANGUAGE_SWITCH in raw or len(raw.split()) != 1:
        return None
    return phoneme_symbols(raw) or None


@dataclass(frozen=True, eq=False)
class SpokenLexicon:
    """Words of one language (most frequent first) with espeak-ng's pronunciation of each.

    ``source`` and ``note`` come from the word list (:class:`.word_lists.WordList`);
    ``phonemize_s`` is how long espeak took.  Compared and hashed by identity (cached index)."""

    language: str
    voice: str
    source: str
    words: tuple[str, ...]
    pronunciations: tuple[tuple[str, ...], ...]
    phonemize_s: float = 0.0
    note: str = ""

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self._rank

    @functools.cached_property
    def _rank(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def rank(self, word: str) -> int:
        """0 for the most frequent word; words not in the lexicon rank after all others."""
        return self._rank.get(word.lower(), len(self.words))

    def get(self, word: str) -> tuple[str, ...]:
        """The word's pronunciation in the lexicon; espeak's, computed now, for any other word."""
        index = self._rank.get(word.lower())
        if index is not None:
            return self.pronunciations[index]
        return pronounce(word.lower(), self.voice)


@functools.lru_cache(maxsize=8)
def spoken_lexicon(
    language: str, size: int = DEFAULT_SIZE, voice: str | None = None
) -> SpokenLexicon:
    """The ``size`` most frequent words of ``language`` (:func:`.word_lists.word_list`) with their
    espeak-ng pronunciations, by ``voice`` (default: the language's best espeak-ng voice).  Cached
    per process.  Raises :class:`SpokenLexiconError` where espeak-ng has no voice for it."""
    try:
        voice = voice or alignment_voice(language)
    except ValueError as exc:
        raise SpokenLexiconError(
            f"no espeak-ng voice for language {language!r}: set "
            "tts.keyword_languages or pick a language espeak-ng speaks"
        ) from exc
    listed = word_lists.word_list(language, size)
    started = time.perf_counter()
    words, prons = [], []
    for word in listed.words:
        pron = _lexicon_entry(word, voice)
        if pron:
            words.append(word)
            prons.append(pron)
    return SpokenLexicon(
        language,
        voice,
        listed.source,
        tuple(words),
        tuple(prons),
        phonemize_s=time.perf_counter() - started,
        note=listed.note,
    )


@functools.lru_cache(maxsize=8)
def _indexed(lex: SpokenLexicon) -> tuple[dict[str, int], dict[int, tuple[list[int], np.ndarray]]]:
    """Symbol ids, and per phoneme count the word indices and their ``[n, length]`` id matrix."""
    symbols: dict[str, int] = {}
    groups: dict[int, tuple[list[int], list[list[int]]]] = {}
    for index, pron in enumerate(lex.pronunciations):
        ids = [symbols.setdefault(p, len(symbols)) for p in pron]
        members, rows = groups.setdefault(len(pron), ([], []))
        members.append(index)
        rows.append(ids)
    return symbols, {
        n: (members, np.asarray(rows, dtype=np.int32)) for n, (members, rows) in groups.items()
    }


def extends(pronunciation: Sequence[str], keyword: Sequence[str]) -> bool:
    """True when ``pronunciation`` is the keyword's with sounds added before or after it (it
    starts or ends with the keyword's symbols): "sixième" merely extends "six"."""
    n = len(keyword)
    if not n or len(pronunciation) <= n:
        return False
    return tuple(pronunciation[:n]) == tuple(keyword) or tuple(pronunciation[-n:]) == tuple(keyword)


def spoken_neighbours(
    keyword: str,
    lex: SpokenLexicon,
    min_distance: int = 1,
    max_distance: int = 2,
    exclude: Iterable[str] = (),
    at_least: int = 0,
) -> list[lexicon.Neighbour]:
    """Lexicon words ``min_distance``..``max_distance`` phoneme edits from espeak's pronunciation
    of ``keyword``, sorted by distance then frequency.

    As in :func:`.lexicon.phoneme_neighbours`, the distance is capped at half the keyword's phoneme
    count (at least ``min_distance``), but where that finds fewer than ``at_least`` words the
    search goes on up to ``max_distance`` (German "zwei", ``ts v aI``, has one word at distance 1
    that does not merely extend it).  Homophones (distance 0), the words in ``exclude`` and words
    that merely extend the keyword (:func:`extends`) are left out."""
    query_pron = lex.get(keyword)
    if not query_pron:
        return []
    skip = {keyword.lower(), *(w.lower() for w in exclude)}
    capped = max(min_distance, min(max_distance, len(query_pron) // 2))
    found = _within(query_pron, lex, min_distance, capped, skip)
    if len(found) < at_least and capped < max_distance:
        found = _within(query_pron, lex, min_distance, max_distance, skip)
    return found


def _within(
    query_pron: tuple[str, ...],
    lex: SpokenLexicon,
    min_distance: int,
    max_distance: int,
    skip: set[str],
) -> list[lexicon.Neighbour]:
    """Words at ``min_distance``..``max_distance`` from ``query_pron``, not in ``skip``, not
    extending it; by distance, then frequency."""
    symbols, groups = _indexed(lex)
    query = [symbols.get(p, -1) for p in query_pron]
    found: list[lexicon.Neighbour] = []
    for length in range(max(1, len(query) - max_distance), len(query) + max_distance + 1):
        if length not in groups:
            continue
        members, matrix = groups[length]
        distances = lexicon.distances_to(query, matrix)
        for row in np.flatnonzero((distances >= min_distance) & (distances <= max_distance)):
            index = members[int(row)]
            word, pron = lex.words[index], lex.pronunciations[index]
            if word in skip or extends(pron, query_pron):
                continue
            found.append(lexicon.Neighbour(word, int(distances[row]), pron))
    return sorted(found, key=lambda n: (n.distance, lex.rank(n.word), n.word))


def spoken_homophones(word: str, lex: SpokenLexicon) -> set[str]:
    """Other lexicon words espeak-ng pronounces exactly like ``word``."""
    pron = lex.get(word)
    symbols, groups = _indexed(lex)
    if not pron or len(pron) not in groups or any(p not in symbols for p in pron):
        return set()
    members, matrix = groups[len(pron)]
    same = np.flatnonzero((matrix == np.array([symbols[p] for p in pron])).all(axis=1))
    return {lex.words[members[int(i)]] for i in same} - {word.lower()}
