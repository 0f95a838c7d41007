"""Hours of keyword-free audio, heard the way a streaming detector hears it.

Why: the clips a model trains on are centred words, a few thousand of them.  A detector sliding
over a living room every 80 ms meets millions of windows — word fragments, word boundaries,
music, other languages — that no centred clip shows, and its false accepts come from there.
This module plans and renders that material as long recordings (segments of
``segment_seconds``): running speech by the train split's voices of every engine, speech by
voices of other languages in their own words, music-like tones and rhythms, coloured noise and
babble, with cut-off keyword fragments (the first or last part of a train keyword clip) spoken
inside the speech.  The families cut it into windows at their own hop (e.g.
``core/families/speech_embedding.py``); the held-out segments, spoken by other voices, are never
trained on and measure false accepts per hour.

Pure and deterministic: a :class:`SegmentRecipe` (its sentences drawn when it is planned) and
the fragments it is given are the audio, bit for bit (its ``segment_id`` is a digest of all of
them, so a store keyed by it is a cache by content).  Each speech segment belongs to one keyword
(in turn): its hard negatives are that keyword's phoneme neighbours and its fragments are cut from
that keyword's clips, so a changed keyword re-renders its own segments and those whose sentences
drew a word it frees or forbids, and no other.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from kws_assets.core.audio.io import colored_noise, resample, scale_to_dbfs
from kws_assets.core.corpus.ingest import tts_speaker_id
from kws_assets.core.dataset import synthesis
from kws_assets.core.parallel import Progress, batched_process_map
from kws_assets.core.speech import tts
from kws_assets.core.speech.engines import ENGINES, TtsEngineError
from kws_assets.core.speech.engines.registry import REGISTRY
from kws_assets.core.speech.word_lists import top_words
from kws_assets.core.storage.clip_store import ClipStore, clip_id_for
from kws_assets.core.tables import HELDOUT, MATERIAL_SPLITS, TRAIN
from kws_assets.settings import (
    UNKNOWN_LABEL,
    AudioSettings,
    NegativeMaterialSettings,
    NegativeSettings,
)

SOURCE = "negative_material"
"""The clip-store source of the segments (and the prefix of their ids)."""
SPEECH, OTHER_LANGUAGE, MUSIC, NOISE = "speech", "other_language", "music", "noise"
KINDS = (SPEECH, OTHER_LANGUAGE, MUSIC, NOISE)

SENTENCE_WORDS = (4, 12)
RATE_RANGE = (0.8, 1.25)
"""Speaking rate multipliers (every engine takes a rate; pitch only where it can)."""
PITCH_RANGE = (0.85, 1.2)
GAP_S = (0.05, 0.9)
SPEECH_DBFS = (-32.0, -14.0)
"""RMS level of each sentence: near and far talkers."""
FRAGMENT_SHARE = (0.25, 0.55)
"""Share of a keyword's spoken stretch a fragment keeps (its start or its end)."""
OTHER_LANGUAGE_WORDS = 400
BABBLE_TALKERS = (3, 6)
TRIM_DB = -40.0
MAX_RENDER_FAILURES = 20
"""Consecutive sentences a voice may fail before its segment is given up (an error)."""


TEXTS_PER_MINUTE = 36
"""Sentences drawn per minute of a segment: more than the fastest voice speaks in a minute
(about 30 of 8 words); a slower voice leaves the last ones unspoken, a faster one starts over."""
TEXT_DRAWS = 7
"""Salt of the random stream a segment's sentences are drawn from (apart from its audio's)."""


class MaterialError(RuntimeError):
    """A segment could not be rendered (its voice speaks nothing)."""


@dataclass(frozen=True)
class MaterialWords:
    """What the material's speech is made of: keyword-free ``common`` words (each keeps its slot
    when the keyword list changes: :func:`.lexicon.stable_pick`), each keyword's phoneme
    ``neighbours`` (the hard negatives), and the ids of the train clips each keyword's fragments
    are cut from."""

    common: tuple[str, ...]
    neighbours: Mapping[str, tuple[str, ...]]
    fragment_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def keywords(self) -> tuple[str, ...]:
        return tuple(self.neighbours)


