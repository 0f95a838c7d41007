"""_unknown_ vocabulary in every language: CMU path for English (unchanged), espeak-ng elsewhere."""

from __future__ import annotations

import hashlib
import itertools
import re

import pytest

from kws_assets.core.dataset import synthesis
from kws_assets.core.speech import espeak_lexicon as E
from kws_assets.core.speech import lexicon, tts
from kws_assets.core.speech import negatives as N
from kws_assets.settings import NegativeSettings

NUMBER_KEYWORDS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "fr": ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"],
    "es": ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"],
    "de": ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"],
}
SETTINGS = NegativeSettings(neighbours_per_keyword=6, other_words=40)


# --- the English path as it was before this module (commit 0e6446c), the oracle ----------------
_OLD_STRESS = re.compile(r"[',%=_:]")


def _old_negative_words(keyword, all_keywords, negatives, language="en"):
    lex = lexicon.load_lexicon(negatives.lexicon or None)
    keywords = [k.lower() for k in all_keywords]
    forbidden = set(keywords)
    for k in keywords:
        forbidden |= lexicon.homophones(k, lex)
    voice = "en-us"
    plain = lambda w: _OLD_STRESS.sub("", tts.phonemize(w, voice=voice))  # noqa: E731 - a one-line local helper
    keyword_sounds = {plain(k) for k in keywords}

    def sounds_like_a_keyword(word):
        try:
            return plain(word) in keyword_sounds
        except tts.TtsError:
            return True

    prons = lex.get(keyword)
    chosen = []
    for n in lexicon.phoneme_neighbours(
        keyword,
        lex,
        negatives.min_phoneme_distance,
        negatives.max_phoneme_distance,
        exclude=forbidden,
    ):
        if len(chosen) >= negatives.neighbours_per_keyword:
            break
        if any(n.pronunciation[: len(p)] == p for p in prons) or sounds_like_a_keyword(n.word):
            continue
        chosen.append(n.word)
    others = lexicon.common_words(
        lex, negatives.other_words, exclude=forbidden, salt=f"negatives|{negatives.seed}"
    )
    index = keywords.index(keyword.lower()) if keyword.lower() in keywords else 0
    share = [
        w
        for w in others
        if int(hashlib.sha256(f"share|{w}".encode()).hexdigest()[:8], 16) % len(keywords) == index
        and w not in chosen
        and not sounds_like_a_keyword(w)
    ]
    return chosen + share


def _old_sentence_vocabulary(all_keywords, negatives, count, salt):
    lex = lexicon.load_lexicon(negatives.lexicon or None)
    forbidden = {k.lower() for k in all_keywords}
    for keyword in all_keywords:
        forbidden |= lexicon.homophones(keyword, lex)
    return lexicon.common_words(lex, count, exclude=forbidden, salt=f"{salt}|{negatives.seed}")


@pytest.mark.parametrize("keywords", [["yes", "no", "stop"], NUMBER_KEYWORDS["en"]])
def test_english_unchanged(keywords: list[str]) -> None:
    settings = NegativeSettings(neighbours_per_keyword=4, other_words=30, seed=3)
    for keyword in keywords:
        old = _old_negative_words(keyword, keywords, settings)
        assert synthesis.negative_words(keyword, keywords, settings, "en") == old
        assert synthesis.negative_words(keyword, keywords, settings, "en-GB") == old
    assert synthesis.sentence_vocabulary(
        keywords, settings, "en", 200, salt="s"
    ) == _old_sentence_vocabulary(keywords, settings, 200, "s")
    assert N.negative_vocabulary("en", keywords, settings).source == N.CMU_SOURCE


