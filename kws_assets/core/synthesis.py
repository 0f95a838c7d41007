"""Synthetic keyword clips: each keyword spoken by espeak-ng over a voice x rate x pitch grid,
centred in a fixed-length clip, plus copies with background noise mixed at a random SNR, and
``_silence_`` examples made of noise alone.

Every clip is described by a :class:`ClipRecipe`; rendering a recipe is deterministic (the noise
generator is seeded from the recipe), so the same config always yields the same audio.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from kws_assets.config import SILENCE_LABEL, AudioSettings, NoiseSettings, TtsSettings
from kws_assets.core import tts
from kws_assets.core.audio import colored_noise, cut_centered, mix_at_snr, resample, scale_to_dbfs
from kws_assets.core.clip_store import ClipStore, clip_id_for
from kws_assets.core.corpus import tts_speaker_id

SYNTHETIC_SOURCE = "synthetic"
NOISE_SOURCE = "noise"
TRIM_THRESHOLD_DB = -40.0


@dataclass(frozen=True)
class ClipRecipe:
    """How one synthetic clip is made; ``origin_id`` names the clean clip a noisy copy came from."""

    label: str
    text: str
    voice: str
    rate: int
    pitch: int
    word_gap: int
    noise_kind: str | None = None
    snr_db: float | None = None
    copy_index: int = 0
    salt: str = ""

    @property
    def origin_id(self) -> str:
        return f"tts|{self.text}|{self.voice}|r{self.rate}|p{self.pitch}|g{self.word_gap}"

    @property
    def clip_id(self) -> str:
        return clip_id_for(SYNTHETIC_SOURCE, self.origin_id, self.label, self.noise_kind,
                           self.copy_index, self.salt)

    @property
    def speaker(self) -> str:
        return tts_speaker_id(self.voice)

    def seed(self) -> int:
        return int(hashlib.sha256(self.clip_id.encode()).hexdigest()[:8], 16)


def keyword_recipes(keywords: list[str], grid: TtsSettings, noise: NoiseSettings,
                    seed: int = 0, salt: str = "") -> list[ClipRecipe]:
    """The full grid: one clean recipe per (keyword, voice, rate, pitch) plus its noisy copies.

    ``salt`` (a hash of the audio settings) goes into every clip id, so clips rendered for other
    audio settings are never mistaken for these.
    """
    recipes = []
    rng = np.random.default_rng(seed)
    for keyword in keywords:
        for voice in grid.voices:
            for rate in grid.rates:
                for pitch in grid.pitches:
                    clean = ClipRecipe(keyword, keyword, voice, rate, pitch, grid.word_gap,
                                       salt=salt)
                    recipes.append(clean)
                    for copy in range(noise.noisy_copies_per_clip):
                        recipes.append(ClipRecipe(
                            keyword, keyword, voice, rate, pitch, grid.word_gap,
                            noise_kind=str(rng.choice(noise.kinds)),
                            snr_db=float(rng.uniform(noise.snr_db_min, noise.snr_db_max)),
                            copy_index=copy + 1, salt=salt,
                        ))
    return recipes


def render_keyword_clip(recipe: ClipRecipe, audio: AudioSettings) -> np.ndarray:
    """Synthesize the recipe's text, centre the spoken part in a clip, mix noise if asked."""
    synthesis = tts.synthesize(recipe.text, voice=recipe.voice, rate=recipe.rate,
                               pitch=recipe.pitch, word_gap=recipe.word_gap)
    samples = resample(synthesis.samples, synthesis.sample_rate, audio.sample_rate)
    spoken, offset = tts.trim_silence(samples, audio.sample_rate, threshold_db=TRIM_THRESHOLD_DB)
    centre_s = (offset + len(spoken) / 2) / audio.sample_rate
    clip = cut_centered(samples, audio.sample_rate, centre_s, audio.clip_samples, audio.fade_ms)
    if recipe.noise_kind is not None and recipe.snr_db is not None:
        rng = np.random.default_rng(recipe.seed())
        noise = colored_noise(recipe.noise_kind, len(clip), rng)
        clip = mix_at_snr(clip, noise, recipe.snr_db)
    return clip.astype(np.float32)


@dataclass(frozen=True)
class SilenceRecipe:
    index: int
    noise_kind: str
    level_dbfs: float
    salt: str = ""

    @property
    def clip_id(self) -> str:
        return clip_id_for(NOISE_SOURCE, self.noise_kind, self.index, f"{self.level_dbfs:.2f}",
                           self.salt)

    @property
    def speaker(self) -> str:
        # Each silence clip is its own "speaker", so silence spreads over all splits by hash.
        return f"noise:{self.index}"

    @property
    def origin_id(self) -> str:
        return f"noise|{self.noise_kind}|{self.level_dbfs:.2f}|{self.index}"


def silence_recipes(noise: NoiseSettings, seed: int = 0, salt: str = "") -> list[SilenceRecipe]:
    rng = np.random.default_rng(seed)
    return [
        SilenceRecipe(i, str(rng.choice(noise.kinds)),
                      float(rng.uniform(noise.silence_level_dbfs_min, noise.silence_level_dbfs_max)),
                      salt=salt)
        for i in range(noise.silence_clips)
    ]


def render_silence_clip(recipe: SilenceRecipe, audio: AudioSettings) -> np.ndarray:
    rng = np.random.default_rng(int(recipe.clip_id[:8], 16))
    noise = colored_noise(recipe.noise_kind, audio.clip_samples, rng)
    return scale_to_dbfs(noise, recipe.level_dbfs).astype(np.float32)



@dataclass(frozen=True)
class RenderFailure:
    clip_id: str
    label: str
    origin_id: str
    reason: str


def render_to_store(recipes: list[ClipRecipe | SilenceRecipe], audio: AudioSettings, store: ClipStore,
                    language: str) -> tuple[list[dict], list[RenderFailure]]:
    """Render each recipe into the clip store (skipping clips already there) and describe it.

    Rendering is deterministic, so a clip whose id is already stored is reused, not redone.
    A recipe that espeak-ng cannot speak becomes a failure row, never an exception for the batch.
    """
    rows, failures = [], []
    for recipe in recipes:
        is_silence = isinstance(recipe, SilenceRecipe)
        label = SILENCE_LABEL if is_silence else recipe.label
        source = NOISE_SOURCE if is_silence else SYNTHETIC_SOURCE
        key = store.key_for(source, label, recipe.clip_id)
        if not store.exists(key):
            try:
                samples = (render_silence_clip(recipe, audio) if is_silence
                           else render_keyword_clip(recipe, audio))
            except tts.TtsError as exc:
                failures.append(RenderFailure(recipe.clip_id, label, recipe.origin_id, str(exc)))
                continue
            store.put(key, samples, audio.sample_rate)
        rows.append({
            "clip_id": recipe.clip_id, "uri": store.uri_for(key), "label": label, "source": source,
            "speaker": recipe.speaker, "language": language, "origin_id": recipe.origin_id,
            "start_s": 0.0, "sample_rate": audio.sample_rate, "num_samples": audio.clip_samples,
        })
    return rows, failures
