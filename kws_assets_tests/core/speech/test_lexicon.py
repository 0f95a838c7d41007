"""The pronouncing dictionary and phoneme neighbours (hard negatives)."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.speech import lexicon as L


@pytest.fixture(scope="module")
def lex() -> L.Lexicon:
    return L.load_lexicon()


def test_parses_cmu_lines_with_alternates_stress_and_comments() -> None:
    parsed = L.parse_dictionary([";;; comment", "read  R IY1 D", "read(2) R EH1 D", "", "a\tAH0"])
    assert parsed.get("read") == (("R", "IY", "D"), ("R", "EH", "D"))
    assert parsed.get("A") == (("AH",),)
    assert len(parsed) == 2


def test_bundled_dictionary_knows_the_demo_keywords(lex) -> None:
    assert len(lex) > 100_000
    assert lex.get("yes") == (("Y", "EH", "S"),)
    assert {"know"} <= L.homophones("no", lex)
    assert "no" not in L.homophones("no", lex)


def test_vectorised_distances_agree_with_the_plain_levenshtein() -> None:
    assert L.edit_distance(["S", "T", "AA", "P"], ["T", "AA", "P"]) == 1
    assert L.edit_distance(["K", "AE", "T"], ["K", "AA", "T", "S"]) == 2
    rng = np.random.default_rng(0)
    query = [int(v) for v in rng.integers(0, 6, size=4)]
    candidates = rng.integers(0, 6, size=(200, 5))
    fast = L.distances_to(query, candidates)
    slow = [L.edit_distance(query, list(row)) for row in candidates]
    assert fast.tolist() == slow


def test_neighbours_are_close_but_never_the_same_sound(lex) -> None:
    found = L.phoneme_neighbours("yes", lex, 1, 2, exclude=["yet"])
    words = [n.word for n in found]
    assert "guess" in words and "yet" not in words
    keyword = lex.get("yes")[0]
    for n in found:
        assert 1 <= n.distance <= 1  # three phonemes: the distance is capped at 3 // 2 = 1
        assert L.edit_distance(keyword, n.pronunciation) == n.distance
    assert all(w not in L.homophones("yes", lex) for w in words)
    # two-edit neighbours of a 4-phoneme word are allowed, and come after one-edit ones
    stop = L.phoneme_neighbours("stop", lex, 1, 2)
    distances = [n.distance for n in stop]
    assert distances == sorted(distances) and set(distances) == {1, 2}
    assert L.phoneme_neighbours("qwzxv", lex) == []


def test_common_words_come_first(lex) -> None:
    ranked = L.by_commonness(["hesse", "guess", "bess"])
    assert ranked[0] == "guess"
    picked = L.common_words(lex, 20, exclude=["the"], salt="a")
    assert len(picked) == 20 and "the" not in picked
    assert picked == L.common_words(lex, 20, exclude=["the"], salt="a")
    assert picked != L.common_words(lex, 20, exclude=["the"], salt="b")


def test_a_pick_keeps_each_words_place_when_the_skipped_words_change() -> None:
    """The words of dropping ``skip`` first, each at the slot it had: swapping one skipped word
    for another changes only the slots those two words touch."""
    pool = [f"w{i}" for i in range(40)]
    head = L.stable_order(pool, "s")[:10]
    old = L.stable_pick(pool, 10, {head[2]}, "s")
    assert set(old) == set([w for w in L.stable_order(pool, "s") if w != head[2]][:10])
    new = L.stable_pick(pool, 10, {head[6]}, "s")
    assert len(old) == len(new) == 10
    assert [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b] == [2, 6]
    assert new[2] == head[2] and old[6] == head[6]
    # a pool that runs out of substitutes leaves the slot out, never a word of skip
    assert L.stable_pick(["a", "b", "c"], 3, {"a", "b"}, "s") == ["c"]
