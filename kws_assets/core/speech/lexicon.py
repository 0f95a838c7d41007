"""A pronouncing dictionary and the words that sound close to a keyword.

Hard negatives make a keyword model listen to the whole word: "yet" and "yes" differ in one
phoneme.  :func:`phoneme_neighbours` finds dictionary words at a phoneme edit distance of 1-2 from
a keyword (homophones, at distance 0, are never negatives: "know" *is* "no" to the ear).

Neighbours and other negative words are ranked by how common they are: unigram log-probabilities
from the en-us language model pocketsphinx also ships (:func:`unigram_log_probs`), so "guess"
and "yet" come before "bess" and "hesse".

The dictionary is CMU-format text (``word PH ON EMES`` per line, alternates as ``word(2)``); the
default is the en-us dictionary that the ``pocketsphinx`` wheel ships (134k words, ARPAbet
without stress digits), so nothing is downloaded.  Edit distances are computed for all words of
one phoneme count at once with numpy (a vectorised Levenshtein over the phoneme-id matrix).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PLAIN_WORD = re.compile(r"^[a-z]+$")
ALTERNATE_SUFFIX = re.compile(r"\(\d+\)$")
DROP_DIGITS = str.maketrans("", "", "0123456789")
"""Stress digits (``EH1``) are dropped: neighbours are about sounds, not stress."""
MIN_WORD_LETTERS = 2
MAX_WORD_LETTERS = 10


UNSEEN_LOG_PROB = -(2**29)
"""pocketsphinx's log-probability of a word its language model does not know."""


def default_dictionary_path() -> Path:
    """The en-us dictionary inside the installed ``pocketsphinx`` package."""
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"


@dataclass(frozen=True, eq=False)
class Lexicon:
    """Words and their pronunciations (tuples of phoneme symbols); a word may have several.

    Compared and hashed by identity, so the per-lexicon index can be cached."""

    pronunciations: dict[str, tuple[tuple[str, ...], ...]]

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.pronunciations

    def __len__(self) -> int:
        return len(self.pronunciations)

    def get(self, word: str) -> tuple[tuple[str, ...], ...]:
        return self.pronunciations.get(word.lower(), ())

    def words(self) -> list[str]:
        return sorted(self.pronunciations)


def parse_dictionary(lines: Iterable[str]) -> Lexicon:
    """Parse CMU-format lines; stress digits are dropped, ``;;;`` comments and blank lines
    skipped."""
    found: dict[str, list[tuple[str, ...]]] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith(";;;"):
            continue
        head, _, rest = line.replace("\t", " ").partition(" ")
        phones = tuple(rest.translate(DROP_DIGITS).upper().split())
        if not phones:
            continue
        word = ALTERNATE_SUFFIX.sub("", head.lower())
        prons = found.setdefault(word, [])
        if phones not in prons:
            prons.append(phones)
    return Lexicon({w: tuple(p) for w, p in found.items()})


