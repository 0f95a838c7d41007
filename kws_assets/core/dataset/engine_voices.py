"""Keyword and ``_unknown_`` clips spoken by the other TTS engines (flite, festival, piper), each
voice a speaker, each render drawn at its own rate and pitch and pushed towards another speaker
by a perturbation (formant warp, pitch, tempo).

Why: a model trained on one engine learns that engine.  espeak-ng's formant synthesis is far
from a human voice; flite's and festival's recorded-speaker voices (CMU ARCTIC) and Piper's
neural voice are closer, and every extra engine is a different rendering of the same words.

A voice is the speaker of the speaker-disjoint split (``flite:slt``): a perturbed render stays
that voice's speaker, so no perturbed copy of a test voice ever trains.  The perturbation drawn
for each render is recorded in its ``origin_id`` (and so in the clip id): the clip says how it
was made.  Engines give no word timings, so these clips are isolated words (centred on their
sound) and windows of running speech (sentences of common words cut at a random point); carrier
phrases stay with espeak-ng, which reports where each word starts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from kws_assets.core.audio.io import (
    SpeechOverWindow,
    check_speech_fits,
    colored_noise,
    cut_centered,
    resample,
    scale_to_dbfs,
)
from kws_assets.core.dataset.perturb import Perturbation, draw_perturbation, perturb
from kws_assets.core.speech import tts
from kws_assets.core.speech.engines import TtsEngine, TtsEngineError, available_engines
from kws_assets.core.storage.clip_store import clip_id_for
from kws_assets.settings import (
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AudioSettings,
    EngineVoiceSettings,
    NegativeSettings,
    SpeakerPerturbationSettings,
)

ENGINE_SOURCE = "synthetic"
"""Clips of every TTS engine share the synthetic source; the speaker id names the engine."""
TRIM_THRESHOLD_DB = -40.0
SELF_NOISE_DBFS = (-75.0, -55.0)
WINDOWS_PER_VOICE_RENDER = 0.5
"""Running-speech windows per keyword render of a voice (of each keyword partition)."""


def engine_speaker_id(engine: str, voice: str) -> str:
    """The speaker id of an engine's voice: ``flite:slt``, ``piper:en_US-joe-medium``."""
    return f"{engine}:{voice}"


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return np.random.default_rng(int(digest[:16], 16))


@dataclass(frozen=True)
class EngineRecipe:
    """How one clip of another engine is made (deterministic: the same recipe, the same clip)."""

    label: str
    text: str
    engine: str
    voice: str
    rate: float
    pitch: float
    seed: int
    perturbation: Perturbation | None = None
    floor_dbfs: float | None = None
    crop_at: float | None = None
    salt: str = ""

    @property
    def origin_id(self) -> str:
        p = self.perturbation
        warp = "" if p is None else f"|w{p.warp_factor:.4f}|s{p.semitones:.4f}|t{p.tempo:.4f}"
        floor = "" if self.floor_dbfs is None else f"|n{self.floor_dbfs:.1f}"
        crop = "" if self.crop_at is None else f"|c{self.crop_at:.3f}"
        return (
            f"{self.engine}|{self.text}|{self.voice}|r{self.rate:.3f}|p{self.pitch:.3f}"
            f"|seed{self.seed}{warp}{floor}{crop}"
        )

    @property
    def clip_id(self) -> str:
        return clip_id_for(ENGINE_SOURCE, self.origin_id, self.label, self.salt)

    @property
    def speaker(self) -> str:
        return engine_speaker_id(self.engine, self.voice)

    @property
    def language(self) -> str | None:
        return None

    def render(
        self, audio: AudioSettings, engines: dict[str, TtsEngine] | None = None
    ) -> np.ndarray:
        """The clip: rendered, resampled, perturbed, centred (or cut at ``crop_at`` of the
        spoken stretch), over a faint pink noise floor.  Raises :class:`TtsEngineError`, or
        :class:`SpeechOverWindow` for a keyword longer than the clip (quarantined, not cut)."""
        from kws_assets.core.speech.engines import ENGINES

        engine = (engines or ENGINES)[self.engine]
        rendered = engine.render(
            self.text, self.voice, rate=self.rate, pitch=self.pitch, seed=self.seed
        )
        sr = audio.sample_rate
        samples = resample(rendered.samples, rendered.sample_rate, sr)
        if self.perturbation is not None and not self.perturbation.is_identity:
            samples = perturb(samples, sr, self.perturbation)
        spoken, offset = tts.trim_silence(samples, sr, threshold_db=TRIM_THRESHOLD_DB)
        if spoken.size == 0:
            raise TtsEngineError(f"{self.engine} produced no audible speech for {self.text!r}")
        if self.crop_at is None and self.label not in (UNKNOWN_LABEL, SILENCE_LABEL):
            check_speech_fits(len(spoken), audio.clip_samples, sr, audio.fade_ms, repr(self.text))
        fraction = 0.5 if self.crop_at is None else self.crop_at
        centre_s = (offset + fraction * len(spoken)) / sr
        clip = cut_centered(samples, sr, centre_s, audio.clip_samples, audio.fade_ms)
        if self.floor_dbfs is not None:
            rng = np.random.default_rng(int(self.clip_id[:8], 16))
            clip = clip + scale_to_dbfs(colored_noise("pink", len(clip), rng), self.floor_dbfs)
        return clip.astype(np.float32)