@dataclass(frozen=True)
class SegmentRecipe:
    """One recording of the material.  ``speaker`` is a speaker id of the engine registry
    (``tts:en-us+m3``, ``flite:awb``) for speech, empty for music and noise."""

    split: str
    index: int
    kind: str
    speaker: str
    language: str
    seconds: float
    seed: int
    content: str
    """Digest of the sentences and fragments the segment is made of (part of its id)."""
    owner: str = ""
    """The keyword whose fragments a speech segment carries (its neighbours are in ``texts``)."""
    texts: tuple[str, ...] = ()
    """The sentences it speaks, in turn (from the start again when they run out)."""

    @property
    def segment_id(self) -> str:
        return clip_id_for(
            SOURCE,
            self.split,
            self.index,
            self.kind,
            self.speaker,
            self.language,
            f"{self.seconds:.3f}",
            self.seed,
            self.owner,
            self.content,
        )


def voice_of(speaker: str) -> tuple[str, str]:
    """``(engine, voice)`` of a TTS speaker id; ValueError for a recorded speaker."""
    for entry in REGISTRY:
        for prefix in entry.speaker_prefixes:
            if speaker.startswith(prefix):
                return entry.name, speaker.removeprefix(prefix)
    raise ValueError(f"{speaker!r} is not a voice of a registered TTS engine")


def is_tts_speaker(speaker: str) -> bool:
    return REGISTRY.speaker_engine(speaker) is not None