@functools.lru_cache(maxsize=4)
def load_lexicon(path: str | os.PathLike[str] | None = None) -> Lexicon:
    """A pronouncing dictionary file (default: pocketsphinx's en-us dictionary), cached."""
    path = Path(path) if path else default_dictionary_path()
    if not path.is_file():
        raise FileNotFoundError(f"pronouncing dictionary {path} not found")
    with open(path, encoding="utf-8", errors="replace") as fh:
        return parse_dictionary(fh)


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two phoneme sequences (unit costs)."""
    row = list(range(len(b) + 1))
    for i, pa in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, pb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (pa != pb))
    return row[-1]


def distances_to(query: Sequence[int], candidates: np.ndarray) -> np.ndarray:
    """Levenshtein distance from ``query`` to every row of ``candidates`` ``[n, length]``."""
    n, length = candidates.shape
    row = np.tile(np.arange(length + 1), (n, 1))
    for i, q in enumerate(query, start=1):
        new = np.empty_like(row)
        new[:, 0] = i
        substitution = row[:, :-1] + (candidates != q)
        deletion = row[:, 1:] + 1
        best = np.minimum(substitution, deletion)
        for j in range(1, length + 1):  # insertions chain along the row
            new[:, j] = np.minimum(best[:, j - 1], new[:, j - 1] + 1)
        row = new
    return row[:, -1]


@dataclass(frozen=True)
class Neighbour:
    word: str
    distance: int
    pronunciation: tuple[str, ...]


@functools.lru_cache(maxsize=4)
def _indexed(
    lexicon: Lexicon,
) -> tuple[dict[str, int], dict[int, tuple[list[str], np.ndarray, list]]]:
    """Plain words grouped by phoneme count: (symbol ids, {length: (words, id matrix, prons)})."""
    entries = [
        (word, pron)
        for word, prons in lexicon.pronunciations.items()
        if MIN_WORD_LETTERS <= len(word) <= MAX_WORD_LETTERS and PLAIN_WORD.match(word)
        for pron in prons
    ]
    names, ids = np.unique(np.array([p for _, pron in entries for p in pron]), return_inverse=True)
    symbols = {str(name): i for i, name in enumerate(names)}
    ids = ids.astype(np.int32)
    groups: dict[int, tuple[list[str], list[int], list]] = {}
    offset = 0
    for word, pron in entries:
        words, starts, kept = groups.setdefault(len(pron), ([], [], []))
        words.append(word)
        starts.append(offset)
        kept.append(pron)
        offset += len(pron)
    return symbols, {
        length: (words, ids[np.asarray(starts)[:, None] + np.arange(length)], kept)
        for length, (words, starts, kept) in groups.items()
    }


def phoneme_neighbours(
    keyword: str,
    lexicon: Lexicon,
    min_distance: int = 1,
    max_distance: int = 2,
    exclude: Iterable[str] = (),
) -> list[Neighbour]:
    """Dictionary words whose pronunciation is ``min_distance``..``max_distance`` phoneme edits
    from the keyword's (the smallest distance over all pronunciation pairs).

    The distance is capped at half the keyword's phoneme count (at least ``min_distance``): two
    edits of "no" (N OW) reach "the".  Words with a pronunciation at distance 0 (homophones) are
    left out, as are the words in ``exclude`` (e.g. the other keywords).  Sorted by distance,
    then from most to least common.  A keyword the
    dictionary does not know has no neighbours.
    """
    keyword = keyword.lower()
    prons = lexicon.get(keyword)
    if not prons:
        return []
    # Two edits turn any two-phoneme word into any other: cap the distance at half the length.
    max_distance = max(min_distance, min(max_distance, max(len(p) for p in prons) // 2))
    symbols, groups = _indexed(lexicon)
    best: dict[str, tuple[int, tuple[str, ...]]] = {}
    for pron in prons:
        query = [symbols.get(p, -1) for p in pron]
        for length in range(max(1, len(pron) - max_distance), len(pron) + max_distance + 1):
            if length not in groups:
                continue
            words, matrix, kept = groups[length]
            distances = distances_to(query, matrix)
            for index in np.flatnonzero(distances <= max_distance):
                word, distance = words[index], int(distances[index])
                if word not in best or distance < best[word][0]:
                    best[word] = (distance, kept[index])
    skip = {keyword, *(w.lower() for w in exclude)}
    found = [
        Neighbour(w, d, p)
        for w, (d, p) in best.items()
        if w not in skip and min_distance <= d <= max_distance
    ]
    probs = unigram_log_probs(n.word for n in found)
    return sorted(found, key=lambda n: (n.distance, -probs[n.word], n.word))


def stable_order(words: Iterable[str], salt: str) -> list[str]:
    """Words in a deterministic pseudo-random order (sha256 of salt + word)."""
    return sorted(words, key=lambda w: hashlib.sha256(f"{salt}|{w}".encode()).hexdigest())


def homophones(word: str, lexicon: Lexicon) -> set[str]:
    """Other plain dictionary words sharing a pronunciation with ``word``."""
    symbols, groups = _indexed(lexicon)
    found: set[str] = set()
    for pron in lexicon.get(word):
        if len(pron) not in groups or any(p not in symbols for p in pron):
            continue
        words, matrix, _ = groups[len(pron)]
        same = np.flatnonzero((matrix == np.array([symbols[p] for p in pron])).all(axis=1))
        found |= {words[i] for i in same}
    found.discard(word.lower())
    return found


def default_language_model_path() -> Path:
    """The en-us n-gram model inside the installed ``pocketsphinx`` package."""
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us" / "en-us.lm.bin"


@functools.lru_cache(maxsize=2)
def _language_model(path: str):  # noqa: ANN202 - a pocketsphinx.NGramModel
    import pocketsphinx

    return pocketsphinx.NGramModel.readfile(path)


def unigram_log_probs(
    words: Iterable[str], model_path: str | os.PathLike[str] | None = None
) -> dict[str, int]:
    """pocketsphinx's unigram log-probability (its integer log base) of each word; words the
    model does not know get ``UNSEEN_LOG_PROB``.  Larger = more common."""
    path = str(model_path or default_language_model_path())
    model = _language_model(path)
    return {w: int(model.prob([w])) for w in words}


def by_commonness(words: Iterable[str], salt: str = "") -> list[str]:
    """Words from most to least common (unigram probability); ties in a stable hashed order."""
    words = list(dict.fromkeys(words))
    probs = unigram_log_probs(words)
    order = {w: i for i, w in enumerate(stable_order(words, salt))}
    return sorted(words, key=lambda w: (-probs[w], order[w]))


@functools.lru_cache(maxsize=4)
def _common_pool(lexicon: Lexicon, pool_size: int) -> tuple[str, ...]:
    plain = [
        w
        for w in lexicon.pronunciations
        if PLAIN_WORD.match(w) and MIN_WORD_LETTERS <= len(w) <= MAX_WORD_LETTERS
    ]
    probs = unigram_log_probs(plain)
    known = (w for w in plain if probs[w] > UNSEEN_LOG_PROB)
    return tuple(sorted(known, key=lambda w: (-probs[w], w))[:pool_size])


def common_words(
    lexicon: Lexicon, count: int, exclude: Iterable[str] = (), pool_size: int = 5000, salt: str = ""
) -> list[str]:
    """``count`` words drawn (deterministically, by ``salt``) from the ``pool_size`` most common
    plain dictionary words (the pool is taken before ``exclude`` is applied)."""
    return stable_pick(_common_pool(lexicon, pool_size), count, {w.lower() for w in exclude}, salt)


def stable_pick(pool: Iterable[str], count: int, skip: Collection[str], salt: str) -> list[str]:
    """The first ``count`` words of ``pool`` in :func:`stable_order`, each word of ``skip``
    replaced in place by the next word past ``count`` that is not in ``skip``.

    The same words as dropping ``skip`` before taking ``count``, but each keeps its position when
    ``skip`` changes: a keyword list with one keyword swapped moves only the slots of the words it
    frees or forbids, so whatever is drawn from the list by position (sentences of running speech)
    stays the same, and its renders stay cached."""
    ordered = stable_order(pool, salt)
    substitutes = (w for w in ordered[count:] if w not in skip)
    picked = []
    for word in ordered[:count]:
        if word in skip:
            word = next(substitutes, "")
        if word:  # a small pool may run out of substitutes: the slot stays empty
            picked.append(word)
    return picked