@dataclass(frozen=True)
class EngineVoice:
    """One usable voice of one engine, with the settings it renders under."""

    engine: TtsEngine
    voice: str
    settings: EngineVoiceSettings


def engine_voices(
    engines: Sequence[EngineVoiceSettings], language: str, exclude_engines: Sequence[str] = ()
) -> tuple[list[EngineVoice], dict[str, str]]:
    """Every voice of the configured engines that can speak ``language`` (engines named in
    ``exclude_engines`` — the held-out engine — left out), and ``{engine: reason}`` for each
    engine skipped: not installed, unknown, or without a voice for the language."""
    wanted = [e for e in engines if e.engine not in set(exclude_engines)]
    usable, skipped = available_engines([e.engine for e in wanted])
    by_name = {engine.name: engine for engine in usable}
    voices: list[EngineVoice] = []
    for settings in wanted:
        engine = by_name.get(settings.engine)
        if engine is None:
            continue
        offered = engine.voices(language)
        names = [v for v in settings.voices if v in offered] if settings.voices else offered
        missing = sorted(set(settings.voices) - set(offered))
        if missing:
            skipped[f"{settings.engine}:{','.join(missing)}"] = (
                f"{settings.engine} has no voice {missing} for language {language!r} "
                f"(it has {offered})"
            )
        if not names:
            skipped.setdefault(settings.engine, f"no {settings.engine} voice speaks {language!r}")
        voices += [EngineVoice(engine, name, settings) for name in names]
    return voices, skipped


def _draw(
    voice: EngineVoice, rng: np.random.Generator, perturbation: SpeakerPerturbationSettings
) -> tuple[float, float, Perturbation | None, float]:
    s = voice.settings
    rate = round(float(rng.uniform(*s.rate_range)), 3)
    pitch = (
        round(float(rng.uniform(*s.pitch_range)), 3)
        if voice.engine.pitch_control(voice.voice)
        else 1.0
    )
    drawn = (
        draw_perturbation(rng, perturbation)
        if perturbation.enabled and perturbation.perturbations_per_clip > 0
        else None
    )
    floor = round(float(rng.uniform(*SELF_NOISE_DBFS)), 1)
    return rate, pitch, drawn, floor


