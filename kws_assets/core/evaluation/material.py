"""The material every model family is evaluated on, built once per evaluation: keywords and
words spoken by held-out voices, the validation streams (operating-point selection) and the test
streams (reporting), from the validated clips of the two splits and fresh TTS sentences."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import polars as pl

from kws_assets.core.audio.io import SpeechOverWindow
from kws_assets.core.dataset import synthesis
from kws_assets.core.dataset.domain_gap import synthetic_real_gap
from kws_assets.core.evaluation.operating_point import ScoredStreams
from kws_assets.core.evaluation.streams import (
    SENTENCE_PITCH,
    SENTENCE_RATE,
    Positive,
    add_noise_floor,
    concatenate_pieces,
    embed_positives,
    speak_sentences,
    trim_clip,
)
from kws_assets.core.features.loader import training_speakers
from kws_assets.core.model.detect import StreamingDetector
from kws_assets.core.speech import tts
from kws_assets.core.speech.fillers import filler_words as everyday_words
from kws_assets.core.storage.render_cache import NO_CACHE, RenderCache
from kws_assets.settings import (
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AudioSettings,
    EvalSettings,
    NegativeSettings,
    TtsSettings,
)

NEIGHBOUR_WORD_SHARE = 0.2
"""Share of the words in negative sentences that are phoneme neighbours of the keywords."""
UNSEEN_VOCABULARY = 3000
"""Common words the negative sentences draw from (most never spoken in training)."""
UNSEEN_UNKNOWN_WORDS = 10
"""Non-keyword words each held-out voice speaks for the unseen-voice accuracy."""
TEST_SENTENCES, VALIDATION_SENTENCES = 1, 2
"""Salts of the random streams each set's sentences are drawn from."""
SECONDS_PER_SENTENCE = 3.0
FILLER_SHARE_PERCENT = 15
"""Share of the synthesised sentences kept apart as filler around the positives."""


def unseen_voice_clips(
    keywords: Sequence[str],
    unknown_words: Sequence[str],
    voices: Sequence[str],
    grid: TtsSettings,
    audio: AudioSettings,
    rng: np.random.Generator,
    cache: RenderCache = NO_CACHE,
    workers: int = 1,
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Each keyword spoken by every held-out voice alone and in a carrier phrase, plus
    ``unknown_words`` as ``_unknown_``; returns clips, labels and a description of each.  A
    voice's clips are rendered together after a fresh start of espeak-ng (on ``workers``
    processes, a voice each) and kept in ``cache`` (a re-run asking for the same recipes renders
    none of them)."""
    clips, labels, names = [], [], []
    carriers = list(grid.carrier_phrases)
    jobs = [(k, k) for k in keywords] + [(w, UNKNOWN_LABEL) for w in unknown_words]
    per_voice: list[list[synthesis.ClipRecipe]] = []
    for voice in voices:
        recipes: list[synthesis.ClipRecipe] = []
        for word, label in jobs:
            for carrier in (
                None,
                carriers[int(rng.integers(0, len(carriers)))] if carriers else None,
            ):
                recipes.append(
                    synthesis.ClipRecipe(
                        label,
                        word,
                        voice,
                        int(rng.integers(*SENTENCE_RATE)),
                        int(rng.integers(*SENTENCE_PITCH)),
                        0,
                        carrier=carrier,
                        floor_dbfs=float(rng.uniform(*synthesis.SELF_NOISE_DBFS)),
                    )
                )
                if carrier is None and not carriers:
                    break
        per_voice.append(recipes)
    rendered_voices = cache.map(
        [
            {"what": "keyword clips, fresh engine", "recipes": recipes, "audio": audio}
            for recipes in per_voice
        ],
        functools.partial(_render_clips, audio=audio),
        per_voice,
        workers,
        pieces=True,
    )
    for recipes, rendered in zip(per_voice, rendered_voices, strict=True):
        for recipe, clip in zip(recipes, cast(list[np.ndarray], rendered), strict=True):
            if clip.size:
                clips.append(clip)
                labels.append(recipe.label)
                names.append(recipe.origin_id)
    return clips, labels, names


def _render_clips(
    recipes: Sequence[synthesis.ClipRecipe], audio: AudioSettings
) -> list[np.ndarray]:
    """Each recipe's clip (empty where espeak-ng cannot speak it), espeak-ng started afresh
    first (its output depends on what it spoke before)."""
    tts.reset_engine()
    out = []
    for recipe in recipes:
        try:
            out.append(synthesis.render_keyword_clip(recipe, audio))
        except (tts.TtsError, SpeechOverWindow):  # no clip of a keyword cut short
            out.append(np.zeros(0, np.float32))
    return out


def evaluation_vocabulary(
    keywords: Sequence[str], negatives: NegativeSettings, language: str, count: int, seed: int
) -> tuple[list[str], dict[str, list[str]]]:
    """Words for the negative stream: common dictionary words that are not keywords or their
    homophones, and each keyword's phoneme neighbours (hard negatives)."""
    neighbours = synthesis.neighbours_by_keyword(keywords, negatives, language)
    if not negatives.lexicon and not language.lower().startswith(synthesis.ENGLISH):
        # No pronouncing dictionary: the language's everyday words (core.fillers), if any.
        everyday = everyday_words(language) or ()
        return [w for w in everyday if w not in set(keywords)][:count], neighbours
    words = synthesis.sentence_vocabulary(
        keywords, negatives, language, count, salt=f"evaluation|{seed}"
    )
    return words, neighbours