@pytest.mark.parametrize("language", sorted(NUMBER_KEYWORDS))
def test_number_keywords_get_neighbours_in_every_language(language: str) -> None:
    keywords = NUMBER_KEYWORDS[language]
    vocab = N.negative_vocabulary(language, keywords, SETTINGS)
    expected = N.CMU_SOURCE if language == "en" else "espeak-ng+wordfreq"
    assert vocab.source == expected and vocab.note == ""
    for keyword in keywords:
        found = vocab.neighbours[keyword]
        assert 3 <= len(found) <= SETTINGS.neighbours_per_keyword, (keyword, found)
        assert not set(found) & vocab.forbidden
    assert len(vocab.other_words) >= SETTINGS.other_words // 2
    assert not set(vocab.other_words) & vocab.forbidden
    assert set(keywords) <= vocab.forbidden
    every = {w for k in keywords for w in vocab.words_for(k)}
    assert not every & set(keywords)
    # Every other word goes to exactly one keyword partition.
    shared = [w for k in keywords for w in vocab.words_for(k)[len(vocab.neighbours[k]) :]]
    assert sorted(shared) == sorted(set(shared))


@pytest.mark.parametrize("language", ["fr", "es", "de"])
def test_espeak_neighbours_within_bounds_and_not_homophones(language: str) -> None:
    keywords = NUMBER_KEYWORDS[language]
    lex = E.spoken_lexicon(language)
    vocab = N.negative_vocabulary(language, keywords, SETTINGS)
    keyword_prons = {lex.get(k) for k in keywords}
    for keyword in keywords:
        pron = lex.get(keyword)
        for word in vocab.neighbours[keyword]:
            other = lex.get(word)
            distance = lexicon.edit_distance(pron, other)
            assert SETTINGS.min_phoneme_distance <= distance <= SETTINGS.max_phoneme_distance
            assert other not in keyword_prons, (keyword, word)  # no homophone of any keyword
            assert not E.extends(other, pron), (keyword, word)
    for word in vocab.other_words:
        assert lex.get(word) not in keyword_prons


def test_espeak_homophones_are_forbidden() -> None:
    vocab = N.negative_vocabulary("fr", ["sept", "six"], SETTINGS)
    assert {"cette", "set"} <= vocab.forbidden  # s E t, like "sept"
    assert "cette" not in vocab.words_for("sept") + vocab.words_for("six")


def test_neighbours_most_frequent_first() -> None:
    lex = E.spoken_lexicon("es")
    found = E.spoken_neighbours("nueve", lex)
    for a, b in itertools.pairwise(found):
        assert (a.distance, lex.rank(a.word)) <= (b.distance, lex.rank(b.word))
    assert found[0].word in {"nuevo", "nueva"}


def test_phoneme_symbols_are_clean() -> None:
    assert E.phoneme_symbols("z_e_r_'o") == ("z", "e", "r", "o")
    assert E.phoneme_symbols("_!_'E_l") == ("E", "l")
    assert E.phoneme_symbols("p_'a_**_a") == ("p", "a", "**", "a")
    assert E.phoneme_symbols("_|_'U_n_t") == ("U", "n", "t")
    assert E.pronounce("quatre", "fr") == ("k", "a", "t", "r")


def test_loans_are_left_out_of_the_lexicon() -> None:
    lex = E.spoken_lexicon("fr")
    assert "maison" in lex and "the" not in lex  # espeak reads "the" as English in a French voice


def test_deterministic() -> None:
    a = N._espeak_vocabulary("de", tuple(NUMBER_KEYWORDS["de"]), SETTINGS)
    b = N._espeak_vocabulary("de", tuple(NUMBER_KEYWORDS["de"]), SETTINGS)
    assert a.neighbours == b.neighbours and a.other_words == b.other_words
    other_seed = N.negative_vocabulary(
        "de", NUMBER_KEYWORDS["de"], SETTINGS.model_copy(update={"seed": 9})
    )
    assert other_seed.neighbours == a.neighbours and other_seed.other_words != a.other_words


def test_sentence_words_in_other_languages() -> None:
    words = synthesis.sentence_vocabulary(NUMBER_KEYWORDS["fr"], SETTINGS, "fr", 300, salt="x")
    assert len(words) == 300 and not set(words) & set(NUMBER_KEYWORDS["fr"])
    assert "cette" not in words  # homophone of "sept"
    assert words == synthesis.sentence_vocabulary(
        NUMBER_KEYWORDS["fr"], SETTINGS, "fr", 300, salt="x"
    )
    assert words != synthesis.sentence_vocabulary(
        NUMBER_KEYWORDS["fr"], SETTINGS, "fr", 300, salt="y"
    )


