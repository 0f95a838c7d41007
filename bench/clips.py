"""The benchmark's clips: espeak-ng words centred in 1-s clips, with noise, as arrays and WAVs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_assets.core.audio.io import colored_noise, cut_centered, mix_at_snr, resample, write_wav
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.speech import tts

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "seven", "marvin")
VOICES = ("en-us+m1", "en-us+f2", "en+m3", "en-gb-x-rp+f4")
NOISE_KINDS = ("white", "pink", "brown")
SNR_RANGE_DB = (5.0, 30.0)
FADE_MS = 10.0
SEED = 1234


@dataclass
class ClipSet:
    """``samples`` float32 ``[n, clip_samples]`` and the same clips as 16-bit WAV files."""

    samples: np.ndarray
    paths: list[Path]

    def __len__(self) -> int:
        return len(self.paths)


def spoken_words(spec: FeatureSpec, count: int) -> list[np.ndarray]:
    """``count`` different word recordings (words x voices), at the spec's rate, 1 s each."""
    out = []
    for i in range(count):
        word, voice = WORDS[i % len(WORDS)], VOICES[(i // len(WORDS)) % len(VOICES)]
        synthesis = tts.synthesize(word, voice=voice, rate=150 + 10 * (i % 4))
        samples = resample(synthesis.samples, synthesis.sample_rate, spec.sample_rate)
        spoken, offset = tts.trim_silence(samples, spec.sample_rate)
        centre_s = (offset + len(spoken) / 2) / spec.sample_rate
        out.append(cut_centered(samples, spec.sample_rate, centre_s, spec.clip_samples, FADE_MS))
    return out


def make_clip_set(spec: FeatureSpec, n_clips: int, folder: Path, n_words: int = 24) -> ClipSet:
    """``n_clips`` noisy variants of ``n_words`` spoken words, written to ``folder`` as WAVs.

    The array holds exactly what the WAVs decode to (16-bit quantised), so every peer sees the
    same samples whether it reads files or arrays.
    """
    rng = np.random.default_rng(SEED)
    words = spoken_words(spec, min(n_words, n_clips))
    folder.mkdir(parents=True, exist_ok=True)
    clips = np.empty((n_clips, spec.clip_samples), dtype=np.float32)
    paths = []
    for i in range(n_clips):
        noise = colored_noise(NOISE_KINDS[i % len(NOISE_KINDS)], spec.clip_samples, rng)
        mixed = mix_at_snr(words[i % len(words)], noise, float(rng.uniform(*SNR_RANGE_DB)))
        quantised = np.round(np.clip(mixed, -1.0, 32767 / 32768) * 32768) / 32768
        clips[i] = quantised.astype(np.float32)
        path = folder / f"clip_{i:05d}.wav"
        write_wav(path, clips[i], spec.sample_rate)
        paths.append(path)
    return ClipSet(clips, paths)