@dataclass(frozen=True)
class StreamAudio:
    """A keyword-free stream and a stream with keyword clips embedded, as audio."""

    negative: np.ndarray
    positive: np.ndarray
    positives: list[Positive]
    reuse_passes: int
    sample_rate: int

    @property
    def negative_seconds(self) -> float:
        return self.negative.size / self.sample_rate

    def score(self, detector: StreamingDetector) -> ScoredStreams:
        return ScoredStreams(
            detector.posteriors(self.negative, self.sample_rate),
            self.negative_seconds,
            detector.posteriors(self.positive, self.sample_rate),
            self.positives,
        )


@dataclass
class EvaluationMaterial:
    """The audio every family is evaluated on, built once: held-out voice clips, the
    validation streams (operating-point selection) and the test streams (reporting)."""

    unseen_clips: list[np.ndarray]
    unseen_labels: list[str]
    validation: StreamAudio
    test: StreamAudio
    synthetic_real: pl.DataFrame
    notes: list[str]


def _tts_voices(clips: pl.DataFrame) -> list[str]:
    return sorted(
        s.removeprefix(synthesis.TTS_SPEAKER_PREFIX)
        for s in clips["speaker"].unique().to_list()
        if s.startswith(synthesis.TTS_SPEAKER_PREFIX)
    )


