"""The ``_unknown_`` vocabulary of a keyword set, in any language, behind one interface.

:func:`negative_vocabulary` gives, per keyword, the words that sound close to it (hard negatives,
most common first) and a pool of other common words; :func:`sentence_words` gives the words the
running-speech windows are made of.  Two sources stand behind them:

* **English** (or any language with ``negatives.lexicon`` set): the CMU pronouncing dictionary
  pocketsphinx ships and its language model's word frequencies (:mod:`.lexicon`) — exactly the
  words this project chose before other languages were supported;
* **every other language**: the language's frequency-ranked words (:mod:`.word_lists`, wordfreq)
  pronounced by its espeak-ng voice (:mod:`.espeak_lexicon`).  Where wordfreq lacks the language
  the words are the number words of num2words only, and the vocabulary's ``note`` says so.

A keyword phrase ("hey jarvis") is in no dictionary: its hard negatives are its near misses
(:func:`phrase_variants`: each word alone, one word swapped for a phoneme neighbour of that word or
a common word, the words in another order), built from each word's own neighbours in either source.

Neither source ever yields a keyword, a keyword's homophone, or a word espeak-ng pronounces like
a keyword.  The other words are shared out among the keywords (:func:`share_of`) so that
rendering one keyword's partition at a time renders each word once.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kws_assets.core.speech import espeak_lexicon, lexicon, tts
from kws_assets.core.speech.languages import is_english

if TYPE_CHECKING:  # the settings section only; core code never needs the whole config
    from kws_assets.settings import NegativeSettings

CMU_SOURCE = "cmudict"
"""Words and pronunciations from the CMU-format dictionary (pocketsphinx's en-us by default)."""
ESPEAK_SOURCE_PREFIX = "espeak-ng+"
"""Pronunciations by espeak-ng, words from the named word list (``espeak-ng+wordfreq``)."""
ENGLISH_VOICE = "en-us"
COMMON_POOL = 5000
"""Other words and sentence words are drawn from this many most frequent words (both paths)."""
STRESS_MARKS = re.compile(r"[',%=_:]")
PHRASE_SWAP_POOL = 50
"""Common words a phrase's words are swapped for ("hey <word>", "<word> jarvis") are the first of
this many drawn from the most common words (one per position)."""


@dataclass(frozen=True)
class NegativeVocabulary:
    """The ``_unknown_`` words of one keyword set.

    ``neighbours[keyword]`` are the keyword's phoneme neighbours (at most
    ``negatives.neighbours_per_keyword``, closest and most common first), or a phrase's near
    misses (:func:`phrase_variants`); ``other_words`` the
    other common words; ``forbidden`` the keywords and every word that sounds like one.
    ``source`` is :data:`CMU_SOURCE` or ``espeak-ng+<word list>``; ``note`` explains a fallback
    (number words only, or nothing)."""

    language: str
    source: str
    keywords: tuple[str, ...]
    neighbours: dict[str, tuple[str, ...]] = field(hash=False)
    other_words: tuple[str, ...]
    forbidden: frozenset[str]
    note: str = ""

    def words_for(self, keyword: str) -> list[str]:
        """One keyword partition's ``_unknown_`` words: its neighbours, then its share of the
        other words (:func:`share_of`) that are not among them."""
        key = keyword.lower()
        chosen = list(self.neighbours.get(key, ()))
        index = self.keywords.index(key) if key in self.keywords else 0
        return chosen + [
            w
            for w in self.other_words
            if share_of(w, len(self.keywords)) == index and w not in chosen
        ]


def share_of(word: str, n_keywords: int) -> int:
    """Which keyword's partition renders an 'other' word (a stable hash)."""
    return int(hashlib.sha256(f"share|{word}".encode()).hexdigest()[:8], 16) % max(n_keywords, 1)


def uses_pronouncing_dictionary(language: str, negatives: NegativeSettings) -> bool:
    """True where the CMU-format dictionary serves (English, or ``negatives.lexicon`` set)."""
    return bool(negatives.lexicon) or is_english(language)


def negative_vocabulary(
    language: str, keywords: Sequence[str], negatives: NegativeSettings
) -> NegativeVocabulary:
    """Per keyword its phoneme neighbours, plus the other common words, for ``language``
    (cached per process: every keyword partition asks for the same set)."""
    return _vocabulary(language, tuple(k.lower() for k in keywords), negatives)


@functools.lru_cache(maxsize=16)
def _vocabulary(
    language: str, keywords: tuple[str, ...], negatives: NegativeSettings
) -> NegativeVocabulary:
    if uses_pronouncing_dictionary(language, negatives):
        vocabulary = _cmu_vocabulary(language, keywords, negatives)
    else:
        vocabulary = _espeak_vocabulary(language, keywords, negatives)
    return replace(vocabulary, neighbours=_claimed_once(vocabulary.neighbours, keywords))


def _claimed_once(
    neighbours: dict[str, tuple[str, ...]], keywords: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """Each phrase's variants, without those an earlier phrase already has ("hey" alone is a
    near miss of "hey jarvis" and of "hey mycroft"): each keyword partition renders its own
    ``_unknown_`` words, and the same text drawn twice would be the same clip twice."""
    claimed: set[str] = set()
    out = dict(neighbours)
    for keyword in keywords:
        if is_phrase(keyword):
            out[keyword] = tuple(t for t in neighbours[keyword] if t not in claimed)
            claimed |= set(out[keyword])
    return out


def _plain_phonemes(word: str, voice: str) -> str:
    return STRESS_MARKS.sub("", tts.phonemize(word, voice=voice))


def _cmu_vocabulary(
    language: str, keywords: tuple[str, ...], negatives: NegativeSettings
) -> NegativeVocabulary:
    """The dictionary path: neighbours that do not start with the keyword's pronunciation and
    that espeak-ng does not pronounce like a keyword; other words from the 5000 most common."""
    lex = lexicon.load_lexicon(negatives.lexicon or None)
    forbidden = set(keywords)
    for k in keywords:
        forbidden |= lexicon.homophones(k, lex)
    voice = ENGLISH_VOICE if is_english(language) else language
    keyword_sounds = {_plain_phonemes(k, voice) for k in keywords}

    def sounds_like_a_keyword(word: str) -> bool:
        try:
            return _plain_phonemes(word, voice) in keyword_sounds
        except tts.TtsError:
            return True

    def closest(count: int, exclude: set[str], word: str) -> list[str]:
        prons = lex.get(word)
        chosen: list[str] = []
        for n in lexicon.phoneme_neighbours(
            word,
            lex,
            negatives.min_phoneme_distance,
            negatives.max_phoneme_distance,
            exclude=exclude,
        ):
            if len(chosen) >= count:
                break
            if any(n.pronunciation[: len(p)] == p for p in prons) or sounds_like_a_keyword(n.word):
                continue
            chosen.append(n.word)
        return chosen

    others = lexicon.common_words(
        lex, negatives.other_words, exclude=forbidden, salt=f"negatives|{negatives.seed}"
    )
    others = [w for w in others if not sounds_like_a_keyword(w)]
    swaps = (
        lexicon.common_words(
            lex, PHRASE_SWAP_POOL, exclude=forbidden, salt=f"phrase-swaps|{negatives.seed}"
        )
        if any(is_phrase(k) for k in keywords)
        else []
    )
    neighbours: dict[str, tuple[str, ...]] = {}
    per_word = phrase_neighbours_per_word(negatives)
    for keyword in keywords:
        if is_phrase(keyword):
            neighbours[keyword] = phrase_variants(
                keyword,
                functools.partial(closest, per_word, forbidden | set(keyword.split())),
                swaps,
                forbidden,
            )
        else:
            neighbours[keyword] = tuple(
                closest(negatives.neighbours_per_keyword, forbidden, keyword)
            )
    return NegativeVocabulary(
        language, CMU_SOURCE, keywords, neighbours, tuple(others), frozenset(forbidden)
    )


def _espeak_forbidden(keywords: tuple[str, ...], lex: espeak_lexicon.SpokenLexicon) -> set[str]:
    """Keywords and every lexicon word espeak-ng pronounces exactly like one."""
    forbidden = set(keywords)
    for k in keywords:
        forbidden |= espeak_lexicon.spoken_homophones(k, lex)
    return forbidden


def _espeak_vocabulary(
    language: str, keywords: tuple[str, ...], negatives: NegativeSettings
) -> NegativeVocabulary:
    """The espeak-ng path: neighbours among the language's 20k most frequent words, other words
    from the 5000 most frequent."""
    lex = espeak_lexicon.spoken_lexicon(language)
    forbidden = _espeak_forbidden(keywords, lex)

    def closest(count: int, exclude: set[str], word: str) -> list[str]:
        return [
            n.word
            for n in espeak_lexicon.spoken_neighbours(
                word,
                lex,
                negatives.min_phoneme_distance,
                negatives.max_phoneme_distance,
                exclude=exclude,
                at_least=count,
            )[:count]
        ]

    swaps = _common_spoken(lex, forbidden, PHRASE_SWAP_POOL, f"phrase-swaps|{negatives.seed}")
    per_word = phrase_neighbours_per_word(negatives)
    neighbours = {
        k: phrase_variants(
            k,
            functools.partial(closest, per_word, forbidden | set(k.split())),
            swaps,
            forbidden,
        )
        if is_phrase(k)
        else tuple(closest(negatives.neighbours_per_keyword, forbidden, k))
        for k in keywords
    }
    others = _common_spoken(lex, forbidden, negatives.other_words, f"negatives|{negatives.seed}")
    return NegativeVocabulary(
        language,
        ESPEAK_SOURCE_PREFIX + lex.source,
        keywords,
        neighbours,
        tuple(others),
        frozenset(forbidden),
        note=lex.note,
    )


def is_phrase(keyword: str) -> bool:
    """True for a keyword of several words ("hey jarvis")."""
    return len(keyword.split()) > 1


def phrase_neighbours_per_word(negatives: NegativeSettings) -> int:
    """Phoneme neighbours swapped in for each word of a phrase: half a word keyword's share (a
    two-word phrase gets as many as one word keyword), at least one."""
    return max(1, negatives.neighbours_per_keyword // 2)


def phrase_variants(
    phrase: str,
    neighbours_of: Callable[[str], Sequence[str]],
    common_words: Sequence[str],
    forbidden: Collection[str] = (),
) -> tuple[str, ...]:
    """The near misses of a keyword phrase, the ``_unknown_`` texts that fire a phrase detector
    in a living room: the phrase with one word missing (for two words, each word alone), each
    word alone, the phrase with one word swapped for a phoneme neighbour of that word
    (``neighbours_of``) and for a common word (drawn from ``common_words`` by the phrase, a
    different one per position), and the words in another order.  Never the phrase
    itself or a text in ``forbidden``; deterministic, in that order (the first ones are what
    the running-speech windows embed)."""
    words = phrase.split()
    if len(words) < 2:
        return ()
    texts = [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    texts += words
    for i, word in enumerate(words):
        texts += [" ".join([*words[:i], n, *words[i + 1 :]]) for n in neighbours_of(word)]
    pool = lexicon.stable_order((w for w in common_words if w not in words), phrase)
    for i in range(len(words)):
        if i < len(pool):
            texts.append(" ".join([*words[:i], pool[i], *words[i + 1 :]]))
    texts.append(" ".join(reversed(words)))
    texts.append(" ".join(words[1:] + words[:1]))
    skip = {phrase, *forbidden}
    return tuple(t for t in dict.fromkeys(texts) if t not in skip)


def _common_spoken(
    lex: espeak_lexicon.SpokenLexicon, forbidden: set[str], count: int, salt: str
) -> list[str]:
    """``count`` words drawn by ``salt`` from the :data:`COMMON_POOL` most frequent lexicon words
    (the pool is taken before ``forbidden`` is removed, as :func:`.lexicon.common_words` does;
    :func:`.lexicon.stable_pick`)."""
    return lexicon.stable_pick(lex.words[:COMMON_POOL], count, forbidden, salt)


def sentence_words(
    language: str, keywords: Sequence[str], negatives: NegativeSettings, count: int, salt: str
) -> list[str]:
    """``count`` common words that are neither keywords nor their homophones, drawn by ``salt``
    and ``negatives.seed``: the words running-speech ``_unknown_`` windows are made of."""
    keys = tuple(k.lower() for k in keywords)
    salted = f"{salt}|{negatives.seed}"
    if uses_pronouncing_dictionary(language, negatives):
        lex = lexicon.load_lexicon(negatives.lexicon or None)
        forbidden = set(keys)
        for keyword in keys:
            forbidden |= lexicon.homophones(keyword, lex)
        return lexicon.common_words(lex, count, exclude=forbidden, salt=salted)
    spoken = espeak_lexicon.spoken_lexicon(language)
    return _common_spoken(spoken, _espeak_forbidden(keys, spoken), count, salted)