def word_recipes(
    word: str,
    label: str,
    voices: Sequence[EngineVoice],
    renders_per_voice: int | None,
    perturbation: SpeakerPerturbationSettings,
    salt: str,
    seed: int = 0,
) -> list[EngineRecipe]:
    """``renders_per_voice`` (default: each voice's own setting) renders of ``word`` by every
    voice, each with a drawn rate, pitch and perturbation."""
    recipes = []
    for voice in voices:
        for render in range(renders_per_voice or voice.settings.renders_per_voice):
            rng = _rng(seed, "engine", voice.engine.name, voice.voice, word, label, render)
            rate, pitch, drawn, floor = _draw(voice, rng, perturbation)
            recipes.append(
                EngineRecipe(
                    label,
                    word,
                    voice.engine.name,
                    voice.voice,
                    rate,
                    pitch,
                    seed=render,
                    perturbation=drawn,
                    floor_dbfs=floor,
                    salt=salt,
                )
            )
    return recipes


def unknown_word_recipes(
    words: Sequence[str],
    renders: int,
    voices: Sequence[EngineVoice],
    perturbation: SpeakerPerturbationSettings,
    salt: str,
    seed: int = 0,
) -> list[EngineRecipe]:
    """``renders`` ``_unknown_`` renders cycling over ``words`` and over the voices."""
    if not words or not voices or renders <= 0:
        return []
    recipes = []
    for i in range(renders):
        word, voice = words[i % len(words)], voices[i % len(voices)]
        rng = _rng(seed, "engine-unknown", voice.engine.name, voice.voice, word, i)
        rate, pitch, drawn, floor = _draw(voice, rng, perturbation)
        recipes.append(
            EngineRecipe(
                UNKNOWN_LABEL,
                word,
                voice.engine.name,
                voice.voice,
                rate,
                pitch,
                seed=i,
                perturbation=drawn,
                floor_dbfs=floor,
                salt=salt,
            )
        )
    return recipes


def window_recipes(
    keyword: str,
    vocabulary: Sequence[str],
    neighbours: Sequence[str],
    count: int,
    voices: Sequence[EngineVoice],
    negatives: NegativeSettings,
    perturbation: SpeakerPerturbationSettings,
    salt: str,
) -> list[EngineRecipe]:
    """``count`` ``_unknown_`` windows of running speech for one keyword's partition: sentences
    of common words (one a phoneme neighbour of the keyword when it has any), cut at a random
    point, by the voices in turn."""
    if not vocabulary or not voices or count <= 0:
        return []
    low, high = negatives.window_sentence_words
    recipes = []
    for i in range(count):
        rng = _rng(negatives.seed, "engine-window", keyword, i)
        size = int(rng.integers(low, high + 1))
        words = [str(vocabulary[int(j)]) for j in rng.integers(0, len(vocabulary), size=size)]
        if neighbours:
            words[int(rng.integers(0, len(words)))] = str(neighbours[i % len(neighbours)])
        voice = voices[i % len(voices)]
        rate, pitch, drawn, floor = _draw(voice, rng, perturbation)
        recipes.append(
            EngineRecipe(
                UNKNOWN_LABEL,
                " ".join(words),
                voice.engine.name,
                voice.voice,
                rate,
                pitch,
                seed=i,
                perturbation=drawn,
                floor_dbfs=floor,
                crop_at=round(float(rng.uniform(0.0, 1.0)), 3),
                salt=salt,
            )
        )
    return recipes


def keyword_engine_recipes(
    keyword: str,
    unknown_words: Sequence[str],
    vocabulary: Sequence[str],
    voices: Sequence[EngineVoice],
    negatives: NegativeSettings,
    perturbation: SpeakerPerturbationSettings,
    salt: str,
) -> list[EngineRecipe]:
    """One keyword partition's clips by the other engines: the keyword by every voice, its
    ``_unknown_`` words (``negatives.unknown_ratio`` of those renders) and running-speech
    windows, so the negatives sound like the same engines as the keyword."""
    keyword_clips = word_recipes(keyword, keyword, voices, None, perturbation, salt)
    renders = round(negatives.unknown_ratio * len(keyword_clips))
    unknown = unknown_word_recipes(unknown_words, renders, voices, perturbation, salt)
    windows = (
        0 if negatives.speech_windows == 0 else round(WINDOWS_PER_VOICE_RENDER * len(keyword_clips))
    )
    neighbours = list(unknown_words[: negatives.neighbours_per_keyword])
    return (
        keyword_clips
        + unknown
        + window_recipes(
            keyword, vocabulary, neighbours, windows, voices, negatives, perturbation, salt
        )
    )


