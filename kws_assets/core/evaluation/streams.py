"""The audio a wake-word detector is evaluated on: long keyword-free recordings (sentences by
TTS voices, the split's non-keyword clips, bursts of coloured noise, a noise floor) and recordings
with keyword clips embedded at known places.

Pure: voices, word lists and clips in, audio arrays out.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from kws_assets.core.audio.io import colored_noise, resample, scale_to_dbfs
from kws_assets.core.speech import tts
from kws_assets.core.storage.render_cache import NO_CACHE, RenderCache
from kws_assets.settings import SILENCE_LABEL, NoiseKind

SENTENCE_WORDS = (5, 12)
SENTENCE_RATE = (120, 210)
SENTENCE_PITCH = (20, 80)
GAP_S = (0.1, 0.8)
"""Pause between pieces of the negative stream, seconds."""
POSITIVE_LEAD_S = (1.0, 2.5)
"""Negative audio before each embedded keyword clip, seconds."""
NOISE_PIECE_S = (0.5, 3.0)
NOISE_PIECE_DBFS = (-45.0, -20.0)
NOISE_PIECE_SHARE = 0.1
"""About this share of the negative stream's pieces are bursts of coloured noise."""
TRIM_DB = -45.0


SENTENCE_BLOCK = 32
"""Sentences spoken (and cached) together, after one fresh start of espeak-ng."""


def speak_sentences(
    words: Sequence[str],
    voices: Sequence[str],
    count: int,
    sample_rate: int,
    rng: np.random.Generator,
    cache: RenderCache = NO_CACHE,
    workers: int = 1,
    hard: Sequence[Sequence[str]] = (),
    hard_share: float = 0.0,
) -> list[np.ndarray]:
    """``count`` sentences of random ``words`` (5-12 each), each by a random voice at a random
    rate and pitch, trimmed of leading/trailing silence.  Voices espeak-ng rejects are skipped.

    The sentences are drawn and spoken in blocks of :data:`SENTENCE_BLOCK`.  Each block draws
    from a random stream of its own (one draw of ``rng`` seeds them all), and about
    ``hard_share`` of its words come from one list of ``hard`` (in turn: e.g. block ``b`` speaks
    keyword ``b mod n``'s phoneme neighbours); every draw is a position, whatever the words are.
    So a block changes only where a word it drew changed: when one keyword changes, the blocks
    of the others that drew no word it frees or forbids are as before.

    espeak-ng is started afresh before each block, so a block's audio is a function of its
    requests (as in a new process) and is kept in ``cache``: a re-run drawing the same sentences
    speaks none of them.  The blocks not in the cache are spoken on ``workers`` processes.  The
    draws and the audio are the same with or without the cache, for any worker count."""
    if not words or not voices:
        return []
    base = int(rng.integers(0, 2**63 - 1))
    blocks: list[list[tuple[str, str, int, int]]] = []
    for b, start in enumerate(range(0, count, SENTENCE_BLOCK)):
        draw = np.random.default_rng([base, b])
        own = hard[b % len(hard)] if hard else ()
        block = []
        for _ in range(min(SENTENCE_BLOCK, count - start)):
            n = int(draw.integers(SENTENCE_WORDS[0], SENTENCE_WORDS[1] + 1))
            slots = draw.integers(0, len(words), size=n).tolist()
            take_hard = (draw.random(n) < hard_share).tolist()
            hard_at = draw.random(n).tolist()  # a position in ``own``, whatever its length
            text = " ".join(
                str(own[int(h * len(own))]) if t and own else str(words[s])
                for s, t, h in zip(slots, take_hard, hard_at, strict=True)
            )
            voice = str(voices[int(draw.integers(0, len(voices)))])
            rate = int(draw.integers(*SENTENCE_RATE))
            pitch = int(draw.integers(*SENTENCE_PITCH))
            block.append((text, voice, rate, pitch))
        blocks.append(block)
    keys = [
        {
            "what": "espeak-ng sentences, trimmed, fresh engine",
            "sentences": block,
            "sample_rate": sample_rate,
            "trim_db": TRIM_DB,
        }
        for block in blocks
    ]
    rendered = cache.map(
        keys,
        functools.partial(_speak_block, sample_rate=sample_rate),
        blocks,
        workers,
        pieces=True,
    )
    return [p for pieces in cast(list[list[np.ndarray]], rendered) for p in pieces if p.size]


def _speak_block(block: Sequence[tuple[str, str, int, int]], sample_rate: int) -> list[np.ndarray]:
    """Each sentence's trimmed audio (empty where espeak-ng cannot speak it), espeak-ng started
    afresh first."""
    tts.reset_engine()
    out = []
    for text, voice, rate, pitch in block:
        try:
            synthesis = tts.synthesize(text, voice=voice, rate=rate, pitch=pitch)
        except tts.TtsError:
            out.append(np.zeros(0, np.float32))
            continue
        samples = resample(synthesis.samples, synthesis.sample_rate, sample_rate)
        trimmed, _ = tts.trim_silence(samples, sample_rate, TRIM_DB)
        out.append(np.asarray(trimmed, np.float32))
    return out


