"""The other heavy steps, one at a time: espeak-ng synthesis, pocketsphinx alignment, WAV decode."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from bench.clips import VOICES, WORDS, ClipSet
from bench.timing import interleaved
from kws_assets.core.audio.io import read_audio, resample
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.features.table import decode_clip, read_uri_bytes
from kws_assets.core.speech import tts
from kws_assets.core.speech.alignment import Aligner

# Carrier sentences for the alignment benchmark (dictionary words, keywords among fillers).
SENTENCES = (
    "please say yes to the morning plan",
    "we should go down to the river now",
    "turn the light off before you leave",
    "she wants to stop at the old market",
    "move it left a little and then right",
    "the answer is no for this quarter",
    "pick it up when the bell rings",
    "switch the radio on after dinner",
)
ALIGN_VOICES = ("en-us+m2", "en-us+f1")


def run_synthesis_bench(n_utterances: int, rounds: int) -> dict:
    """espeak-ng utterances per second (keyword utterances across voices and rates), and how
    many seconds of audio it produces per second."""
    jobs = [
        (WORDS[i % len(WORDS)], VOICES[i % len(VOICES)], 140 + 20 * (i % 3))
        for i in range(n_utterances)
    ]
    audio_s = 0.0

    def synthesize_all() -> None:
        nonlocal audio_s
        audio_s = 0.0
        for word, voice, rate in jobs:
            out = tts.synthesize(word, voice=voice, rate=rate)
            audio_s += len(out.samples) / out.sample_rate

    timing = interleaved({"synthesize": (synthesize_all, n_utterances)}, rounds=rounds)[
        "synthesize"
    ]
    return {
        "utterances": n_utterances,
        "timing": timing.as_dict(),
        "utterances_per_s": timing.best_rate,
        "audio_seconds_per_s": audio_s / timing.best_s,
    }


def run_alignment_bench(spec: FeatureSpec, n_utterances: int, rounds: int) -> dict:
    """pocketsphinx forced alignment: real-time factor (processing time / audio duration)."""
    utterances = []
    for i in range(n_utterances):
        sentence = SENTENCES[i % len(SENTENCES)]
        out = tts.synthesize(
            sentence, voice=ALIGN_VOICES[(i // len(SENTENCES)) % len(ALIGN_VOICES)], rate=160
        )
        utterances.append((resample(out.samples, out.sample_rate, spec.sample_rate), sentence))
    audio_s = sum(len(samples) for samples, _ in utterances) / spec.sample_rate
    aligner = Aligner(sample_rate=spec.sample_rate)
    aligned = 0

    def align_all() -> None:
        nonlocal aligned
        aligned = sum(
            aligner.align(samples, spec.sample_rate, text).ok for samples, text in utterances
        )

    timing = interleaved({"align": (align_all, n_utterances)}, rounds=rounds)["align"]
    return {
        "utterances": n_utterances,
        "audio_seconds": audio_s,
        "aligned_ok": aligned,
        "timing": timing.as_dict(),
        "real_time_factor": timing.best_s / audio_s,
        "times_real_time": audio_s / timing.best_s,
        "utterances_per_s": timing.best_rate,
    }


def run_decode_bench(spec: FeatureSpec, clip_set: ClipSet, rounds: int) -> dict:
    """WAV decode, clips/s: ``core.audio.read_audio`` (the general reader), the feature path's
    PCM_16 fast path (``feature_table.decode_clip``) and plain ``soundfile.read`` as a peer."""
    paths = [str(p) for p in clip_set.paths]
    # Every decoder must give the same samples (the fast path is exact for PCM_16).
    sample = paths[: min(8, len(paths))]
    reference = np.stack([read_audio(p, target_sr=spec.sample_rate).samples for p in sample])
    fast = np.stack([decode_clip(read_uri_bytes(p), p, spec) for p in sample])
    timings = interleaved(
        {
            "read_audio": (
                lambda: [read_audio(p, target_sr=spec.sample_rate) for p in paths],
                len(paths),
            ),
            "feature_path_decode": (
                lambda: [decode_clip(read_uri_bytes(p), p, spec) for p in paths],
                len(paths),
            ),
            "soundfile_read": (lambda: [sf.read(p, dtype="float32") for p in paths], len(paths)),
        },
        rounds=rounds,
    )
    best = {name: t.best_rate for name, t in timings.items()}
    return {
        "clips": len(paths),
        "timings": {name: t.as_dict() for name, t in timings.items()},
        "clips_per_s": best,
        "fast_path_max_abs_diff_vs_read_audio": float(np.abs(reference - fast).max()),
        "fast_path_speedup_vs_read_audio": best["feature_path_decode"] / best["read_audio"],
    }