def test_language_wordfreq_lacks_uses_number_words_and_says_so() -> None:
    keywords = ["un", "dau"]  # Welsh: espeak-ng speaks it, wordfreq has no list
    vocab = N.negative_vocabulary("cy", keywords, SETTINGS)
    assert vocab.source == "espeak-ng+num2words"
    assert "number words only" in vocab.note
    assert vocab.other_words and not set(vocab.other_words) & set(keywords)


def test_language_without_words_is_empty_not_a_crash() -> None:
    vocab = N.negative_vocabulary("eu", ["bat", "bi"], SETTINGS)
    assert vocab.words_for("bat") == [] and vocab.other_words == ()
    assert "no synthetic _unknown_ words" in vocab.note


def test_phrase_variants_are_the_near_misses_of_a_phrase() -> None:
    def rhymes(word: str) -> list[str]:
        return {"hey": ["they", "hay"], "jarvis": ["marvis"]}[word]

    variants = N.phrase_variants("hey jarvis", rhymes, ["the", "hey", "you"], forbidden={"hay"})
    assert variants[:2] == ("jarvis", "hey")  # one word missing: each word alone
    assert {"they jarvis", "hey marvis"} <= set(variants)  # a phoneme neighbour swapped in
    assert "hay jarvis" in variants and "hay" not in variants  # only whole texts are forbidden
    common = [
        v for v in variants if v.split()[0] in {"the", "you"} or v.split()[-1] in {"the", "you"}
    ]
    assert len(common) == 2 and {len(v.split()) for v in common} == {2}  # a common word swapped
    assert "jarvis hey" in variants  # another order
    assert "hey jarvis" not in variants and len(set(variants)) == len(variants)
    three = N.phrase_variants("ok google home", lambda w: [], ["yes"])
    assert {"google home", "ok home", "ok google", "ok", "google", "home"} <= set(three)
    assert {"home google ok", "google home ok"} <= set(three)
    assert N.phrase_variants("alexa", rhymes, ["the"]) == ()


@pytest.mark.parametrize(
    ("language", "phrase"),
    [("en", "hey jarvis"), ("en-GB", "hey jarvis"), ("fr", "bonjour maison")],
)
def test_a_phrase_has_part_phrase_negatives_in_every_language(language: str, phrase: str) -> None:
    """pocketsphinx's dictionary has no multi-word entries and espeak-ng's lexicon no phrases:
    the near misses are built from the phrase's words, each with its own phoneme neighbours."""
    vocabulary = N.negative_vocabulary(language, [phrase, "stop"], SETTINGS)
    first, second = phrase.split()
    near = vocabulary.neighbours[phrase]
    assert near[:2] == (second, first)
    swapped_first = [v for v in near if v.endswith(f" {second}") and v != phrase]
    swapped_second = [v for v in near if v.startswith(f"{first} ") and v != phrase]
    assert len(swapped_first) >= 2 and len(swapped_second) >= 2  # a neighbour and a common word
    assert f"{second} {first}" in near
    assert not {v for v in near if len(v.split()) == 1} - {first, second}
    words = synthesis.negative_words(phrase, [phrase, "stop"], SETTINGS, language)
    assert words[: len(near)] == list(near) and phrase not in words
    assert vocabulary.neighbours["stop"]  # single words keep their own neighbours
    if language == "fr":
        assert vocabulary.source.startswith(N.ESPEAK_SOURCE_PREFIX)
        lex = E.spoken_lexicon("fr")
        neighbours = {n.word for n in E.spoken_neighbours(second, lex, 1, 2, exclude={first})}
        assert neighbours & {v.split()[1] for v in swapped_second}  # espeak-ng phonemes


def test_a_near_miss_two_phrases_share_is_rendered_by_one_of_them() -> None:
    vocabulary = N.negative_vocabulary("en", ["hey jarvis", "hey mycroft"], SETTINGS)
    assert "hey" in vocabulary.neighbours["hey jarvis"]
    assert "hey" not in vocabulary.neighbours["hey mycroft"]
    assert "mycroft" in vocabulary.neighbours["hey mycroft"]
    assert not set(vocabulary.neighbours["hey jarvis"]) & set(vocabulary.neighbours["hey mycroft"])