def trim_clip(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """A clip without the (often digital) silence around its sound."""
    trimmed, _ = tts.trim_silence(np.asarray(samples, np.float32), sample_rate, TRIM_DB)
    return trimmed


def noise_piece(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A burst of coloured noise of random kind, length and level."""
    n = int(rng.uniform(*NOISE_PIECE_S) * sample_rate)
    kind = cast("NoiseKind", str(rng.choice(["white", "pink", "brown"])))
    return scale_to_dbfs(colored_noise(kind, n, rng), float(rng.uniform(*NOISE_PIECE_DBFS)))


def concatenate_pieces(
    pieces: Sequence[np.ndarray], seconds: float, sample_rate: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Pieces in random order with short random pauses until ``seconds`` are filled (noise bursts
    interleaved); returns the audio and how many times the material had to be reused (0 when
    there was enough)."""
    usable = [p for p in pieces if p.size]
    if not usable:
        raise ValueError("no audio to build a stream from")
    target = int(seconds * sample_rate)
    parts: list[np.ndarray] = []
    filled, passes = 0, 0
    while filled < target:
        for index in rng.permutation(len(usable)):
            if filled >= target:
                break
            piece = (
                noise_piece(sample_rate, rng) if rng.random() < NOISE_PIECE_SHARE else usable[index]
            )
            gap = np.zeros(int(rng.uniform(*GAP_S) * sample_rate), dtype=np.float32)
            parts += [gap, piece]
            filled += gap.size + piece.size
        passes += 1
    return np.concatenate(parts)[:target].astype(np.float32), passes - 1


NOISE_FLOOR_BLOCK_SAMPLES = 1 << 19
"""The pink noise floor's block (about 33 s at 16 kHz), drawn once and laid down in turn: one
FFT over a 30-minute stream would hold ~1.5 GB of float64 and complex intermediates."""


def add_noise_floor(samples: np.ndarray, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Pink noise at ``level_dbfs`` under the whole recording (no stretch is digital silence).

    One block of :data:`NOISE_FLOOR_BLOCK_SAMPLES` of pink noise is drawn, then laid under the
    recording block after block, each time from a random point of it (circularly) with a random
    sign, at the level: a floor under an hour of streams costs one block's FFT (0.04 s), where
    drawing every block afresh cost 1.8 s per 30 minutes; memory does not grow with length."""
    out = np.array(samples, dtype=np.float32, copy=True)
    if out.size == 0:
        return out
    size = min(NOISE_FLOOR_BLOCK_SAMPLES, out.size)
    floor = colored_noise("pink", size, rng)
    for start in range(0, out.size, size):
        count = min(size, out.size - start)
        piece = np.roll(floor, -int(rng.integers(size)))[:count]
        sign = np.float32(1.0 if rng.random() < 0.5 else -1.0)
        out[start : start + count] += sign * scale_to_dbfs(piece, level_dbfs)
    return out


@dataclass(frozen=True)
class Positive:
    """A keyword clip placed in the positive stream."""

    label: str
    start_s: float
    clip_id: str


def embed_positives(
    clips: Sequence[tuple[np.ndarray, str, str]],
    fillers: Sequence[np.ndarray],
    sample_rate: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[Positive]]:
    """A recording of ``(clip, label, clip_id)`` keyword clips, each after 1-2.5 s of filler
    audio (a random stretch of the negative material); returns it and where each clip starts."""
    if not fillers:
        raise ValueError("embedding positives needs filler audio")
    material = np.concatenate([f for f in fillers if f.size]).astype(np.float32)
    parts: list[np.ndarray] = []
    positives: list[Positive] = []
    position = 0
    for clip, label, clip_id in clips:
        lead = int(rng.uniform(*POSITIVE_LEAD_S) * sample_rate)
        offset = int(rng.integers(0, max(1, material.size - lead)))
        filler = material[offset : offset + lead]
        parts.append(filler)
        position += filler.size
        positives.append(Positive(label, position / sample_rate, clip_id))
        parts.append(np.asarray(clip, dtype=np.float32))
        position += len(clip)
    tail = int(POSITIVE_LEAD_S[1] * sample_rate)
    parts.append(material[:tail])
    return np.concatenate(parts).astype(np.float32), positives


def concatenate_clips(
    clips: Sequence[tuple[np.ndarray, str, str]],
    keywords: Collection[str],
    sample_rate: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[Positive]]:
    """One stream of every ``(clip, label, clip_id)`` once, in a random order, each after a
    pause of :data:`GAP_S` (one more at the end): a keyword then sits among the set's other
    words, as in running speech, instead of after filler the model was never trained to
    confuse with it.  A word clip is trimmed of the silence around its word (a ``_silence_``
    clip stays whole: it is background); a clip of a label in ``keywords`` is a
    :class:`Positive` at the sample where its uncut clip would start, i.e. the window that has
    the word where the clip had it (as :func:`embed_positives` records)."""
    parts: list[np.ndarray] = []
    positives: list[Positive] = []
    position = 0
    for index in rng.permutation(len(clips)):
        samples, label, clip_id = clips[int(index)]
        gap = np.zeros(int(rng.uniform(*GAP_S) * sample_rate), dtype=np.float32)
        parts.append(gap)
        position += gap.size
        audio = np.asarray(samples, dtype=np.float32)
        offset = 0
        if label != SILENCE_LABEL:
            audio, offset = tts.trim_silence(audio, sample_rate, TRIM_DB)
        if not audio.size:  # a digitally silent clip holds no word to place
            continue
        if label in keywords:
            positives.append(Positive(label, (position - offset) / sample_rate, clip_id))
        parts.append(audio)
        position += audio.size
    parts.append(np.zeros(int(rng.uniform(*GAP_S) * sample_rate), dtype=np.float32))
    return np.concatenate(parts).astype(np.float32), positives
