"""Language-agnostic alignment (issue 8): how well the TTS+DTW aligner agrees with pocketsphinx,
how well it finds words in other languages, and how fast both are.

* **English agreement**: recordings spoken by espeak-ng voices other than the alignment voice,
  with leading/trailing pauses and coloured noise at 5-20 dB SNR, aligned by pocketsphinx and by
  TTS+DTW; the share of word starts and ends within 100 ms of pocketsphinx's, and the median
  differences.  A wrong transcript (other words, same length) gives the confidence contrast.
* **Other languages**: the recordings are espeak-ng speech, so its own word events are the
  truth; the share of TTS+DTW word starts within 100 ms of them, per language.
* **Speed**: real-time factor (processing seconds per audio second) of both aligners on the
  same English recordings, timed in interleaved rounds; the ratio is the comparable number.

    python -m bench.alignment_agreement [--utterances 24] [--rounds 3]

``run_alignment_agreement_bench`` returns the numbers as a dict for ``bench.run``'s report.
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np

from bench.timing import interleaved
from kws_assets.core.audio.io import colored_noise, mix_at_snr, resample
from kws_assets.core.speech import tts
from kws_assets.core.speech.alignment import Aligner
from kws_assets.core.speech.dtw_aligner import DtwAligner
from kws_assets.core.speech.fillers import FILLER_WORDS

SR = 16000
TOLERANCE_S = 0.1
SNR_DB = (5.0, 20.0)
PAUSE_S = (0.05, 1.0)
RATES_WPM = (130, 160, 190)
ENGLISH_WORDS = (
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
    "down",
    "off",
)
# Recording voices: none is an alignment voice ("en" for English, the language code otherwise).
ENGLISH_VOICES = (
    "en-us+f4",
    "en-029+m6",
    "en-gb-scotland+m4",
    "en-us-nyc+m7",
    "en-gb-x-rp+f2",
    "en-us+m1",
)
OTHER_LANGUAGE_VOICES = {
    "es": ("es-419+f2", "es+m4"),
    "fr": ("fr-be+f3", "fr+m2"),
    "de": ("de+f4", "de+m6"),
}


def _noisy(
    samples: np.ndarray, sample_rate: int, rng: random.Random, noise_rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """``samples`` at SR between random pauses, under coloured noise; and the lead in seconds."""
    x = resample(samples, sample_rate, SR)
    lead_s = rng.uniform(*PAUSE_S)
    x = np.concatenate(
        [
            np.zeros(int(SR * lead_s), np.float32),
            x,
            np.zeros(int(SR * rng.uniform(*PAUSE_S)), np.float32),
        ]
    )
    noise = colored_noise(rng.choice(["white", "pink", "brown"]), len(x), noise_rng)
    return mix_at_snr(x, noise, rng.uniform(*SNR_DB)), lead_s


def english_recordings(n_utterances: int, seed: int = 0) -> list[dict]:
    """Noisy English recordings with their transcript and a wrong transcript of equal length."""
    rng, noise_rng = random.Random(seed), np.random.default_rng(seed)
    items = []
    for i in range(n_utterances):
        words = rng.sample(ENGLISH_WORDS, rng.randint(4, 8))
        wrong = rng.sample([w for w in ENGLISH_WORDS if w not in words], len(words))
        voice = ENGLISH_VOICES[i % len(ENGLISH_VOICES)]
        spoken = tts.synthesize(
            " ".join(words), voice=voice, rate=rng.choice(RATES_WPM), pitch=rng.randint(30, 70)
        )
        audio, _ = _noisy(spoken.samples, spoken.sample_rate, rng, noise_rng)
        items.append(
            {"voice": voice, "text": " ".join(words), "wrong": " ".join(wrong), "audio": audio}
        )
    return items


def _share_within(errors: list[float]) -> float:
    return float(np.mean(np.array(errors) <= TOLERANCE_S)) if errors else float("nan")


def english_agreement(items: list[dict], pocketsphinx: Aligner, dtw: DtwAligner) -> dict:
    """Word boundary agreement of TTS+DTW with pocketsphinx, and the confidence contrast."""
    starts, ends, right, wrong = [], [], [], []
    both_ok = dtw_failed = 0
    for item in items:
        reference = pocketsphinx.align(item["audio"], SR, item["text"])
        result = dtw.align(item["audio"], SR, item["text"])
        right += [w.confidence for w in result.words]
        wrong += [w.confidence for w in dtw.align(item["audio"], SR, item["wrong"]).words]
        if not result.ok:
            dtw_failed += 1
            continue
        if not reference.ok:
            continue
        both_ok += 1
        for mine, theirs in zip(result.words, reference.words, strict=True):
            starts.append(abs(mine.start_s - theirs.start_s))
            ends.append(abs(mine.end_s - theirs.end_s))
    return {
        "utterances": len(items),
        "utterances_compared": both_ok,
        "dtw_failed": dtw_failed,
        "words_compared": len(starts),
        "starts_within_100ms": _share_within(starts),
        "ends_within_100ms": _share_within(ends),
        "median_start_error_ms": float(np.median(starts) * 1000) if starts else float("nan"),
        "median_end_error_ms": float(np.median(ends) * 1000) if ends else float("nan"),
        "p90_start_error_ms": float(np.percentile(starts, 90) * 1000) if starts else float("nan"),
        "median_confidence_right_transcript": float(np.median(right)),
        "median_confidence_wrong_transcript": float(np.median(wrong)) if wrong else float("nan"),
    }


def other_language_agreement(per_voice: int, seed: int = 0) -> dict:
    """Per language: TTS+DTW word starts against espeak-ng's own word events of the recording."""
    rng, noise_rng = random.Random(seed), np.random.default_rng(seed)
    out = {}
    for language, voices in OTHER_LANGUAGE_VOICES.items():
        aligner = DtwAligner(language)
        errors, failed = [], 0
        for i in range(per_voice * len(voices)):
            voice = voices[i % len(voices)]
            words = rng.sample(FILLER_WORDS[language], rng.randint(4, 7))
            spoken = tts.synthesize(" ".join(words), voice=voice, rate=rng.choice(RATES_WPM))
            audio, lead_s = _noisy(spoken.samples, spoken.sample_rate, rng, noise_rng)
            result = aligner.align(audio, SR, " ".join(words))
            if not result.ok or len(spoken.words) != len(result.words):
                failed += 1
                continue
            errors += [
                abs(w.start_s - (e.start_s + lead_s))
                for w, e in zip(result.words, spoken.words, strict=True)
            ]
        out[language] = {
            "alignment_voice": aligner.voice,
            "recording_voices": list(voices),
            "words": len(errors),
            "failed_utterances": failed,
            "starts_within_100ms_of_espeak_events": _share_within(errors),
            "median_start_error_ms": float(np.median(errors) * 1000) if errors else float("nan"),
        }
    return out