def partition_recipes(
    keyword: str,
    all_keywords: Sequence[str],
    engines: Sequence[EngineVoiceSettings],
    perturbation: SpeakerPerturbationSettings,
    negatives: NegativeSettings,
    language: str,
    salt: str,
    held_out_engine: str = "",
) -> tuple[list[EngineRecipe], dict[str, str]]:
    """Every other-engine recipe of one keyword partition, and the engines skipped (with why).
    The ``_unknown_`` words are the keyword's own (phoneme neighbours first, then its share of
    the other words), the same as espeak-ng speaks for it."""
    from kws_assets.core.dataset import synthesis

    voices, skipped = engine_voices(
        engines, language, exclude_engines=[held_out_engine] if held_out_engine else []
    )
    if not voices:
        return [], skipped
    unknown = synthesis.negative_words(keyword, all_keywords, negatives, language)
    vocabulary = (
        synthesis.sentence_vocabulary(all_keywords, negatives, language)
        if negatives.speech_windows
        else []
    )
    return keyword_engine_recipes(
        keyword, unknown, vocabulary, voices, negatives, perturbation, salt
    ), skipped


class NotRendered(Exception):
    """Why a recipe gave no clip (the engine's error, or speech longer than the clip), as a
    value that crosses a process boundary whatever the original exception was."""


def try_render(recipe: EngineRecipe, audio: AudioSettings) -> np.ndarray | NotRendered:
    """``recipe.render(audio)``, or :class:`NotRendered` with the reason where the engine cannot
    speak it or the speech does not fit the clip (skipped, never a failed evaluation)."""
    try:
        return recipe.render(audio)
    except (TtsEngineError, SpeechOverWindow) as exc:
        return NotRendered(str(exc))


@dataclass
class SpokenSet:
    """Clips spoken for evaluation only, with what each one is."""

    samples: list[np.ndarray]
    labels: list[str]
    speakers: list[str]
    names: list[str]
    skipped: dict[str, str]


def held_out_engine_set(
    engine: str,
    keywords: Sequence[str],
    unknown_words: Sequence[str],
    renders: int,
    language: str,
    audio: AudioSettings,
    render_all: Callable[[list[EngineRecipe]], Sequence[np.ndarray | BaseException]] | None = None,
) -> SpokenSet:
    """Every keyword and ``unknown_words`` (as ``_unknown_``) spoken ``renders`` times by every
    voice of ``engine`` — an engine no training clip came from — at drawn rates and pitches and
    without speaker perturbation (the engine as it is).  ``render_all(recipes)`` replaces
    rendering them here one by one with :func:`try_render` (e.g. a cache of earlier renders and
    worker processes for the rest): one clip, or the exception that kept it from being
    rendered, per recipe in order."""
    # pydantic validates engine against the EngineName Literal (a clear error for a typo)
    settings = EngineVoiceSettings(engine=engine, renders_per_voice=renders)  # type: ignore[arg-type]
    voices, skipped = engine_voices([settings], language)
    plain = SpeakerPerturbationSettings(enabled=False)
    recipes = [r for k in keywords for r in word_recipes(k, k, voices, renders, plain, "held-out")]
    recipes += unknown_word_recipes(
        unknown_words, len(unknown_words) * max(1, len(voices)) * renders, voices, plain, "held-out"
    )
    out = SpokenSet([], [], [], [], skipped)
    spoken = (
        render_all(recipes) if render_all else [try_render(recipe, audio) for recipe in recipes]
    )
    for recipe, clip in zip(recipes, spoken, strict=True):
        if isinstance(clip, BaseException):
            out.skipped[recipe.origin_id] = str(clip)
            continue
        out.samples.append(clip)
        out.labels.append(recipe.label)
        out.speakers.append(recipe.speaker)
        out.names.append(recipe.origin_id)
    return out
