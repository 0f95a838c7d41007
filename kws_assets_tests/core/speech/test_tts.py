"""espeak-ng synthesis through ctypes: measured properties of the audio and the word events."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from kws_assets.core.speech import tts
from kws_assets.settings import DemoCorpusSource, TtsSettings

SENTENCE = "please say yes to the stop sign"
F0_MIN_HZ = 60.0
F0_MAX_HZ = 400.0
FRAME_S = 0.04


def rms_dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-10)))


def median_f0(x: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch over the loud frames (a simple, independent estimator)."""
    frame = int(FRAME_S * sr)
    lag_min, lag_max = int(sr / F0_MAX_HZ), int(sr / F0_MIN_HZ)
    frames = [x[i : i + frame] for i in range(0, len(x) - frame, frame // 2)]
    loudest = max(float(np.sqrt(np.mean(f**2))) for f in frames)
    f0s = []
    for f in frames:
        if np.sqrt(np.mean(f**2)) < 0.3 * loudest:
            continue
        f = f - f.mean()
        ac = np.correlate(f, f, mode="full")[frame - 1 :]
        if ac[0] <= 0:
            continue
        lag = lag_min + int(np.argmax(ac[lag_min:lag_max]))
        if ac[lag] / ac[0] > 0.3:  # voiced
            f0s.append(sr / lag)
    assert len(f0s) >= 5, "too few voiced frames to estimate f0"
    return float(np.median(f0s))


def test_word_has_duration_and_energy():
    s = tts.synthesize("yes")
    assert s.sample_rate == tts.native_sample_rate() == 22050
    assert s.samples.dtype == np.float32 and s.samples.ndim == 1
    assert 0.15 < s.duration_s < 1.5
    assert float(np.max(np.abs(s.samples))) <= 1.0
    assert rms_dbfs(s.samples) > -30.0
    assert [w.text for w in s.words] == ["yes"]


def test_word_events_are_ordered_and_inside_audio():
    s = tts.synthesize(SENTENCE)
    assert [w.text for w in s.words] == SENTENCE.split()
    starts = [w.start_s for w in s.words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert starts[0] >= 0.0 and starts[-1] < s.duration_s
    for w in s.words:
        assert SENTENCE[w.char_start : w.char_start + w.char_len] == w.text
    # every word event is followed by sound: the 100 ms after it is not silent
    for w in s.words:
        i = int(w.start_s * s.sample_rate)
        assert rms_dbfs(s.samples[i : i + s.sample_rate // 10]) > -45.0, w


def test_word_events_use_character_offsets_for_non_ascii_text():
    text = "café stop"
    s = tts.synthesize(text)
    assert [w.text for w in s.words] == ["café", "stop"]


def test_rate_changes_duration():
    slow = tts.synthesize(SENTENCE, rate=80)
    fast = tts.synthesize(SENTENCE, rate=250)
    slow_trim, _ = tts.trim_silence(slow.samples, slow.sample_rate)
    fast_trim, _ = tts.trim_silence(fast.samples, fast.sample_rate)
    ratio = len(slow_trim) / len(fast_trim)
    assert 2.0 < ratio < 4.5, ratio  # nominal 250/80 = 3.1


def test_pitch_changes_f0():
    low = tts.synthesize(SENTENCE, voice="en-us", pitch=15)
    high = tts.synthesize(SENTENCE, voice="en-us", pitch=85)
    f0_low = median_f0(low.samples, low.sample_rate)
    f0_high = median_f0(high.samples, high.sample_rate)
    assert f0_high > 1.3 * f0_low, (f0_low, f0_high)


def test_variants_give_different_voices():
    male = tts.synthesize(SENTENCE, voice="en-us+m1")
    female = tts.synthesize(SENTENCE, voice="en-us+f2")
    f0_male = median_f0(male.samples, male.sample_rate)
    f0_female = median_f0(female.samples, female.sample_rate)
    assert f0_female > 1.3 * f0_male, (f0_male, f0_female)


def test_languages_pronounce_differently():
    # same text, different accents: different phonemes and different audio
    assert tts.phonemize("water", voice="en-us") != tts.phonemize("water", voice="en-gb-x-rp")
    us = tts.synthesize("water", voice="en-us").samples
    gb = tts.synthesize("water", voice="en-gb-x-rp").samples
    assert len(us) != len(gb) or not np.array_equal(us, gb)


def test_word_gap_adds_pauses():
    gap_units = 20  # x 10 ms between words
    plain = tts.synthesize(SENTENCE, rate=175)
    gapped = tts.synthesize(SENTENCE, rate=175, word_gap=gap_units)
    expected_extra_s = (len(SENTENCE.split()) - 1) * gap_units * 0.01
    extra_s = gapped.duration_s - plain.duration_s
    assert 0.5 * expected_extra_s < extra_s < 1.5 * expected_extra_s, extra_s


def test_concurrent_calls_do_not_mix_audio():
    # espeak keeps a pitch-flutter phase between calls, so repeats differ by a few samples;
    # mixed-up buffers from unsynchronised threads would differ by whole words.
    tolerance_s = 0.005
    texts = {"en-us+m3": "stop", "en+f4": "go left"}
    reference = {voice: tts.synthesize(text, voice=voice) for voice, text in texts.items()}
    results: list[tuple[str, tts.Synthesis]] = []

    def worker(voice: str) -> None:
        for _ in range(5):
            results.append((voice, tts.synthesize(texts[voice], voice=voice)))

    threads = [threading.Thread(target=worker, args=(v,)) for v in reference for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20
    for voice, s in results:
        ref = reference[voice]
        assert abs(s.duration_s - ref.duration_s) < tolerance_s, voice
        assert abs(rms_dbfs(s.samples) - rms_dbfs(ref.samples)) < 0.5, voice
        assert [w.text for w in s.words] == [w.text for w in ref.words]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"voice": "xx-nonexistent"},
        {"voice": "en-us+nonexistent-variant"},
        {"voice": "+m1"},
        {"rate": 10},
        {"pitch": 150},
    ],
)
def test_bad_requests_raise_tts_error(kwargs):
    with pytest.raises(tts.TtsError):
        tts.synthesize("yes", **kwargs)


@pytest.mark.parametrize("text", ["", "   ", "..."])
def test_empty_text_raises(text):
    with pytest.raises(tts.TtsError):
        tts.synthesize(text)
    assert issubclass(tts.TtsError, ValueError)


def test_every_configured_voice_exists():
    voices = set(TtsSettings().voices) | set(DemoCorpusSource().voices)
    for voice in sorted(voices):
        s = tts.synthesize("go", voice=voice)
        assert s.duration_s > 0.1 and rms_dbfs(s.samples) > -35.0, voice


def test_list_voices_and_variants():
    english = tts.list_voices("en")
    assert {"en", "en-us", "en-gb-scotland", "en-gb-x-rp"} <= set(english)
    for voice in english:
        assert tts.synthesize("go", voice=voice).duration_s > 0.1
    assert all(v.startswith("en") for v in english)
    assert len(tts.list_voices()) > len(english)
    variants = tts.list_variants()
    assert {"m1", "f2", "klatt"} <= set(variants)
    tts.synthesize("go", voice=f"en-us+{variants[0]}")  # listed names are accepted


def test_many_voice_changes_do_not_lose_word_events():
    # each voice change queues an event inside espeak; a full queue used to drop the first words
    for i in range(60):
        tts.phonemize("yes", voice=("en-us", "en-gb-x-rp", "en")[i % 3], separator="_")
    s = tts.synthesize(SENTENCE)
    assert [w.text for w in s.words] == SENTENCE.split()


def test_numbered_variant_is_accepted():
    assert tts.synthesize("go", voice="en-us+3").duration_s > 0.1  # espeak: +3 = m3


def test_phonemize():
    assert tts.phonemize("yes") == "j'Es"
    spaced = tts.phonemize("hello world", separator="_")
    assert spaced.split() == ["h_@_l_'oU", "w_'3:_l_d"]
    assert tts.phonemize("zorblax").strip()
    with pytest.raises(tts.TtsError):
        tts.phonemize("yes", voice="xx-nonexistent")


def test_synthesize_at_resamples():
    native = tts.synthesize("yes")
    s16 = tts.synthesize_at("yes", 16000)
    assert s16.sample_rate == 16000 and s16.samples.dtype == np.float32
    # separate calls differ by a few samples (espeak's pitch flutter), so allow 2 ms
    assert abs(len(s16.samples) - len(native.samples) * 16000 / 22050) <= 32
    assert abs(rms_dbfs(s16.samples) - rms_dbfs(native.samples)) < 1.0
    assert s16.words == native.words


def test_trim_silence_finds_the_speech():
    s = tts.synthesize_at("yes", 16000)
    lead, tail = 4800, 8000
    padded = np.concatenate([np.zeros(lead, np.float32), s.samples, np.zeros(tail, np.float32)])
    trimmed, offset = tts.trim_silence(padded, 16000)
    frame = 160
    assert lead - frame <= offset <= lead + 4 * frame
    assert abs(len(trimmed) - len(s.samples)) <= 8 * frame
    empty, zero_offset = tts.trim_silence(np.zeros(1000, np.float32), 16000)
    assert len(empty) == 0 and zero_offset == 0


def test_a_reset_engine_speaks_as_a_fresh_process_whatever_came_before() -> None:
    tts.reset_engine()
    first = tts.synthesize("la palabra arriba es verde", voice="es-419", rate=160)
    tts.synthesize("please say yes", voice="en-us+f1", rate=160)  # moves espeak's state on
    tts.reset_engine()
    again = tts.synthesize("la palabra arriba es verde", voice="es-419", rate=160)
    assert again.samples.tobytes() == first.samples.tobytes()
    assert again.words == first.words


def test_a_klatt_variant_speaks_the_same_samples_whatever_the_process_drew_before() -> None:
    """``+Reed`` draws noise from the C library's rand(): without a seed per request the same
    request gave different samples every time (35 clips of the demo changed from run to run)."""
    import ctypes
    import random

    libc = ctypes.CDLL(None)
    first = tts.synthesize("down", voice="en-us+Reed", rate=160).samples
    for _ in range(3):
        libc.srand(random.randrange(1 << 31))  # whatever else the process did with rand()
        libc.rand()
        again = tts.synthesize("down", voice="en-us+Reed", rate=160).samples
        assert np.array_equal(first, again)
    other = tts.synthesize("down", voice="en-us+Reed", rate=170).samples
    assert not np.array_equal(first[: len(other)], other[: len(first)])
