"""TTS + DTW forced alignment, measured against pocketsphinx on recordings made with other
voices than the alignment voice, under noise."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from kws_assets.core.audio.io import colored_noise, mix_at_snr, resample
from kws_assets.core.speech import tts
from kws_assets.core.speech.alignment import Aligner
from kws_assets.core.speech.dtw_aligner import (
    DtwAligner,
    FrameFeatures,
    LanguageNotSpokenError,
    band_limits,
    dtw,
    render_reference,
    speech_bounds,
)

SR = 16000
ALIGNMENT_LANGUAGE = "en"
# Recording voices: none is the alignment voice ("en") or one of its variants.
RECORDING_VOICES = [
    "en-us+f4",
    "en-029+m6",
    "en-gb-scotland+m4",
    "en-us-nyc+m7",
    "en-gb-x-rp+f2",
    "en-us+m1",
]
WORDS = (
    "please",
    "say",
    "now",
    "the",
    "word",
    "next",
    "heard",
    "again",
    "will",
    "then",
    "maybe",
    "after",
    "today",
    "before",
    "dinner",
    "house",
    "green",
    "water",
    "seven",
    "paper",
    "music",
    "little",
    "window",
    "morning",
    "garden",
    "never",
    "yellow",
    "table",
    "people",
    "number",
    "open",
    "river",
    "coffee",
    "simple",
    "yes",
    "stop",
    "left",
    "right",
)
UTTERANCES_PER_VOICE = 3
SNR_DB = (5.0, 20.0)
BOUNDARY_TOLERANCE_S = 0.1
MIN_AGREEMENT = 0.85  # issue 8: at least 85% of word boundaries within 100 ms of pocketsphinx


def _recording(
    text: str, voice: str, rng: random.Random, noise_rng: np.random.Generator
) -> np.ndarray:
    spoken = tts.synthesize(
        text, voice=voice, rate=rng.choice([130, 160, 190]), pitch=rng.randint(30, 70)
    )
    x = resample(spoken.samples, spoken.sample_rate, SR)
    lead, tail = (np.zeros(int(SR * rng.uniform(0.05, 1.0)), np.float32) for _ in range(2))
    x = np.concatenate([lead, x, tail])
    noise = colored_noise(rng.choice(["white", "pink", "brown"]), len(x), noise_rng)
    return mix_at_snr(x, noise, rng.uniform(*SNR_DB))


@pytest.fixture(scope="module")
def dtw_aligner() -> DtwAligner:
    return DtwAligner(ALIGNMENT_LANGUAGE)


@pytest.fixture(scope="module")
def corpus(dtw_aligner) -> list[dict]:
    """Noisy recordings with their pocketsphinx and DTW alignments (plus a wrong transcript)."""
    rng, noise_rng = random.Random(8), np.random.default_rng(8)
    pocketsphinx = Aligner(sample_rate=SR)
    items = []
    for voice in RECORDING_VOICES:
        assert voice.split("+")[0] != dtw_aligner.voice
        for _ in range(UTTERANCES_PER_VOICE):
            words = rng.sample(WORDS, rng.randint(4, 7))
            text = " ".join(words)
            wrong = " ".join(rng.sample([w for w in WORDS if w not in words], len(words)))
            x = _recording(text, voice, rng, noise_rng)
            items.append(
                {
                    "voice": voice,
                    "text": text,
                    "audio": x,
                    "pocketsphinx": pocketsphinx.align(x, SR, text),
                    "dtw": dtw_aligner.align(x, SR, text),
                    "wrong": dtw_aligner.align(x, SR, wrong),
                }
            )
    return items


def test_word_boundaries_agree_with_pocketsphinx(corpus):
    starts, ends = [], []
    for item in corpus:
        reference, result = item["pocketsphinx"], item["dtw"]
        assert result.ok, (item["voice"], item["text"], result.error)
        if not reference.ok:
            continue
        assert [w.word for w in result.words] == [w.word for w in reference.words]
        for mine, theirs in zip(result.words, reference.words, strict=True):
            assert 0.0 <= mine.start_s < mine.end_s <= len(item["audio"]) / SR
            starts.append(abs(mine.start_s - theirs.start_s))
            ends.append(abs(mine.end_s - theirs.end_s))
    assert len(starts) >= 0.8 * sum(len(i["text"].split()) for i in corpus), "too few comparable"
    start_agreement = float(np.mean(np.array(starts) <= BOUNDARY_TOLERANCE_S))
    end_agreement = float(np.mean(np.array(ends) <= BOUNDARY_TOLERANCE_S))
    print(
        f"\nDTW vs pocketsphinx over {len(starts)} words: starts within 100 ms "
        f"{start_agreement:.1%} (median {np.median(starts) * 1000:.0f} ms), ends "
        f"{end_agreement:.1%} (median {np.median(ends) * 1000:.0f} ms)"
    )
    assert start_agreement >= MIN_AGREEMENT
    assert end_agreement >= MIN_AGREEMENT


def test_a_wrong_transcript_scores_lower_than_the_right_one(corpus):
    for item in corpus:
        right = np.mean([w.confidence for w in item["dtw"].words])
        wrong = np.mean([w.confidence for w in item["wrong"].words])
        assert 0.0 <= wrong < right <= 1.0, (item["text"], right, wrong)
    rights = [w.confidence for i in corpus for w in i["dtw"].words]
    wrongs = [w.confidence for i in corpus for w in i["wrong"].words]
    assert np.median(rights) > np.median(wrongs) + 0.3


def test_garbage_input_fails_cleanly(dtw_aligner):
    rng = np.random.default_rng(0)
    text = "please say the word again"
    noise = (rng.standard_normal(3 * SR) * 0.1).astype(np.float32)
    cases = {
        "white noise": noise,
        "digital silence": np.zeros(SR, np.float32),
        "NaN": np.full(SR, np.nan, np.float32),
        "empty": np.zeros(0, np.float32),
        "too short": noise[:100],
    }
    for name, audio in cases.items():
        result = dtw_aligner.align(audio, SR, text)
        assert not result.ok and result.error, name
    assert not dtw_aligner.align(noise, SR, "  !?  ").ok
    assert not dtw_aligner.align(noise, 0, text).ok
    speech = resample(tts.synthesize(text, voice="en-us+f2").samples, tts.native_sample_rate(), SR)
    far_too_long = "said " * 60
    result = dtw_aligner.align(speech, SR, far_too_long)
    assert not result.ok and "length" in result.error


def test_words_espeak_merges_are_reported_not_dropped():
    aligner = DtwAligner("fr")
    text = "qu'est-ce que tu fais"
    spoken = tts.synthesize(text, voice="fr+m3")
    result = aligner.align(spoken.samples, spoken.sample_rate, text)
    assert not result.ok
    assert result.oov_words == ["que"] and "que" in result.error


def test_any_sample_rate_gives_the_same_boundaries(dtw_aligner):
    text = "the garden window is open"
    spoken = tts.synthesize(text, voice="en-us+m3")
    base = resample(spoken.samples, spoken.sample_rate, SR)
    at_16k = dtw_aligner.align(base, SR, text)
    assert at_16k.ok
    for rate in (8000, 44100):
        other = dtw_aligner.align(resample(base, SR, rate), rate, text)
        assert other.ok
        for a, b in zip(at_16k.words, other.words, strict=True):
            assert abs(a.start_s - b.start_s) <= 0.03 and abs(a.end_s - b.end_s) <= 0.03


@pytest.mark.parametrize("lead_s,tail_s", [(3.0, 0.2), (0.2, 4.0), (6.0, 6.0)])
def test_long_pauses_around_the_speech(dtw_aligner, lead_s, tail_s):
    """Pauses longer than the band would allow are cut off first; the truth is espeak-ng's own
    word events of the recording."""
    text = "please say the word yellow again before dinner"
    spoken = tts.synthesize(text, voice="en-us+f4", rate=170)
    speech = resample(spoken.samples, spoken.sample_rate, SR)
    x = np.concatenate(
        [np.zeros(int(lead_s * SR), np.float32), speech, np.zeros(int(tail_s * SR), np.float32)]
    )
    x = mix_at_snr(x, colored_noise("pink", len(x), np.random.default_rng(3)), 12.0)
    first, last = speech_bounds(x, SR // 100)
    assert abs(first - lead_s * 100) <= 30 and abs(last - (lead_s * 100 + len(speech) / 160)) <= 30
    result = dtw_aligner.align(x, SR, text)
    assert result.ok, result.error
    for word, event in zip(result.words, spoken.words, strict=True):
        assert abs(word.start_s - (lead_s + event.start_s)) <= BOUNDARY_TOLERANCE_S, word


def test_speech_bounds_of_clean_and_noise_only_audio():
    tone = np.sin(np.arange(SR) * 0.1).astype(np.float32) * 0.5
    x = np.concatenate([np.zeros(SR, np.float32), tone, np.zeros(SR // 2, np.float32)])
    first, last = speech_bounds(x, SR // 100)
    assert abs(first - 100) <= 3 and abs(last - 200) <= 3
    noise = np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32)
    assert speech_bounds(noise, SR // 100) == (0, 200)  # no contrast: nothing is cut


def test_unknown_language_is_refused_at_construction():
    with pytest.raises(LanguageNotSpokenError):
        DtwAligner("xx")


def test_reference_words_follow_espeak_word_events():
    features = FrameFeatures(tts.native_sample_rate())
    words = ["uno", "dos", "veintitrés", "arriba"]
    reference = render_reference(words, "es", 175, features)
    assert [w.word for w in reference.words] == words and not reference.unplaced
    frames = [(w.start_frame, w.end_frame) for w in reference.words]
    assert all(a < b for a, b in frames)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(frames))
    assert frames[0][0] == reference.pad_frames  # the rendering is trimmed to its first sound


# ------------------------------------------------------------------------------ DTW itself


def _naive_dtw_cost(reference: np.ndarray, query: np.ndarray, radius: float) -> float:
    n, m = len(reference), len(query)
    lo, hi = band_limits(n, m, radius)
    cost = np.linalg.norm(reference[:, None] - query[None], axis=2)
    total = np.full((n, m), np.inf)
    for i in range(n):
        for j in range(lo[i], hi[i] + 1):
            if i == j == 0:
                total[0, 0] = cost[0, 0]
                continue
            best = np.inf
            if i and j:
                best = min(best, total[i - 1, j - 1] + 2 * cost[i, j])
            if i:
                best = min(best, total[i - 1, j] + cost[i, j])
            if j:
                best = min(best, total[i, j - 1] + cost[i, j])
            total[i, j] = best
    return total[-1, -1] / (n + m)


@pytest.mark.parametrize(
    "n,m,radius",
    [(30, 50, 5), (50, 30, 3), (40, 40, 2), (10, 80, 1), (80, 10, 4), (1, 6, 1), (6, 1, 1)],
)
def test_banded_dtw_matches_the_textbook_recurrence(n, m, radius):
    rng = np.random.default_rng(n * 100 + m)
    reference, query = rng.standard_normal((n, 4)), rng.standard_normal((m, 4))
    path = dtw(reference, query, radius)
    assert path.normalized_cost == pytest.approx(_naive_dtw_cost(reference, query, radius))
    steps_i, steps_j = np.diff(path.reference), np.diff(path.query)
    assert (path.reference[0], path.query[0]) == (0, 0)
    assert (path.reference[-1], path.query[-1]) == (n - 1, m - 1)
    assert set(zip(steps_i, steps_j, strict=True)) <= {(1, 1), (1, 0), (0, 1)}
    lo, hi = band_limits(n, m, radius)
    assert np.all((lo[path.reference] <= path.query) & (path.query <= hi[path.reference]))
    weights = np.where(steps_i + steps_j == 2, 2.0, 1.0)
    walked = path.local_costs[0] + float(np.sum(weights * path.local_costs[1:]))
    assert walked / (n + m) == pytest.approx(path.normalized_cost)  # the backtrack is the optimum


def test_identical_sequences_warp_along_the_diagonal():
    frames = np.random.default_rng(1).standard_normal((60, 6))
    path = dtw(frames, frames.copy(), 10)
    assert np.array_equal(path.reference, path.query)
    assert path.normalized_cost == pytest.approx(0.0, abs=1e-6)


def test_chunked_band_distances_give_the_same_path(monkeypatch):
    from kws_assets.core.speech import dtw_aligner

    rng = np.random.default_rng(5)
    reference, query = rng.standard_normal((120, 8)), rng.standard_normal((170, 8))
    whole = dtw(reference, query, 20)
    monkeypatch.setattr(dtw_aligner, "BAND_COST_CHUNK_CELLS", 200)  # a few rows per chunk
    chunked = dtw(reference, query, 20)
    assert np.array_equal(whole.reference, chunked.reference)
    assert np.array_equal(whole.query, chunked.query)
    assert chunked.normalized_cost == pytest.approx(whole.normalized_cost)
