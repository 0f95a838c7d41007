"""Cutting keyword and _unknown_ clips from word alignments."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.audio.io import read_audio, write_wav
from kws_assets.core.corpus import segment
from kws_assets.core.corpus.segment import (
    AlignmentCache,
    align_utterances,
    choose_clips,
    cut_word_clips,
    merge_phrases,
)
from kws_assets.core.speech.aligners import AlignerChoice
from kws_assets.core.speech.alignment import WordSpan
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.settings import UNKNOWN_LABEL, AlignmentSettings, AudioSettings, KwsConfig
from kws_assets_tests.corpus_files import speech

SR = 16000


def _utterance_with_bursts(spans: list[tuple[float, float]], seconds: float = 3.0) -> np.ndarray:
    x = np.zeros(int(seconds * SR), dtype=np.float32)
    for start, end in spans:
        t = np.arange(int((end - start) * SR)) / SR
        x[int(start * SR) : int(start * SR) + len(t)] = 0.5 * np.sin(2 * np.pi * 440 * t)
    return x


WORDS = [
    WordSpan("please", 0.2, 0.6, 0.9),
    WordSpan("say", 0.7, 0.95, 0.9),
    WordSpan("yes", 1.4, 1.8, 0.8),
    WordSpan("now", 2.2, 2.5, 0.9),
    WordSpan("a", 2.6, 2.62, 0.5),
]


def test_every_keyword_and_n_unknowns_are_chosen_deterministically():
    chosen = choose_clips(WORDS, ["yes"], "utt-1", unknown_per_utterance=2, min_word_seconds=0.08)
    labels = [label for label, _ in chosen]
    assert labels.count("yes") == 1 and labels.count(UNKNOWN_LABEL) == 2
    assert all(span.word not in {"yes", "a"} for label, span in chosen if label == UNKNOWN_LABEL)
    assert chosen == choose_clips(WORDS, ["yes"], "utt-1", 2, 0.08)
    picks = {
        tuple(
            s.word
            for label, s in choose_clips(WORDS, ["yes"], f"utt-{i}", 1, 0.08)
            if label == UNKNOWN_LABEL
        )
        for i in range(20)
    }
    assert len(picks) > 1, "different utterances pick different unknown words"


def test_clips_are_centred_on_the_aligned_word():
    samples = _utterance_with_bursts([(1.4, 1.8)])
    clips = cut_word_clips(samples, SR, WORDS, ["yes"], "utt", SR, 10.0, 0, 0.08)
    assert [c.label for c in clips] == ["yes"]
    energy = clips[0].samples.astype(np.float64) ** 2
    centroid = (energy * np.arange(len(energy))).sum() / energy.sum()
    assert abs(centroid - SR / 2) < 0.02 * SR
    assert len(clips[0].samples) == SR


def test_a_word_at_the_end_is_zero_padded():
    samples = _utterance_with_bursts([(2.7, 2.95)], seconds=3.0)
    clips = cut_word_clips(
        samples, SR, [WordSpan("go", 2.7, 2.95, 1.0)], ["go"], "u", SR, 10.0, 0, 0.08
    )
    tail = clips[0].samples[-int(0.3 * SR) :]
    assert len(clips[0].samples) == SR and np.all(tail == 0)


PHRASE_WORDS = [
    WordSpan("i", 0.1, 0.2, 0.9),
    WordSpan("said", 0.2, 0.5, 0.9),
    WordSpan("hey", 0.6, 0.8, 0.7),
    WordSpan("jarvis", 0.8, 1.3, 0.9),
    WordSpan("jarvis", 1.5, 1.9, 0.9),
    WordSpan("hey", 2.0, 2.2, 0.9),
    WordSpan("there", 2.2, 2.5, 0.9),
]


def test_a_phrase_is_matched_as_consecutive_words_and_its_words_are_not_unknown():
    merged = merge_phrases(PHRASE_WORDS, {("hey", "jarvis"): "hey jarvis"})
    assert [w.word for w in merged] == ["i", "said", "hey jarvis", "jarvis", "hey", "there"]
    assert (merged[2].start_s, merged[2].end_s, merged[2].confidence) == (0.6, 1.3, 0.7)
    chosen = choose_clips(PHRASE_WORDS, ["hey jarvis"], "utt", 10, 0.08)
    keyword = [(label, s) for label, s in chosen if label != UNKNOWN_LABEL]
    assert [(label, s.start_s, s.end_s) for label, s in keyword] == [("hey jarvis", 0.6, 1.3)]
    unknown = sorted((s.word, s.start_s) for label, s in chosen if label == UNKNOWN_LABEL)
    # the phrase's own words are inside the keyword clip; alone elsewhere they are negatives
    assert unknown == [("hey", 2.0), ("jarvis", 1.5), ("said", 0.2), ("there", 2.2)]


def test_a_phrase_longer_than_the_clip_is_not_cut():
    samples = _utterance_with_bursts([(0.6, 1.3)])
    fits = cut_word_clips(samples, SR, PHRASE_WORDS, ["hey jarvis"], "u", SR, 10.0, 0, 0.08)
    assert [(c.label, c.over_window, len(c.samples)) for c in fits] == [("hey jarvis", "", SR)]
    short = cut_word_clips(samples, SR, PHRASE_WORDS, ["hey jarvis"], "u", SR // 2, 10.0, 1, 0.08)
    phrase = [c for c in short if c.label == "hey jarvis"]
    assert len(phrase) == 1 and phrase[0].samples.size == 0
    assert "lasts 0.70 s, longer than the 0.50 s clip" in phrase[0].over_window
    assert all(c.samples.size == SR // 2 for c in short if c.label == UNKNOWN_LABEL)


def _spoken_utterance(tmp_path, utterance_id: str, text: str, voice: str, language: str) -> dict:
    path = tmp_path / f"{utterance_id}.wav"
    write_wav(path, speech(text, voice=voice, rate=150), SR)
    return {
        "utterance_id": utterance_id,
        "uri": str(path),
        "transcript": text,
        "speaker": f"tts:{voice}",
        "language": language,
        "source": "test",
    }


@pytest.mark.parametrize(
    ("language", "phrase", "text", "voice"),
    [
        ("en", "hey jarvis", "so i said hey jarvis turn on the light", "en-us+m3"),
        ("fr", "bonjour maison", "le matin je dis bonjour maison et tout va bien", "fr+f2"),
    ],
)
def test_a_phrase_is_aligned_from_a_corpus_utterance(tmp_path, language, phrase, text, voice):
    """Forced alignment (pocketsphinx for English, espeak-ng TTS+DTW for French) gives words; the
    phrase becomes one keyword clip holding all of it, and a window too short for it
    quarantines it instead of cutting it."""
    utterance = _spoken_utterance(tmp_path, "u1", text, voice, language)
    settings = AlignmentSettings(unknown_per_utterance=20, min_confidence=0.0)
    store = ClipStore.at(tmp_path / "clips")
    aligner = AlignerChoice(settings, SR)
    audio = KwsConfig(keywords=[phrase], language=language).audio
    rows, failures, _ = align_utterances([utterance], [phrase], aligner, store, audio, settings)
    assert not failures
    keyword_rows = [r for r in rows if r["label"] == phrase]
    assert len(keyword_rows) == 1 and keyword_rows[0]["word"] == phrase
    clip = read_audio(keyword_rows[0]["uri"]).samples
    assert clip.size == audio.clip_samples > SR
    unknown = {r["word"] for r in rows if r["label"] == UNKNOWN_LABEL}
    assert len(unknown) >= 4 and unknown <= set(text.split()) - set(phrase.split())
    short = AudioSettings(clip_seconds=0.4)
    rows, failures, _ = align_utterances(
        [utterance], [phrase], aligner, store, short, settings, labels={phrase}
    )
    assert not failures and len(rows) == 1
    assert rows[0]["reject_reason"] == "speech_over_window" and rows[0]["reject_stage"] == "clip"
    assert phrase in rows[0]["reject_detail"] and rows[0]["label"] == phrase


def test_an_alignment_is_kept_and_not_computed_again(tmp_path, monkeypatch):
    """A recording aligned once (same aligner settings, id, transcript) is read back from the
    cache the next time: the same clips, no aligner call; another transcript is aligned."""
    utterance = _spoken_utterance(tmp_path, "u1", "please say stop now", "en-us+m3", "en")
    settings = AlignmentSettings(min_confidence=0.0)
    store = ClipStore.at(tmp_path / "clips")
    aligner = AlignerChoice(settings, SR)
    audio = KwsConfig(keywords=["stop"]).audio
    cache = AlignmentCache(tmp_path / "alignments")
    first, failures, _ = align_utterances(
        [utterance], ["stop"], aligner, store, audio, settings, cache=cache
    )
    assert not failures and any(r["label"] == "stop" for r in first)
    calls: list[str] = []
    real_align = segment.as_word_aligner

    def counting(choice, language):
        word_aligner = real_align(choice, language)
        original = word_aligner.align

        def align(samples, sample_rate, transcript):
            calls.append(transcript)
            return original(samples, sample_rate, transcript)

        monkeypatch.setattr(word_aligner, "align", align)
        return word_aligner

    monkeypatch.setattr(segment, "as_word_aligner", counting)
    again, _, _ = align_utterances(
        [utterance], ["stop"], aligner, store, audio, settings, cache=cache
    )
    assert again == first and calls == []
    other = {**utterance, "transcript": "please say stop"}
    align_utterances([other], ["stop"], aligner, store, audio, settings, cache=cache)
    assert calls and set(calls) == {"please say stop"}  # aligned (a fallback may try again)
    for path in (tmp_path / "alignments").rglob("*.json"):
        path.write_text("{broken")  # a torn file is a miss, aligned afresh
    align_utterances([utterance], ["stop"], aligner, store, audio, settings, cache=cache)
    assert calls[-1] == "please say stop now"