def _streams(
    settings: EvalSettings,
    sample_rate: int,
    keywords: Sequence[str],
    clips: pl.DataFrame,
    voices: Sequence[str],
    words: Sequence[str],
    hard: Sequence[Sequence[str]],
    minutes: float,
    read_clip: Callable[[str], np.ndarray],
    rng: np.random.Generator,
    sentence_seed: Sequence[int],
    what: str,
    say: Callable[[str], None],
    notes: list[str],
    cache: RenderCache,
    workers: int = 1,
) -> StreamAudio:
    """A negative stream (sentences by ``voices``, the split's _unknown_/_silence_ clips, noise
    bursts) of ``minutes`` and a positive stream of the split's keyword clips in filler speech.
    The sentences are drawn from ``sentence_seed`` alone (the rest from ``rng``), so what the
    other streams drew before never moves them and their renders stay cached."""
    sr = sample_rate
    say(
        f"{what}: speaking about {minutes:.0f} min of keyword-free sentences with "
        f"{len(voices)} voices"
    )
    sentences = speak_sentences(
        words,
        voices,
        _sentences_for(minutes),
        sr,
        np.random.default_rng(sentence_seed),
        cache,
        workers,
        hard=hard,
        hard_share=NEIGHBOUR_WORD_SHARE,
    )
    negatives = clips.filter(pl.col("label").is_in([UNKNOWN_LABEL, SILENCE_LABEL]))
    clip_pieces = [trim_clip(read_clip(uri), sr) for uri in negatives["uri"].to_list()]
    split_at = max(1, len(sentences) * FILLER_SHARE_PERCENT // 100)
    fillers, stream_sentences = sentences[:split_at], sentences[split_at:]
    negative_audio, reuse = concatenate_pieces(
        stream_sentences + clip_pieces, minutes * 60.0, sr, rng
    )
    if reuse:
        notes.append(f"{what}: negative material was reused {reuse} time(s) to fill the stream")
    negative_audio = add_noise_floor(negative_audio, settings.noise_floor_dbfs, rng)
    keyword_rows = (
        clips.filter(pl.col("label").is_in(list(keywords)))
        .sort("clip_id")
        .group_by("label", maintain_order=True)
        .head(settings.positives_per_keyword)
    )
    if keyword_rows.is_empty():
        raise ValueError(
            f"{what}: no keyword clips to embed in the positive stream (the split "
            f"needs keyword clips: check the split percentages and the keywords)"
        )
    positives_in = [
        (read_clip(r["uri"]), r["label"], r["clip_id"]) for r in keyword_rows.iter_rows(named=True)
    ]
    order = rng.permutation(len(positives_in))
    positive_audio, positives = embed_positives(
        [positives_in[i] for i in order], fillers or stream_sentences or clip_pieces, sr, rng
    )
    positive_audio = add_noise_floor(positive_audio, settings.noise_floor_dbfs, rng)
    return StreamAudio(negative_audio, positive_audio, positives, reuse, sr)


def build_material(
    settings: EvalSettings,
    audio: AudioSettings,
    grid: TtsSettings,
    keywords: Sequence[str],
    negatives: NegativeSettings,
    language: str,
    *,
    test_clips: pl.DataFrame,
    val_clips: pl.DataFrame,
    read_clip: Callable[[str], np.ndarray],
    mfcc_table: pl.DataFrame | pl.LazyFrame,
    progress: Callable[[str], None] | None = None,
    cache: RenderCache = NO_CACHE,
    workers: int = 1,
) -> EvaluationMaterial:
    """Held-out voice clips, validation streams and test streams (see
    :func:`kws_assets.core.evaluation.family.evaluate_family`), from the settings sections they
    read: the evaluation's, the audio format, the TTS grid (carrier phrases), the keywords and the
    negative words of ``language``.

    ``test_clips``/``val_clips`` are validated rows of the two splits (``uri``, ``label``,
    ``clip_id``, ``speaker``); ``mfcc_table`` names the training speakers (a held-out voice that
    is one is not used) and gives the synthetic-vs-real feature distance.  Every TTS render
    (held-out voice clips, stream sentences) goes through ``cache``: the draws are seeded, so a
    re-run asks for the same renders and finds them there; the rest are rendered on ``workers``
    processes (the same audio for any count).  The test negatives are
    spoken by the held-out voices and the test split's TTS voices; the validation negatives by
    the validation split's TTS voices (the held-out voices when it has none, noted), from the
    same vocabulary with fresh sentences.
    """
    say = progress or (lambda _msg: None)
    rng = np.random.default_rng(settings.seed)
    notes: list[str] = []
    train_speakers = training_speakers(mfcc_table)
    held_out = [
        v for v in settings.held_out_voices if synthesis.tts_speaker_id(v) not in train_speakers
    ]
    dropped = sorted(set(settings.held_out_voices) - set(held_out))
    if dropped:
        notes.append(f"held-out voices that are training speakers, not used: {dropped}")
    words, neighbours = evaluation_vocabulary(
        keywords, negatives, language, UNSEEN_VOCABULARY, settings.seed
    )
    say(f"speaking keywords with {len(held_out)} held-out voices")
    unseen_words = [str(w) for w in words[:UNSEEN_UNKNOWN_WORDS]]
    clips, unseen_labels, _ = unseen_voice_clips(
        keywords, unseen_words, held_out, grid, audio, rng, cache, workers
    )
    if not clips:
        notes.append("no held-out voice could be synthesised")
    test_voices = held_out + [v for v in _tts_voices(test_clips) if v not in held_out]
    val_voices = _tts_voices(val_clips)
    if not val_voices:
        val_voices = held_out or test_voices
        notes.append(
            "the validation split has no TTS voices: its negative sentences are spoken "
            "by the held-out voices"
        )
    hard = [neighbours.get(k, []) for k in keywords]  # block b: keyword b mod n's neighbours
    test = _streams(
        settings,
        audio.sample_rate,
        keywords,
        test_clips,
        test_voices,
        words,
        hard,
        settings.negative_minutes,
        read_clip,
        rng,
        [settings.seed, TEST_SENTENCES],
        "test streams",
        say,
        notes,
        cache,
        workers,
    )
    validation = _streams(
        settings,
        audio.sample_rate,
        keywords,
        val_clips,
        val_voices,
        words,
        hard,
        settings.selection_negative_minutes or settings.negative_minutes,
        read_clip,
        rng,
        [settings.seed, VALIDATION_SENTENCES],
        "validation streams",
        say,
        notes,
        cache,
        workers,
    )
    gap = synthetic_real_gap(mfcc_table, keywords)
    return EvaluationMaterial(clips, unseen_labels, validation, test, gap, notes)


def _sentences_for(minutes: float) -> int:
    """Sentences to synthesise for ``minutes`` of stream (about 3 s each, plus the fillers)."""
    return math.ceil(minutes * 60.0 / SECONDS_PER_SENTENCE * 100 / (100 - FILLER_SHARE_PERCENT))
