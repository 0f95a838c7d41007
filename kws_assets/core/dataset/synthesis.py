"""Synthetic clips: keywords and negative words spoken by many espeak-ng voices, centred in
fixed-length clips, plus ``_silence_`` examples made of noise alone.

Voice diversity comes from two sources:

* the fixed grid ``tts.voices x tts.rates x tts.pitches`` (isolated words, plus copies with
  coloured noise at a random SNR);
* **sampled speakers**: ``tts.sampled_speakers`` accent+variant pairs drawn from
  ``tts.accents x tts.variants`` (English accents and male/female variants of espeak-ng), each
  speaking every word ``tts.renders_per_speaker`` times with its own rate, pitch and word gap;
  a share of those renders is spoken inside a **carrier phrase** ("please say {} again") and the
  word is cut out at espeak-ng's word events, with the coarticulation of running speech.

A speaker is the voice with its variant (``tts:en-us+f2``), so the speaker-hash split keeps each
synthetic voice in one split.  Keywords of another language (``tts.keyword_languages``) are
spoken by that language's voices.

Negatives (``_unknown_``): for each keyword, the words that sound close to it (most common first,
in any language: :func:`kws_assets.core.speech.negatives.negative_vocabulary`; for a phrase its
near misses, its words alone, swapped or reordered) and a share of other common words, spoken
by the same speakers; ``negatives.unknown_ratio`` sets how many renders that is relative to one
keyword's.

A keyword render whose speech is longer than ``audio.clip_seconds`` is a failure with reason
``speech_over_window`` (quarantined), never a clip of the keyword's middle.

Every clip is described by a :class:`ClipRecipe`; rendering a recipe is deterministic (the noise
generator is seeded from the recipe), so the same config always yields the same audio.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict, cast

import numpy as np

from kws_assets.core.audio.io import (
    SpeechOverWindow,
    check_speech_fits,
    colored_noise,
    cut_centered,
    mix_at_snr,
    resample,
    scale_to_dbfs,
)
from kws_assets.core.audio.quality import RENDER_FAILED
from kws_assets.core.corpus.ingest import tts_speaker_id
from kws_assets.core.features.mfcc import single_threaded_torch
from kws_assets.core.parallel import Progress, batched_process_map
from kws_assets.core.speech import negatives as speech_negatives
from kws_assets.core.speech import tts
from kws_assets.core.speech.engines import TtsEngineError
from kws_assets.core.storage.clip_store import ClipStore, clip_id_for
from kws_assets.settings import (
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AudioSettings,
    NegativeSettings,
    NoiseKind,
    NoiseSettings,
    TtsSettings,
)

SYNTHETIC_SOURCE = "synthetic"
NOISE_SOURCE = "noise"
TRIM_THRESHOLD_DB = -40.0
RENDER_BATCH_RECIPES = 16
"""Recipes a worker renders per batch; espeak-ng restarts (a few ms) before each."""
TTS_SPEAKER_PREFIX = tts_speaker_id("")
"""Speaker ids of espeak-ng voices start with this (``tts:en-us+f2``)."""
CARRIER_SLOT = "{}"
ENGLISH = "en"
UNKNOWN_SPEAKER_STRIDE = 7
"""Consecutive _unknown_ renders go to speakers this far apart in the speaker list (co-prime with
most list lengths), so each word is spoken by voices spread over all accents."""
SELF_NOISE_DBFS = (-75.0, -55.0)
"""RMS range of the faint noise floor under each sampled render (a microphone's self-noise)."""
SENTENCE_VOCABULARY = 3000
"""Common words the running-speech windows draw their sentences from."""


@dataclass(frozen=True)
class ClipRecipe:
    """How one synthetic clip is made; ``origin_id`` names the clean clip a noisy copy came from.

    ``text`` is the word the clip is labelled with; with a ``carrier`` phrase the whole phrase is
    spoken and the word is cut out of it.  ``language`` overrides the config language for the row.
    ``floor_dbfs`` adds a faint pink noise floor (a microphone's self-noise), so the pauses are not
    digital silence, which no real recording has.  With ``crop_at`` (0-1) the clip is a window of
    running speech: centred that far into the spoken ``text``, wherever the words fall.
    """

    label: str
    text: str
    voice: str
    rate: int
    pitch: int
    word_gap: int
    noise_kind: NoiseKind | None = None
    snr_db: float | None = None
    copy_index: int = 0
    salt: str = ""
    carrier: str | None = None
    language: str | None = None
    floor_dbfs: float | None = None
    crop_at: float | None = None

    @property
    def spoken_text(self) -> str:
        return self.carrier.replace(CARRIER_SLOT, self.text) if self.carrier else self.text

    @property
    def origin_id(self) -> str:
        said = f"{self.spoken_text}|{self.text}" if self.carrier else self.text
        floor = "" if self.floor_dbfs is None else f"|n{self.floor_dbfs:.1f}"
        crop = "" if self.crop_at is None else f"|c{self.crop_at:.3f}"
        return f"tts|{said}|{self.voice}|r{self.rate}|p{self.pitch}|g{self.word_gap}{floor}{crop}"

    @property
    def clip_id(self) -> str:
        return clip_id_for(
            SYNTHETIC_SOURCE,
            self.origin_id,
            self.label,
            self.noise_kind,
            self.copy_index,
            self.salt,
        )

    @property
    def speaker(self) -> str:
        return tts_speaker_id(self.voice)

    def seed(self) -> int:
        return int(hashlib.sha256(self.clip_id.encode()).hexdigest()[:8], 16)


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded from a stable hash of ``parts`` (so one draw never shifts another)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return np.random.default_rng(int(digest[:16], 16))


def keyword_language(keyword: str, grid: TtsSettings, language: str) -> str:
    """The language a keyword is spoken in: ``tts.keyword_languages`` or the config language."""
    return grid.keyword_languages.get(keyword, language)


@functools.lru_cache(maxsize=8)
def _voices_of(language: str) -> tuple[str, ...]:
    return tuple(tts.list_voices(language))


def sampled_speakers(
    grid: TtsSettings,
    language: str,
    *,
    main_language: str | None = None,
    exclude: Sequence[str] = (),
) -> list[str]:
    """The sampled voices (``accent+variant``) for words of ``language``: ``tts.sampled_speakers``
    pairs drawn without replacement from accents x variants, seeded by ``tts.seed`` only, so every
    keyword (and every partition) gets the same speakers.

    Accents are ``tts.accents`` for the config language (``main_language``; every espeak-ng voice
    of it when the list is empty) and every espeak-ng voice of another language.  Variants
    espeak-ng does not have, pairs in ``tts.voices`` and pairs in ``exclude`` (held-out
    evaluation voices) are never drawn.
    """
    main = main_language or language
    if language == main and grid.accents:
        accents = list(grid.accents)
    else:
        accents = list(_voices_of(language))
    installed = set(tts.list_variants())
    variants = [v for v in grid.variants if v in installed]
    skip = set(grid.voices) | set(exclude)
    pairs = sorted({f"{a}+{v}" for a in accents for v in variants} - skip)
    count = min(grid.sampled_speakers, len(pairs))
    if count == 0:
        return []
    picked = np.random.default_rng(grid.seed).choice(len(pairs), size=count, replace=False)
    return [pairs[i] for i in sorted(picked)]


@dataclass(frozen=True)
class Voicing:
    """How one sampled render is spoken."""

    rate: int
    pitch: int
    word_gap: int
    carrier: str | None
    floor_dbfs: float


def _draw_voicing(grid: TtsSettings, rng: np.random.Generator, carriers: Sequence[str]) -> Voicing:
    rate = int(rng.integers(grid.rate_range[0], grid.rate_range[1] + 1))
    pitch = int(rng.integers(grid.pitch_range[0], grid.pitch_range[1] + 1))
    gap = int(rng.integers(grid.word_gap_range[0], grid.word_gap_range[1] + 1))
    carrier = None
    if carriers and rng.random() < grid.carrier_probability:
        carrier = str(carriers[int(rng.integers(0, len(carriers)))])
    return Voicing(rate, pitch, gap, carrier, _self_noise_dbfs(rng))


def _self_noise_dbfs(rng: np.random.Generator) -> float:
    return round(float(rng.uniform(*SELF_NOISE_DBFS)), 1)


def grid_recipes(
    keyword: str, grid: TtsSettings, noise: NoiseSettings, rng: np.random.Generator, salt: str
) -> list[ClipRecipe]:
    """The fixed grid for one word: voice x rate x pitch, isolated, plus noisy copies (every
    render over a faint noise floor)."""
    recipes = []
    for voice in grid.voices:
        for rate in grid.rates:
            for pitch in grid.pitches:
                floor = _self_noise_dbfs(_rng(grid.seed, "grid", keyword, voice, rate, pitch))
                recipes.append(
                    ClipRecipe(
                        keyword,
                        keyword,
                        voice,
                        rate,
                        pitch,
                        grid.word_gap,
                        salt=salt,
                        floor_dbfs=floor,
                    )
                )
                for copy in range(noise.noisy_copies_per_clip):
                    recipes.append(
                        ClipRecipe(
                            keyword,
                            keyword,
                            voice,
                            rate,
                            pitch,
                            grid.word_gap,
                            noise_kind=_draw_noise_kind(noise.kinds, rng),
                            snr_db=float(rng.uniform(noise.snr_db_min, noise.snr_db_max)),
                            copy_index=copy + 1,
                            salt=salt,
                            floor_dbfs=floor,
                        )
                    )
    return recipes


def speaker_recipes(
    word: str,
    label: str,
    speakers: Sequence[str],
    grid: TtsSettings,
    salt: str,
    language: str | None = None,
    use_carriers: bool = True,
) -> list[ClipRecipe]:
    """``tts.renders_per_speaker`` renders of ``word`` by each sampled speaker, each with its own
    rate/pitch/word gap and (with ``tts.carrier_probability``) a carrier phrase."""
    carriers = grid.carrier_phrases if use_carriers else []
    recipes = []
    for speaker in speakers:
        for render in range(grid.renders_per_speaker):
            v = _draw_voicing(grid, _rng(grid.seed, word, speaker, render), carriers)
            recipes.append(
                ClipRecipe(
                    label,
                    word,
                    speaker,
                    v.rate,
                    v.pitch,
                    v.word_gap,
                    salt=salt,
                    carrier=v.carrier,
                    language=language,
                    floor_dbfs=v.floor_dbfs,
                )
            )
    return recipes


def keyword_recipes(
    keywords: list[str],
    grid: TtsSettings,
    noise: NoiseSettings,
    seed: int = 0,
    salt: str = "",
    *,
    language: str = ENGLISH,
    negatives: NegativeSettings | None = None,
    all_keywords: Sequence[str] | None = None,
    exclude_voices: Sequence[str] = (),
) -> list[ClipRecipe]:
    """Every synthetic recipe for ``keywords``: the fixed grid (plus noisy copies) and the sampled
    speakers' renders of each keyword, and — with ``negatives`` — the ``_unknown_`` renders of
    their phoneme neighbours and share of other words.

    ``all_keywords`` (default ``keywords``) are every configured keyword: none of them or their
    homophones is ever an ``_unknown_`` word, and the other words are shared out among them so
    rendering one keyword at a time (a partition) yields each word once.  ``exclude_voices``
    (held-out evaluation voices) are never drawn as speakers.  ``salt`` (a hash of the audio
    settings) goes into every clip id, so clips rendered for other audio settings are never
    mistaken for these.
    """
    all_keywords = list(all_keywords or keywords)
    recipes = []
    rng = np.random.default_rng(seed)
    for keyword in keywords:
        spoken_in = keyword_language(keyword, grid, language)
        foreign = spoken_in != language
        speakers = sampled_speakers(grid, spoken_in, main_language=language, exclude=exclude_voices)
        if not foreign:
            recipes += grid_recipes(keyword, grid, noise, rng, salt)
        recipes += speaker_recipes(
            keyword,
            keyword,
            speakers,
            grid,
            salt,
            language=spoken_in if foreign else None,
            use_carriers=not foreign,
        )
        if negatives is not None and not foreign:
            words = negative_words(keyword, all_keywords, negatives, language)
            renders = round(negatives.unknown_ratio * _renders_per_word(grid, speakers))
            everyone = [*grid.voices, *speakers]
            recipes += unknown_recipes(words, renders, everyone, grid, salt)
            recipes += speech_window_recipes(
                keyword,
                sentence_vocabulary(all_keywords, negatives, language),
                words[: negatives.neighbours_per_keyword],
                negatives,
                everyone,
                grid,
                salt,
            )
    return recipes


def sentence_vocabulary(
    all_keywords: Sequence[str],
    negatives: NegativeSettings,
    language: str = ENGLISH,
    count: int = SENTENCE_VOCABULARY,
    salt: str = "sentences",
) -> list[str]:
    """``count`` common words of ``language`` that are neither keywords nor their homophones,
    drawn by ``salt`` (:func:`kws_assets.core.speech.negatives.sentence_words`)."""
    return speech_negatives.sentence_words(language, all_keywords, negatives, count, salt)


def speech_window_recipes(
    keyword: str,
    vocabulary: Sequence[str],
    neighbours: Sequence[str],
    negatives: NegativeSettings,
    speakers: Sequence[str],
    grid: TtsSettings,
    salt: str,
) -> list[ClipRecipe]:
    """``negatives.speech_windows`` ``_unknown_`` windows of running speech for one keyword's
    partition: sentences of common words (one of them a phoneme neighbour of the keyword, when it
    has any), each window centred at a random point of the spoken sentence."""
    if not vocabulary or not speakers:
        return []
    recipes = []
    low, high = negatives.window_sentence_words
    for i in range(negatives.speech_windows):
        rng = _rng(negatives.seed, "window", keyword, i)
        words = [
            str(vocabulary[int(j)])
            for j in rng.integers(0, len(vocabulary), size=int(rng.integers(low, high + 1)))
        ]
        if neighbours:
            words[int(rng.integers(0, len(words)))] = str(neighbours[i % len(neighbours)])
        speaker = speakers[int(rng.integers(0, len(speakers)))]
        v = _draw_voicing(grid, rng, [])
        recipes.append(
            ClipRecipe(
                UNKNOWN_LABEL,
                " ".join(words),
                speaker,
                v.rate,
                v.pitch,
                v.word_gap,
                salt=salt,
                floor_dbfs=v.floor_dbfs,
                crop_at=round(float(rng.uniform(0.0, 1.0)), 3),
            )
        )
    return recipes


class RecipeOptions(TypedDict):
    """The config-wide keyword arguments of :func:`keyword_recipes`."""

    language: str
    negatives: NegativeSettings | None
    all_keywords: Sequence[str] | None
    exclude_voices: Sequence[str]


def recipe_options(
    language: str,
    negatives: NegativeSettings,
    keywords: Sequence[str],
    held_out_voices: Sequence[str],
) -> RecipeOptions:
    """The config-wide keyword arguments of :func:`keyword_recipes` (language, negatives, every
    keyword, held-out evaluation voices), for rendering one keyword partition at a time."""
    return {
        "language": language,
        "negatives": negatives,
        "all_keywords": keywords,
        "exclude_voices": held_out_voices,
    }


def _renders_per_word(grid: TtsSettings, speakers: Sequence[str]) -> int:
    """Clean renders of one keyword: fixed grid plus sampled speakers."""
    return (
        len(grid.voices) * len(grid.rates) * len(grid.pitches)
        + len(speakers) * grid.renders_per_speaker
    )


def negative_words(
    keyword: str, all_keywords: Sequence[str], negatives: NegativeSettings, language: str = ENGLISH
) -> list[str]:
    """The ``_unknown_`` words that go with one keyword: its closest phoneme neighbours (most
    common first; words that merely extend the keyword, like "stops", left out) then its share
    of the other common words.  Never a keyword, a keyword's homophone, or a word espeak-ng
    pronounces like a keyword.  Any language (the CMU dictionary for English, espeak-ng and
    wordfreq for the others): :func:`kws_assets.core.speech.negatives.negative_vocabulary`."""
    vocabulary = speech_negatives.negative_vocabulary(language, all_keywords, negatives)
    return vocabulary.words_for(keyword)


def neighbours_by_keyword(
    all_keywords: Sequence[str], negatives: NegativeSettings, language: str = ENGLISH
) -> dict[str, list[str]]:
    """Each keyword's phoneme neighbours alone (no share of other words): the hard negatives the
    evaluation streams and the negative material speak among their common words, each keyword's
    in the blocks and segments that belong to it."""
    neighbours_only = negatives.model_copy(update={"other_words": 0})
    return {
        keyword: negative_words(keyword, all_keywords, neighbours_only, language)
        for keyword in all_keywords
    }


def unknown_recipes(
    words: Sequence[str], renders: int, speakers: Sequence[str], grid: TtsSettings, salt: str
) -> list[ClipRecipe]:
    """``renders`` ``_unknown_`` recipes cycling over ``words``, each by a different speaker
    (speakers taken ``UNKNOWN_SPEAKER_STRIDE`` apart), with drawn rate/pitch/gap/carrier."""
    if not words or not speakers or renders <= 0:
        return []
    recipes = []
    for i in range(renders):
        word = words[i % len(words)]
        speaker = speakers[(i * UNKNOWN_SPEAKER_STRIDE + i // len(speakers)) % len(speakers)]
        v = _draw_voicing(grid, _rng(grid.seed, "unknown", word, i), grid.carrier_phrases)
        recipes.append(
            ClipRecipe(
                UNKNOWN_LABEL,
                word,
                speaker,
                v.rate,
                v.pitch,
                v.word_gap,
                salt=salt,
                carrier=v.carrier,
                floor_dbfs=v.floor_dbfs,
            )
        )
    return recipes


def word_span(
    words: Sequence[tts.WordEvent], char_start: int, char_len: int, total_s: float
) -> tuple[float, float]:
    """Start and end time (s) of the text ``[char_start, char_start + char_len)`` in a synthesis:
    from the first word event inside it to the next word event after it (or the end)."""
    inside = [w for w in words if char_start <= w.char_start < char_start + char_len]
    if not inside:
        raise tts.TtsError(
            f"espeak-ng reported no word event at characters {char_start}-{char_start + char_len}"
        )
    start = min(w.start_s for w in inside)
    after = [
        w.start_s for w in words if w.char_start >= char_start + char_len and w.start_s > start
    ]
    return start, (min(after) if after else total_s)


def render_keyword_clip(recipe: ClipRecipe, audio: AudioSettings) -> np.ndarray:
    """Synthesize the recipe's text, centre the spoken word in a clip, mix noise if asked.

    A keyword whose speech is longer than the clip raises :class:`SpeechOverWindow` (the render
    is quarantined, never cut to its middle); an ``_unknown_`` word is cut like any running
    speech, since any part of it is still not a keyword.  With a carrier phrase the word's
    stretch is found from espeak-ng's word events and the clip is centred on the sound inside
    that stretch; the neighbouring words stay in the clip, as they would around a word cut from
    running speech.
    """
    synthesis = tts.synthesize(
        recipe.spoken_text,
        voice=recipe.voice,
        rate=recipe.rate,
        pitch=recipe.pitch,
        word_gap=recipe.word_gap,
    )
    samples = resample(synthesis.samples, synthesis.sample_rate, audio.sample_rate)
    sr = audio.sample_rate
    if recipe.crop_at is not None:
        spoken, offset = tts.trim_silence(samples, sr, threshold_db=TRIM_THRESHOLD_DB)
        centre_s = (offset + recipe.crop_at * len(spoken)) / sr
        clip = cut_centered(samples, sr, centre_s, audio.clip_samples, audio.fade_ms)
        return _finish(clip, recipe)
    if recipe.carrier:
        slot = recipe.carrier.index(CARRIER_SLOT)
        start_s, end_s = word_span(synthesis.words, slot, len(recipe.text), len(samples) / sr)
        lo, hi = int(start_s * sr), min(len(samples), int(np.ceil(end_s * sr)))
        spoken, offset = tts.trim_silence(samples[lo:hi], sr, threshold_db=TRIM_THRESHOLD_DB)
        offset += lo
    else:
        spoken, offset = tts.trim_silence(samples, sr, threshold_db=TRIM_THRESHOLD_DB)
    if spoken.size == 0:
        raise tts.TtsError(f"espeak-ng produced no audible speech for {recipe.spoken_text!r}")
    if is_keyword_label(recipe.label):
        check_speech_fits(len(spoken), audio.clip_samples, sr, audio.fade_ms, repr(recipe.text))
    centre_s = (offset + len(spoken) / 2) / sr
    clip = cut_centered(samples, sr, centre_s, audio.clip_samples, audio.fade_ms)
    return _finish(clip, recipe)


def _finish(clip: np.ndarray, recipe: ClipRecipe) -> np.ndarray:
    """Background noise (noisy copies) and the self-noise floor."""
    if recipe.noise_kind is not None and recipe.snr_db is not None:
        rng = np.random.default_rng(recipe.seed())
        noise = colored_noise(recipe.noise_kind, len(clip), rng)
        clip = mix_at_snr(clip, noise, recipe.snr_db)
    if recipe.floor_dbfs is not None:
        floor = colored_noise("pink", len(clip), np.random.default_rng(recipe.seed()))
        clip = clip + scale_to_dbfs(floor, recipe.floor_dbfs)
    return clip.astype(np.float32)


@dataclass(frozen=True)
class SilenceRecipe:
    index: int
    noise_kind: NoiseKind
    level_dbfs: float
    salt: str = ""

    @property
    def clip_id(self) -> str:
        return clip_id_for(
            NOISE_SOURCE, self.noise_kind, self.index, f"{self.level_dbfs:.2f}", self.salt
        )

    @property
    def speaker(self) -> str:
        # Each silence clip is its own "speaker", so silence spreads over all splits by hash.
        return f"noise:{self.index}"

    @property
    def origin_id(self) -> str:
        return f"noise|{self.noise_kind}|{self.level_dbfs:.2f}|{self.index}"


def _draw_noise_kind(kinds: Sequence[NoiseKind], rng: np.random.Generator) -> NoiseKind:
    """One of ``kinds`` (numpy hands back its own str, so the Literal is restored by cast)."""
    return cast("NoiseKind", str(rng.choice(list(kinds))))


def silence_recipes(noise: NoiseSettings, seed: int = 0, salt: str = "") -> list[SilenceRecipe]:
    rng = np.random.default_rng(seed)
    return [
        SilenceRecipe(
            i,
            _draw_noise_kind(noise.kinds, rng),
            float(rng.uniform(noise.silence_level_dbfs_min, noise.silence_level_dbfs_max)),
            salt=salt,
        )
        for i in range(noise.silence_clips)
    ]


def render_silence_clip(recipe: SilenceRecipe, audio: AudioSettings) -> np.ndarray:
    rng = np.random.default_rng(int(recipe.clip_id[:8], 16))
    noise = colored_noise(recipe.noise_kind, audio.clip_samples, rng)
    return scale_to_dbfs(noise, recipe.level_dbfs).astype(np.float32)


class Renderable(Protocol):
    """What :func:`render_to_store` needs of a recipe of another engine."""

    # read-only members: the recipes are frozen dataclasses (some fields are properties)
    @property
    def label(self) -> str: ...
    @property
    def clip_id(self) -> str: ...
    @property
    def origin_id(self) -> str: ...
    @property
    def speaker(self) -> str: ...
    @property
    def language(self) -> str | None: ...

    def render(self, audio: AudioSettings) -> np.ndarray: ...


Recipe = ClipRecipe | SilenceRecipe | Renderable
"""What :func:`render_to_store` renders: espeak-ng keyword clips, silence, any other engine's."""


def is_keyword_label(label: str) -> bool:
    """True for a keyword's label (not ``_unknown_`` or ``_silence_``): its clip must hold the
    whole keyword."""
    return label not in (UNKNOWN_LABEL, SILENCE_LABEL)


@dataclass(frozen=True)
class RenderFailure:
    """A recipe that gave no clip: ``reason`` says why in words, ``code`` is the quarantine
    reason (:data:`~kws_assets.core.audio.quality.RENDER_FAILED`, or ``speech_over_window``)."""

    clip_id: str
    label: str
    origin_id: str
    reason: str
    code: str = RENDER_FAILED


def render_to_store(
    recipes: Sequence[Recipe],
    audio: AudioSettings,
    store: ClipStore,
    language: str,
    *,
    workers: int = 1,
    batch_size: int = RENDER_BATCH_RECIPES,
    progress: Progress | None = None,
) -> tuple[list[dict], list[RenderFailure]]:
    """Render each recipe into the clip store (skipping clips already there) and describe it.

    Rendering is deterministic, so a clip whose id is already stored is reused, not redone.
    A recipe that an engine cannot speak becomes a failure row, never an exception for the batch.
    Besides espeak-ng's :class:`ClipRecipe` and :class:`SilenceRecipe`, any recipe with a
    ``render(audio)`` method (the other engines' ``engine_voices.EngineRecipe``) is rendered.

    Recipes are rendered in batches of ``batch_size`` on ``workers`` processes; espeak-ng starts
    afresh before every batch (:func:`tts.reset_engine`: its output depends on what it spoke
    before), so the clips are the same for any worker count.  ``progress(done, total)`` hears
    how far the rendering is.
    """
    rows: list[dict] = []
    failures: list[RenderFailure] = []

    def render_one(recipe: Recipe) -> dict | RenderFailure:
        return _render_one(recipe, audio, store, language)

    with single_threaded_torch():  # one small resampling kernel per clip: one thread is fastest
        for done in batched_process_map(
            render_one,
            recipes,
            workers,
            batch_size,
            batch_setup=tts.reset_engine,
            batch_context=store.batch_writes,
            progress=progress,
            total=len(recipes),
        ):
            if isinstance(done, RenderFailure):
                failures.append(done)
            else:
                rows.append(done)
    return rows, failures


def _render_one(
    recipe: Recipe, audio: AudioSettings, store: ClipStore, language: str
) -> dict | RenderFailure:
    """Render one recipe (unless already stored) and describe it, or say why it failed."""
    is_silence = isinstance(recipe, SilenceRecipe)
    label = SILENCE_LABEL if isinstance(recipe, SilenceRecipe) else recipe.label
    source = NOISE_SOURCE if is_silence else SYNTHETIC_SOURCE
    key = store.key_for(source, label, recipe.clip_id)
    if not store.exists(key):
        try:
            if isinstance(recipe, SilenceRecipe):
                samples = render_silence_clip(recipe, audio)
            elif isinstance(recipe, ClipRecipe):
                samples = render_keyword_clip(recipe, audio)
            else:
                samples = recipe.render(audio)
        except SpeechOverWindow as exc:
            return RenderFailure(recipe.clip_id, label, recipe.origin_id, str(exc), exc.reason)
        except (tts.TtsError, TtsEngineError) as exc:
            return RenderFailure(recipe.clip_id, label, recipe.origin_id, str(exc))
        store.put(key, samples, audio.sample_rate)
    return {
        "clip_id": recipe.clip_id,
        "uri": store.uri_for(key),
        "label": label,
        "source": source,
        "speaker": recipe.speaker,
        "language": (None if isinstance(recipe, SilenceRecipe) else recipe.language) or language,
        "origin_id": recipe.origin_id,
        "start_s": 0.0,
        "sample_rate": audio.sample_rate,
        "num_samples": audio.clip_samples,
    }