def content_digest(words: Sequence[str], fragment_ids: Sequence[str]) -> str:
    """A short digest of what a segment is made of."""
    h = hashlib.sha256()
    for part in (*words, "|", *fragment_ids):
        h.update(part.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def other_language_voices(settings: NegativeMaterialSettings, language: str) -> list[str]:
    """espeak-ng speaker ids of ``settings.other_languages`` (the config's language skipped;
    languages espeak-ng lacks are left out)."""
    primary = language.split("-")[0].lower()
    offered = set(tts.list_voices())
    return [
        tts_speaker_id(code)
        for code in settings.other_languages
        if code.split("-")[0].lower() != primary and code in offered
    ]


def plan_segments(
    settings: NegativeMaterialSettings,
    language: str,
    voices: Mapping[str, Sequence[str]],
    other_voices: Sequence[str],
    words: MaterialWords,
) -> list[SegmentRecipe]:
    """The segments of every split: ``voices[split]`` are the TTS speakers that speak that
    split's material (the train split's voices for ``train``, others for ``heldout``); each
    segment draws its kind by the settings' shares, its voice and its keyword in turn, and its
    sentences (:func:`segment_texts`)."""
    plan: list[SegmentRecipe] = []
    for split, hours in ((TRAIN, settings.hours), (HELDOUT, settings.heldout_hours)):
        count = round(hours * 3600.0 / settings.segment_seconds)
        speakers = list(voices.get(split) or ())
        if count == 0:
            continue
        if not speakers:
            raise MaterialError(
                f"negative material: no TTS voice to speak the {split} material (the validated "
                f"set has no TTS speaker in that split)"
            )
        split_index = MATERIAL_SPLITS.index(split)
        rng = np.random.default_rng([settings.seed, split_index])
        others = list(other_voices)
        keywords = words.keywords
        for index in range(count):
            draw = rng.random()
            kind = SPEECH
            if draw < settings.music_share:
                kind = MUSIC
            elif draw < settings.music_share + settings.noise_share:
                kind = NOISE
            elif others and draw < (
                settings.music_share + settings.noise_share + settings.other_language_share
            ):
                kind = OTHER_LANGUAGE
            speaker, lang = "", language
            if kind in (SPEECH, NOISE):  # a noise segment may be babble of this voice
                speaker = speakers[index % len(speakers)]
            elif kind == OTHER_LANGUAGE:
                speaker = others[index % len(others)]
                lang = voice_of(speaker)[1]
            owner = keywords[index % len(keywords)] if keywords and kind == SPEECH else ""
            fragment_ids = words.fragment_ids.get(owner, ())
            texts = segment_texts(
                kind,
                lang,
                words,
                owner,
                settings.segment_seconds,
                np.random.default_rng([settings.seed, split_index, index, TEXT_DRAWS]),
            )
            plan.append(
                SegmentRecipe(
                    split,
                    index,
                    kind,
                    speaker,
                    lang,
                    settings.segment_seconds,
                    int(rng.integers(0, 2**31 - 1)),
                    "" if kind == MUSIC else content_digest(texts, fragment_ids),
                    owner,
                    texts,
                )
            )
    return plan


def segment_texts(
    kind: str,
    language: str,
    words: MaterialWords,
    owner: str,
    seconds: float,
    rng: np.random.Generator,
) -> tuple[str, ...]:
    """The sentences a segment speaks: for speech, common words with about
    :data:`NEIGHBOUR_SHARE` of ``owner``'s phoneme neighbours among them; for babble, common
    words; for another language, its own words (the common ones where it has none); none for
    music.  The draws are the same whatever the words are (positions into the lists), so a
    sentence changes only where it drew a word that changed: a segment keeps its id, its stored
    audio and its cached embeddings when a keyword it does not belong to changes."""
    if kind == MUSIC:
        return ()
    pool = words.common
    if kind == OTHER_LANGUAGE:
        pool = tuple(top_words(language, OTHER_LANGUAGE_WORDS) or pool)
    hard = words.neighbours.get(owner, ()) if kind == SPEECH else ()
    texts = []
    for _ in range(math.ceil(seconds / 60.0 * TEXTS_PER_MINUTE)):
        n = int(rng.integers(SENTENCE_WORDS[0], SENTENCE_WORDS[1] + 1))
        slots = rng.integers(0, max(len(pool), 1), size=n)
        use_hard = rng.random(n) < NEIGHBOUR_SHARE
        hard_slots = rng.integers(0, max(len(hard), 1), size=n)
        draws = zip(slots.tolist(), use_hard.tolist(), hard_slots.tolist(), strict=True)
        chosen = [hard[h] if take and hard else pool[s] if pool else "" for s, take, h in draws]
        texts.append(" ".join(w for w in chosen if w))
    return tuple(t for t in texts if t)


def speak(text: str, speaker: str, sample_rate: int, rng: np.random.Generator) -> np.ndarray | None:
    """``text`` by a TTS speaker at a random rate (and pitch where the engine has one),
    trimmed of silence, at ``sample_rate``; None where the engine refuses it."""
    engine_name, voice = voice_of(speaker)
    engine = ENGINES[engine_name]
    rate = float(rng.uniform(*RATE_RANGE))
    pitch = float(rng.uniform(*PITCH_RANGE)) if engine.pitch_control(voice) else 1.0
    try:
        rendered = engine.render(
            text, voice, rate=round(rate, 3), pitch=round(pitch, 3), seed=int(rng.integers(1 << 30))
        )
    except (TtsEngineError, tts.TtsError):
        return None
    samples = resample(rendered.samples, rendered.sample_rate, sample_rate)
    trimmed, _ = tts.trim_silence(samples, sample_rate, TRIM_DB)
    return trimmed if trimmed.size else None


def keyword_fragment(clip: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """The first or last part (25 to 55% of the spoken stretch) of a keyword clip: what a window
    sliding over the keyword sees at its edges, or a word that only starts like it."""
    spoken, _ = tts.trim_silence(np.asarray(clip, np.float32), sample_rate, TRIM_DB)
    if spoken.size < 4:
        return spoken
    keep = max(1, int(spoken.size * rng.uniform(*FRAGMENT_SHARE)))
    return spoken[:keep] if rng.random() < 0.5 else spoken[-keep:]


def _at_level(piece: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return scale_to_dbfs(piece.astype(np.float32), float(rng.uniform(*SPEECH_DBFS)))


def _speech(
    recipe: SegmentRecipe,
    texts: Sequence[str],
    fragments: Sequence[np.ndarray],
    fragments_per_minute: float,
    sample_rate: int,
    rng: np.random.Generator,
) -> np.ndarray:
    if not texts:
        raise MaterialError("negative material: no words to speak")
    target = int(recipe.seconds * sample_rate)
    fragment_p = 0.0
    parts: list[np.ndarray] = []
    filled, failures, said = 0, 0, 0
    while filled < target:
        text = texts[said % len(texts)]
        said += 1
        spoken = speak(text, recipe.speaker, sample_rate, rng)
        if spoken is None:
            failures += 1
            if failures >= MAX_RENDER_FAILURES:
                raise MaterialError(f"{recipe.speaker} spoke none of {failures} sentences")
            continue
        failures = 0
        sentence_s = spoken.size / sample_rate
        fragment_p += fragments_per_minute * sentence_s / 60.0
        gap = np.zeros(int(rng.uniform(*GAP_S) * sample_rate), np.float32)
        parts += [gap, _at_level(spoken, rng)]
        filled += gap.size + spoken.size
        while fragments and rng.random() < fragment_p:
            fragment_p -= 1.0
            piece = keyword_fragment(fragments[int(rng.integers(len(fragments)))], sample_rate, rng)
            short = np.zeros(int(rng.uniform(0.0, 0.3) * sample_rate), np.float32)
            parts += [short, _at_level(piece, rng)]
            filled += short.size + piece.size
    return np.concatenate(parts)[:target]


def _music(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Music-like audio: a melody and chords of harmonic tones with attack/decay envelopes on a
    beat, vibrato, and noise-burst percussion.  Not music, but its structure: sustained pitched
    harmonics, onsets on a grid, and broadband hits."""
    n = int(seconds * sample_rate)
    out = np.zeros(n, np.float32)
    beat = 60.0 / float(rng.uniform(70, 160))
    root = float(rng.uniform(110, 330))
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12], dtype=np.float64)
    t_start = 0.0
    while t_start < seconds:
        length = beat * float(rng.choice([0.5, 1, 1, 2]))
        count = int(length * sample_rate)
        first = int(t_start * sample_rate)
        if first >= n:
            break
        count = min(count, n - first)
        t = np.arange(count) / sample_rate
        env = np.minimum(t / 0.01, 1.0) * np.exp(-t / max(length * 0.6, 1e-3))
        voices = int(rng.integers(1, 4))
        note = np.zeros(count)
        for _ in range(voices):
            f0 = root * 2 ** (float(rng.choice(scale)) / 12.0) * float(rng.choice([0.5, 1, 2]))
            vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
            for harmonic in range(1, 6):
                if f0 * harmonic < sample_rate / 2:
                    phase = 2 * np.pi * f0 * harmonic * np.cumsum(vibrato) / sample_rate
                    note += np.sin(phase) / harmonic**1.3
        out[first : first + count] += (note * env).astype(np.float32)
        if rng.random() < 0.5:  # percussion on the beat
            hit = min(int(0.08 * sample_rate), n - first)
            decay = np.exp(-np.arange(hit) / (0.015 * sample_rate))
            out[first : first + hit] += (
                colored_noise("white", hit, rng) * decay * float(rng.uniform(0.3, 1.0))
            ).astype(np.float32)
        t_start += length
    return scale_to_dbfs(out, float(rng.uniform(-30.0, -16.0)))


def _noise(recipe: SegmentRecipe, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured noise whose level drifts, or babble (several talkers at once)."""
    n = int(recipe.seconds * sample_rate)
    if rng.random() < 0.5 or not recipe.speaker:
        kind = str(rng.choice(["white", "pink", "brown"]))
        noise = colored_noise(kind, n, rng)  # type: ignore[arg-type]
        drift = np.interp(np.arange(n), np.linspace(0, n, 8), rng.uniform(0.3, 1.0, size=8)).astype(
            np.float32
        )
        return scale_to_dbfs(noise * drift, float(rng.uniform(-40.0, -20.0)))
    talkers = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
    mix = np.zeros(n, np.float32)
    texts = recipe.texts
    for talker in range(talkers):  # each talker from another sentence on
        start = talker * len(texts) // talkers
        mix += _speech(recipe, texts[start:] + texts[:start], (), 0.0, sample_rate, rng)
    return scale_to_dbfs(mix, float(rng.uniform(-32.0, -18.0)))


def render_segment(
    recipe: SegmentRecipe,
    fragments: Sequence[np.ndarray],
    settings: NegativeMaterialSettings,
    sample_rate: int,
) -> np.ndarray:
    """One segment's audio (float32 at ``sample_rate``, ``recipe.seconds`` long), over a pink
    noise floor: its sentences (``recipe.texts``) and, in speech, fragments cut from
    ``fragments`` (the train clips of ``recipe.owner``).  Raises :class:`MaterialError`."""
    rng = np.random.default_rng(int(recipe.segment_id[:12], 16))
    tts.reset_engine()  # espeak-ng carries state from call to call: a segment starts afresh
    if recipe.kind == SPEECH:
        audio = _speech(
            recipe, recipe.texts, fragments, settings.fragments_per_minute, sample_rate, rng
        )
    elif recipe.kind == OTHER_LANGUAGE:
        audio = _speech(recipe, recipe.texts, (), 0.0, sample_rate, rng)
    elif recipe.kind == MUSIC:
        audio = _music(recipe.seconds, sample_rate, rng)
    elif recipe.kind == NOISE:
        audio = _noise(recipe, sample_rate, rng)
    else:
        raise MaterialError(f"unknown material kind {recipe.kind!r}")
    audio = np.asarray(audio, np.float32)
    floor = scale_to_dbfs(colored_noise("pink", audio.size, rng), settings.noise_floor_dbfs)
    return np.clip(audio + floor, -1.0, 1.0).astype(np.float32)


MATERIAL_VOCABULARY = 3000
"""Common words the material's sentences draw from."""
NEIGHBOUR_SHARE = 0.2
"""Share of the sentence words that are the keywords' phoneme neighbours (hard negatives)."""
MAX_FRAGMENT_CLIPS = 120
"""Train keyword clips the fragments are cut from, shared among the keywords (each worker batch
carries them)."""
RENDER_BATCH = 2


@dataclass(frozen=True)
class MaterialFailure:
    """A segment that could not be rendered, and why (the rest of the material stands)."""

    segment_id: str
    speaker: str
    reason: str


@dataclass
class Material:
    """The rendered material: one row per stored segment, the failures, and what it drew on."""

    table: pl.DataFrame
    failures: list[MaterialFailure]
    voices: dict[str, list[str]]
    notes: list[str]


def material_words(
    keywords: Sequence[str],
    negatives: NegativeSettings,
    language: str,
    seed: int,
    fragment_ids: Mapping[str, tuple[str, ...]] | None = None,
) -> MaterialWords:
    """Keyword-free words of ``language`` and each keyword's phoneme neighbours."""
    common = synthesis.sentence_vocabulary(
        keywords, negatives, language, MATERIAL_VOCABULARY, salt=f"{SOURCE}|{seed}"
    )
    neighbours = synthesis.neighbours_by_keyword(keywords, negatives, language)
    return MaterialWords(
        tuple(str(w) for w in common),
        {k: tuple(str(w) for w in ws) for k, ws in neighbours.items()},
        dict(fragment_ids or {}),
    )


def split_voices(validated: pl.DataFrame) -> tuple[dict[str, list[str]], list[str]]:
    """The TTS speakers that speak each split of the material: the train split's voices for
    ``train``; the validation split's (else the test split's, else the train split's: noted) for
    ``heldout``, so held-out material is spoken by voices the head never trained on."""

    def tts_of(split: str) -> list[str]:
        speakers = validated.filter(pl.col("split") == split)["speaker"].unique().to_list()
        return sorted(s for s in speakers if is_tts_speaker(s))

    notes: list[str] = []
    train = tts_of(TRAIN)
    heldout = tts_of("val") or tts_of("test")
    if not heldout:
        heldout = train
        notes.append("no TTS voice outside the train split: the held-out material uses its voices")
    return {TRAIN: train, HELDOUT: heldout}, notes


def keyword_pieces(
    validated: pl.DataFrame,
    keywords: Sequence[str],
    read_clip: Callable[[str], np.ndarray],
    sample_rate: int,
) -> tuple[dict[str, list[np.ndarray]], dict[str, tuple[str, ...]]]:
    """Per keyword, trimmed train clips of it to cut fragments from (its share of
    :data:`MAX_FRAGMENT_CLIPS`, first by clip id), and their clip ids."""
    per_keyword = max(1, MAX_FRAGMENT_CLIPS // max(len(keywords), 1))
    rows = (
        validated.filter((pl.col("split") == TRAIN) & pl.col("label").is_in(list(keywords)))
        .sort("clip_id")
        .group_by("label", maintain_order=True)
        .head(per_keyword)
    )
    pieces: dict[str, list[np.ndarray]] = {}
    ids: dict[str, list[str]] = {}
    for row in rows.iter_rows(named=True):
        trimmed, _ = tts.trim_silence(read_clip(row["uri"]), sample_rate, TRIM_DB)
        if trimmed.size:
            pieces.setdefault(row["label"], []).append(trimmed.astype(np.float32))
            ids.setdefault(row["label"], []).append(str(row["clip_id"]))
    return pieces, {k: tuple(v) for k, v in ids.items()}


def _render_and_store(
    recipe: SegmentRecipe,
    fragments: Mapping[str, Sequence[np.ndarray]],
    settings: NegativeMaterialSettings,
    sample_rate: int,
    store: ClipStore,
) -> str | MaterialFailure:
    try:
        audio = render_segment(recipe, fragments.get(recipe.owner, ()), settings, sample_rate)
    except MaterialError as err:
        return MaterialFailure(recipe.segment_id, recipe.speaker, str(err))
    return store.put(segment_key(store, recipe), audio, sample_rate)


def segment_key(store: ClipStore, recipe: SegmentRecipe) -> str:
    return store.key_for(SOURCE, UNKNOWN_LABEL, recipe.segment_id)


def build_material(
    settings: NegativeMaterialSettings,
    audio: AudioSettings,
    negatives: NegativeSettings,
    keywords: Sequence[str],
    language: str,
    validated: pl.DataFrame,
    store: ClipStore,
    read_clip: Callable[[str], np.ndarray],
    *,
    workers: int = 1,
    progress: Progress | None = None,
) -> Material:
    """Plan, render and store the material (a segment already in the store, same id, is not
    rendered again: its id is a digest of everything it is made of).  A segment that cannot be
    rendered is a :class:`MaterialFailure`, never the end of the run."""
    voices, notes = split_voices(validated)
    if settings.hours + settings.heldout_hours == 0:
        return Material(pl.DataFrame(schema=MATERIAL_SCHEMA), [], voices, notes)
    fragments, fragment_ids = (
        keyword_pieces(validated, keywords, read_clip, audio.sample_rate)
        if settings.fragments_per_minute > 0
        else ({}, {})
    )
    words = material_words(keywords, negatives, language, settings.seed, fragment_ids)
    plan = plan_segments(
        settings, language, voices, other_language_voices(settings, language), words
    )
    todo = [r for r in plan if not store.exists(segment_key(store, r))]
    rendered = batched_process_map(
        functools.partial(
            _render_and_store,
            fragments=fragments,
            settings=settings,
            sample_rate=audio.sample_rate,
            store=store,
        ),
        todo,
        workers,
        RENDER_BATCH,
        batch_setup=tts.reset_engine,
        batch_context=store.batch_writes,
        progress=progress,
        total=len(todo),
    )
    failures = [r for r in rendered if isinstance(r, MaterialFailure)]
    failed = {f.segment_id for f in failures}
    rows = [
        {
            "segment_id": r.segment_id,
            "uri": store.uri_for(segment_key(store, r)),
            "split": r.split,
            "kind": r.kind,
            "speaker": r.speaker,
            "language": r.language,
            "seconds": r.seconds,
        }
        for r in plan
        if r.segment_id not in failed
    ]
    if len(todo) < len(plan):
        notes.append(f"{len(plan) - len(todo)} of {len(plan)} segments were already stored")
    return Material(pl.DataFrame(rows, schema=MATERIAL_SCHEMA), failures, voices, notes)


MATERIAL_SCHEMA: dict[str, type[pl.DataType]] = {
    "segment_id": pl.String,
    "uri": pl.String,
    "split": pl.String,
    "kind": pl.String,
    "speaker": pl.String,
    "language": pl.String,
    "seconds": pl.Float64,
}