def alignment_speed(items: list[dict], pocketsphinx: Aligner, dtw: DtwAligner, rounds: int) -> dict:
    """Real-time factors of both aligners over the same recordings (best of interleaved rounds)."""
    audio_s = sum(len(i["audio"]) for i in items) / SR

    def run(aligner) -> None:
        for item in items:
            aligner.align(item["audio"], SR, item["text"])

    timings = interleaved(
        {
            "pocketsphinx": (lambda: run(pocketsphinx), len(items)),
            "tts_dtw": (lambda: run(dtw), len(items)),
        },
        rounds=rounds,
    )
    rtf = {name: t.best_s / audio_s for name, t in timings.items()}
    return {
        "audio_seconds": audio_s,
        "timings": {n: t.as_dict() for n, t in timings.items()},
        "real_time_factor": rtf,
        "tts_dtw_speedup_vs_pocketsphinx": rtf["pocketsphinx"] / rtf["tts_dtw"],
    }


def run_alignment_agreement_bench(
    n_utterances: int = 24, rounds: int = 3, seed: int = 0, other_language_per_voice: int = 4
) -> dict:
    """Everything above, as one JSON-able dict."""
    items = english_recordings(n_utterances, seed)
    pocketsphinx, dtw = Aligner(sample_rate=SR), DtwAligner("en")
    return {
        "english_vs_pocketsphinx": {
            "alignment_voice": dtw.voice,
            "recording_voices": list(ENGLISH_VOICES),
            "snr_db": list(SNR_DB),
            **english_agreement(items, pocketsphinx, dtw),
        },
        "other_languages_vs_espeak_events": other_language_agreement(
            other_language_per_voice, seed
        ),
        "speed": alignment_speed(items, pocketsphinx, dtw, rounds),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(
        json.dumps(run_alignment_agreement_bench(args.utterances, args.rounds, args.seed), indent=2)
    )


if __name__ == "__main__":
    main()
