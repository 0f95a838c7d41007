"""pocketsphinx forced alignment, checked against espeak-ng's own word timings."""

from __future__ import annotations

import itertools
import re
import time

import numpy as np
import pytest
from pocketsphinx import get_model_path

from kws_assets.core.audio.io import resample
from kws_assets.core.speech import tts
from kws_assets.core.speech.alignment import (
    ARPABET_PHONES,
    ESPEAK_TO_ARPABET,
    Aligner,
    AlignmentResult,
    G2pError,
    espeak_to_arpabet,
    g2p_arpabet,
    normalize_transcript,
)

SENTENCE = "please say yes to the stop sign"
VOICES = ["en-us", "en-us+f3", "en-gb-scotland+m4", "en-029+m6", "en-us-nyc+m7", "en-gb-x-rp+f5"]
START_TOLERANCE_S = 0.15
MIN_FRACTION_WITHIN_TOLERANCE = 0.9
MAX_REAL_TIME_FACTOR = 0.5


@pytest.fixture(scope="module")
def aligner() -> Aligner:
    return Aligner(sample_rate=16000, pad_seconds=0.5)


def _cmu_pronunciations() -> dict[str, list[list[str]]]:
    prons: dict[str, list[list[str]]] = {}
    with open(get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8") as fh:
        for line in fh:
            word, *phones = line.split()
            prons.setdefault(re.sub(r"\(\d+\)$", "", word), []).append(phones)
    return prons


def _event_intervals(s: tts.Synthesis) -> list[tuple[float, float]]:
    """espeak's word intervals: from a word event to the next one (the last ends with the audio)."""
    starts = [w.start_s for w in s.words]
    return list(zip(starts, [*starts[1:], s.duration_s], strict=True))


def _check_complete(result: AlignmentResult, words: list[str], duration_s: float) -> None:
    assert result.ok, result.error
    assert result.error is None
    assert [w.word for w in result.words] == words
    for span in result.words:
        assert 0.0 <= span.start_s < span.end_s <= duration_s + 1e-6, span
        assert 0.0 <= span.confidence <= 1.0
    for a, b in itertools.pairwise(result.words):
        assert a.end_s <= b.start_s + 1e-6


def test_normalize_transcript():
    assert normalize_transcript("Don't STOP, go-left!") == ["don't", "stop", "go", "left"]
    assert normalize_transcript("\u2018Caf\u00e9\u2019 \u2014 it\u2019s 42.") == [
        "cafe",
        "it's",
        "42",
    ]
    assert normalize_transcript("  ...  ") == []


def test_mapping_targets_are_model_phones():
    used = {phone for phones in ESPEAK_TO_ARPABET.values() for phone in phones}
    assert used <= ARPABET_PHONES
    with open(get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8") as fh:
        dictionary_phones = {p for line in fh for p in line.split()[1:]}
    assert dictionary_phones == ARPABET_PHONES


def test_espeak_to_arpabet_mapping():
    assert espeak_to_arpabet("h_@_l_'oU") == ["HH", "AH", "L", "OW"]
    assert espeak_to_arpabet("z_'i@_r_oU") == ["Z", "IY", "R", "OW"]
    assert espeak_to_arpabet("l_'eI_3_r-_I_N") == ["L", "EY", "ER", "IH", "NG"]
    with pytest.raises(G2pError):
        espeak_to_arpabet("k_Q_t")  # Q has no English ARPAbet equivalent


def test_g2p_agrees_with_cmudict_on_common_words():
    prons = _cmu_pronunciations()
    words = [
        "yes",
        "no",
        "up",
        "down",
        "left",
        "right",
        "on",
        "off",
        "stop",
        "go",
        "please",
        "say",
        "sign",
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "bed",
        "bird",
        "cat",
        "house",
        "tree",
        "forward",
        "follow",
        "learn",
    ]
    exact = sum(g2p_arpabet(w) in prons[w] for w in words)
    assert exact / len(words) >= 0.85, exact


def test_aligns_espeak_sentences_with_espeak_timing(aligner):
    words = SENTENCE.split()
    start_errors = []
    for voice in VOICES:
        for rate in (140, 175):
            s = tts.synthesize(SENTENCE, voice=voice, rate=rate)  # 22050 Hz: aligner resamples
            result = aligner.align(s.samples, s.sample_rate, SENTENCE)
            _check_complete(result, words, s.duration_s)
            assert result.oov_words == [] and result.g2p_words == {}
            for span, (ev_start, ev_end) in zip(result.words, _event_intervals(s), strict=True):
                overlap = min(span.end_s, ev_end) - max(span.start_s, ev_start)
                assert overlap > 0, (voice, rate, span, ev_start, ev_end)
                start_errors.append(abs(span.start_s - ev_start))
    within = np.mean(np.asarray(start_errors) <= START_TOLERANCE_S)
    print(
        f"start error vs espeak: median {np.median(start_errors) * 1000:.0f} ms, "
        f"{within:.1%} within {START_TOLERANCE_S * 1000:.0f} ms, max {max(start_errors):.3f} s"
    )
    assert within >= MIN_FRACTION_WITHIN_TOLERANCE, (within, np.median(start_errors))
    assert np.median(start_errors) < 0.05


def test_out_of_dictionary_word_uses_g2p():
    aligner = Aligner()
    text = "please say zorblax now"
    assert aligner.pronunciation("zorblax") is None
    s = tts.synthesize_at(text, 16000, voice="en-us")
    result = aligner.align(s.samples, 16000, text)
    _check_complete(result, text.split(), s.duration_s)
    assert set(result.g2p_words) == {"zorblax"}
    assert result.g2p_words["zorblax"].split()[0] == "Z"
    assert result.oov_words == []
    zorblax = result.words[2]
    ev_start, ev_end = _event_intervals(s)[2]
    assert min(zorblax.end_s, ev_end) - max(zorblax.start_s, ev_start) > 0
    # the g2p word stays known to the reused decoder and is still reported
    again = aligner.align(s.samples, 16000, text)
    assert again.ok and again.g2p_words == result.g2p_words


def test_unpronounceable_word_is_reported_not_dropped():
    no_g2p = Aligner(g2p_voice="xx-no-such-voice")  # every g2p attempt fails
    s = tts.synthesize_at("say zorblax", 16000)
    result = no_g2p.align(s.samples, 16000, "say zorblax")
    assert not result.ok
    assert result.oov_words == ["zorblax"]
    assert "zorblax" in (result.error or "")
    assert result.words == []


@pytest.mark.parametrize(
    ("samples", "transcript"),
    [
        (np.zeros(16000, np.float32), "yes"),
        (np.random.default_rng(0).standard_normal(800).astype(np.float32) * 0.1, "yes"),
        (np.random.default_rng(1).standard_normal(800).astype(np.float32) * 0.1, SENTENCE),
        (np.zeros(0, np.float32), "yes"),
        (np.full(1600, np.nan, np.float32), "yes"),
        (np.random.default_rng(2).standard_normal(16000).astype(np.float32) * 0.1, ""),
        (np.random.default_rng(3).standard_normal(16000).astype(np.float32) * 0.1, "!?"),
    ],
)
def test_garbage_input_fails_cleanly(aligner, samples, transcript):
    result = aligner.align(samples, 16000, transcript)
    assert not result.ok
    assert result.error
    assert all(0.0 <= w.start_s <= w.end_s <= len(samples) / 16000 for w in result.words)


def test_invalid_sample_rate_fails_cleanly(aligner):
    result = aligner.align(np.ones(100, np.float32) * 0.1, 0, "yes")
    assert not result.ok and "sample rate" in (result.error or "")


def test_rejects_words_pushed_into_the_padding(aligner):
    # 0.15 s of speech cannot hold a whole sentence: whatever the decoder does, it is not ok
    s = tts.synthesize_at("yes", 16000)
    result = aligner.align(s.samples[: int(0.15 * 16000)], 16000, SENTENCE)
    assert not result.ok


def test_same_input_gives_same_alignment_and_rate_does_not_matter(aligner):
    s = tts.synthesize(SENTENCE, voice="en-us+m1")
    first = aligner.align(s.samples, s.sample_rate, SENTENCE)
    second = aligner.align(s.samples, s.sample_rate, SENTENCE)
    assert first.ok and first.words == second.words
    s16 = resample(s.samples, s.sample_rate, 16000)
    at16 = aligner.align(s16, 16000, SENTENCE)
    assert at16.ok
    for a, b in zip(first.words, at16.words, strict=True):
        assert abs(a.start_s - b.start_s) <= 0.03 and abs(a.end_s - b.end_s) <= 0.03


def test_real_time_factor(aligner):
    clips = [tts.synthesize_at(SENTENCE, 16000, voice=v) for v in VOICES]
    audio_s = sum(c.duration_s for c in clips)
    t0 = time.perf_counter()
    results = [aligner.align(c.samples, 16000, SENTENCE) for c in clips]
    rtf = (time.perf_counter() - t0) / audio_s
    print(f"aligner real-time factor: {rtf:.3f}")
    assert all(r.ok for r in results)
    assert rtf < MAX_REAL_TIME_FACTOR, rtf
