"""Stream synthesis: keyword clips embedded where they are reported, negative streams of the
requested length, a set's clips strung together with each keyword where it is reported, a
noise floor at its level everywhere, and sentences spoken once across runs (the render cache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kws_assets.core.evaluation import streams
from kws_assets.core.evaluation.streams import (
    GAP_S,
    NOISE_FLOOR_BLOCK_SAMPLES,
    POSITIVE_LEAD_S,
    SENTENCE_BLOCK,
    add_noise_floor,
    concatenate_clips,
    concatenate_pieces,
    embed_positives,
    speak_sentences,
)
from kws_assets.core.speech import tts
from kws_assets.core.storage.render_cache import RenderCache
from kws_assets_tests.tone_detector import SR


def test_positives_are_embedded_where_they_are_reported() -> None:
    rng = np.random.default_rng(0)
    clips = [(np.full(SR, 0.5, np.float32), "a", "c1"), (np.full(SR, -0.5, np.float32), "b", "c2")]
    filler = [np.zeros(3 * SR, np.float32)]
    audio, positives = embed_positives(clips, filler, SR, rng)
    assert [p.label for p in positives] == ["a", "b"]
    for (clip, _, _), positive in zip(clips, positives, strict=True):
        start = round(positive.start_s * SR)
        np.testing.assert_array_equal(audio[start : start + SR], clip)
        assert audio[start - 1] == 0.0  # preceded by filler
    gap = positives[1].start_s - positives[0].start_s - 1.0
    assert POSITIVE_LEAD_S[0] <= gap <= POSITIVE_LEAD_S[1]
    with pytest.raises(ValueError, match="filler"):
        embed_positives(clips, [], SR, rng)


def _word_clip(level: float, start: int, length: int) -> np.ndarray:
    """A 1-s clip that is digital silence but for a constant "word" at ``start``."""
    clip = np.zeros(SR, np.float32)
    clip[start : start + length] = level
    return clip


def test_clips_are_strung_together_once_each_with_keywords_where_reported() -> None:
    words = [  # (level, start, length) of each clip's word, then its label
        ((0.5, 4000, 8000), "a"),
        ((-0.4, 6000, 3000), "b"),
        ((0.3, 2000, 5000), "_unknown_"),
        ((0.2, 7000, 4000), "_unknown_"),
    ]
    clips = [(_word_clip(*w), label, f"c{i}") for i, (w, label) in enumerate(words)]
    noise = (0.01 * np.random.default_rng(2).standard_normal(SR)).astype(np.float32)
    clips.append((noise, "_silence_", "s"))
    audio, positives = concatenate_clips(clips, {"a", "b"}, SR, np.random.default_rng(3))
    assert sorted((p.label, p.clip_id) for p in positives) == [("a", "c0"), ("b", "c1")]
    for positive in positives:  # the uncut clip's window holds the word where the clip had it
        (value, start, length), _ = words[int(positive.clip_id[1:])]
        level = np.float32(value)
        first = round(positive.start_s * SR)
        np.testing.assert_array_equal(audio[first + start : first + start + length], level)
        assert audio[first + start - 1] != level and audio[first + start + length] != level
    # each word trimmed to its sound, the silence clip whole, a pause before each and at the end
    sound = sum(length for (_, _, length), _ in words) + SR
    assert sound + 6 * GAP_S[0] * SR - 6 <= audio.size <= sound + 6 * GAP_S[1] * SR
    assert np.count_nonzero(audio) == sound - np.count_nonzero(noise == 0)
    assert any(np.array_equal(audio[i : i + SR], noise) for i in np.flatnonzero(audio == noise[0]))
    again, same = concatenate_clips(clips, {"a", "b"}, SR, np.random.default_rng(3))
    np.testing.assert_array_equal(again, audio)
    assert same == positives


def test_negative_stream_has_the_requested_length_and_counts_reuse() -> None:
    rng = np.random.default_rng(1)
    pieces = [np.full(SR // 2, 0.1, np.float32), np.full(SR, 0.2, np.float32)]
    audio, reuse = concatenate_pieces(pieces, 20.0, SR, rng)
    assert audio.size == 20 * SR and reuse >= 5
    audio, reuse = concatenate_pieces([np.zeros(30 * SR, np.float32)], 2.0, SR, rng)
    assert reuse == 0
    with pytest.raises(ValueError):
        concatenate_pieces([np.zeros(0, np.float32)], 1.0, SR, rng)


def test_noise_floor_is_at_its_level_everywhere_and_leaves_the_input_alone() -> None:
    silence = np.zeros(NOISE_FLOOR_BLOCK_SAMPLES * 2 + 12345, dtype=np.float32)
    floored = add_noise_floor(silence, -60.0, np.random.default_rng(0))
    assert floored.dtype == np.float32 and floored.shape == silence.shape
    assert not silence.any()  # a new array
    for start in (0, NOISE_FLOOR_BLOCK_SAMPLES, 2 * NOISE_FLOOR_BLOCK_SAMPLES):
        piece = floored[start : start + NOISE_FLOOR_BLOCK_SAMPLES].astype(np.float64)
        assert 20 * np.log10(np.sqrt(np.mean(piece**2))) == pytest.approx(-60.0, abs=0.5)
    # one block of noise laid down from different points of it: no block repeats the last
    first, second = floored[:NOISE_FLOOR_BLOCK_SAMPLES], floored[NOISE_FLOOR_BLOCK_SAMPLES:][:1000]
    assert abs(np.corrcoef(first[:1000], second)[0, 1]) < 0.5


def test_cached_sentences_are_the_spoken_ones_and_a_rerun_speaks_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = ["morning", "river", "market", "radio"]
    spoken = speak_sentences(words, ["en-us+m2"], 3, 16000, np.random.default_rng(5))
    cache = RenderCache(tmp_path)
    first = speak_sentences(words, ["en-us+m2"], 3, 16000, np.random.default_rng(5), cache)
    assert (cache.hits, cache.misses) == (0, 1)  # one block of sentences
    monkeypatch.setattr(tts, "synthesize", lambda *a, **k: pytest.fail("spoke again"))
    rerun = RenderCache(tmp_path)
    again = speak_sentences(words, ["en-us+m2"], 3, 16000, np.random.default_rng(5), rerun)
    assert (rerun.hits, rerun.misses) == (1, 0)
    for a, b, c in zip(spoken, first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_sentences_spoken_on_two_workers_are_those_spoken_here(tmp_path: Path) -> None:
    words = ["morning", "river", "market", "radio"]
    count = SENTENCE_BLOCK + 3  # two blocks: the second worker has one
    here = speak_sentences(words, ["en-us+m2"], count, 16000, np.random.default_rng(7))
    cache = RenderCache(tmp_path)
    pooled = speak_sentences(
        words, ["en-us+m2"], count, 16000, np.random.default_rng(7), cache, workers=2
    )
    assert (cache.hits, cache.misses) == (0, 2)
    assert len(here) == len(pooled) == count
    for a, b in zip(here, pooled, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_changed_hard_word_list_changes_only_the_blocks_that_speak_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block b speaks list b mod n of ``hard`` (a keyword's neighbours) at about its share:
    swapping one list (one keyword changed) re-speaks that list's blocks, and no other."""
    spoken: list[str] = []

    def fake_block(block, sample_rate):  # stands in for espeak-ng
        spoken.extend(text for text, *_ in block)
        return [np.ones(10, np.float32) for _ in block]

    monkeypatch.setattr(streams, "_speak_block", fake_block)
    words = [f"w{i}" for i in range(300)]
    hard = [("aa", "ab"), ("ba", "bb", "bc"), ("ca",)]
    count = 6 * SENTENCE_BLOCK

    def speak(lists, cache):
        spoken.clear()
        speak_sentences(words, ["v"], count, SR, np.random.default_rng(3), cache, 1, lists, 0.2)
        return list(spoken)

    first = speak(hard, RenderCache(tmp_path))
    said = [w for text in first for w in text.split()]
    share = sum(not w.startswith("w") for w in said) / len(said)
    assert 0.15 < share < 0.25
    assert {w for text in first[:SENTENCE_BLOCK] for w in text.split()} - set(words) <= {"aa", "ab"}
    cache = RenderCache(tmp_path)
    changed = speak([hard[0], ("xa", "xb"), hard[2]], cache)
    assert (cache.hits, cache.misses) == (4, 2)  # blocks 1 and 4 speak the swapped list
    respoken = {w for text in changed for w in text.split()} - set(words)
    assert len(changed) == 2 * SENTENCE_BLOCK and respoken <= {"xa", "xb"}
