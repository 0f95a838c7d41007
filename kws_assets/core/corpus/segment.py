"""Turn word alignments of an utterance into fixed-length keyword and ``_unknown_`` clips.

Each keyword occurrence becomes a clip centred on the word (short fades at the cut edges,
zero-padded where the utterance ends); a keyword phrase is its words aligned in a row, and one
longer than the clip is quarantined (``speech_over_window``), never cut to its middle.  A few
non-keyword words per utterance become ``_unknown_`` clips, chosen deterministically so re-runs
cut the same ones.

The utterance's ``language`` picks the aligner when an ``aligners.AlignerChoice`` is given
(pocketsphinx for English, TTS+DTW for other languages); keywords are matched in the form that
aligner spells words (``"Sí"`` meets ``"sí"``), and every clip row carries the aligner's name and
the word's confidence, which curation compares with ``alignment.min_confidence``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from kws_assets.core.audio.io import (
    AudioReadError,
    SpeechOverWindow,
    check_speech_fits,
    cut_centered,
    read_audio,
)
from kws_assets.core.dataset.curation import STAGE_CLIP, dead_letter
from kws_assets.core.parallel import Progress, batched_process_map
from kws_assets.core.speech import tts
from kws_assets.core.speech.aligners import (
    AlignerChoice,
    NoAlignerError,
    WordAligner,
    as_word_aligner,
)
from kws_assets.core.speech.alignment import Aligner, AlignmentResult, WordSpan
from kws_assets.core.storage.atomic_files import write_file_atomic
from kws_assets.core.storage.clip_store import ClipStore, clip_id_for
from kws_assets.settings import UNKNOWN_LABEL, AlignmentSettings, AudioSettings

MIN_UNKNOWN_WORD_CHARS = 2
ALIGN_BATCH_UTTERANCES = 4
"""Utterances a worker process aligns per batch (each takes a good fraction of a second)."""


@dataclass(frozen=True)
class WordClip:
    label: str
    word: str
    start_s: float
    end_s: float
    confidence: float
    samples: np.ndarray
    over_window: str = ""
    """Why a keyword was not cut: its speech is longer than the clip (empty when it was cut)."""


def _stable_rank(utterance_id: str, index: int) -> str:
    return hashlib.sha256(f"{utterance_id}|{index}".encode()).hexdigest()


def merge_phrases(words: list[WordSpan], phrases: dict[tuple[str, ...], str]) -> list[WordSpan]:
    """Aligned words with every run of consecutive words that spells a phrase (a key of
    ``phrases``: its words in the aligner's spelling) merged into one span named by the phrase's
    value, from the first word's start to the last word's end, as confident as its least
    confident word.  Longer phrases are matched first; single-word keys are left alone."""
    multi = sorted((p for p in phrases if len(p) > 1), key=len, reverse=True)
    if not multi:
        return list(words)
    merged: list[WordSpan] = []
    i = 0
    while i < len(words):
        for phrase in multi:
            run = words[i : i + len(phrase)]
            if tuple(w.word for w in run) == phrase:
                merged.append(
                    WordSpan(
                        phrases[phrase],
                        run[0].start_s,
                        run[-1].end_s,
                        min(w.confidence for w in run),
                    )
                )
                i += len(phrase)
                break
        else:
            merged.append(words[i])
            i += 1
    return merged


def choose_clips(
    words: list[WordSpan],
    keywords: list[str],
    utterance_id: str,
    unknown_per_utterance: int,
    min_word_seconds: float,
) -> list[tuple[str, WordSpan]]:
    """Which aligned words to cut: every keyword, plus up to N other words as ``_unknown_``.

    A keyword phrase ("hey jarvis") is matched as consecutive aligned words and chosen as one
    span; its words are never cut as ``_unknown_`` (they are part of a keyword there)."""
    keyword_set = set(keywords)
    words = merge_phrases(words, {tuple(k.split()): k for k in keywords})
    chosen = [(w.word, w) for w in words if w.word in keyword_set]
    others = [
        (i, w)
        for i, w in enumerate(words)
        if w.word not in keyword_set
        and len(w.word) >= MIN_UNKNOWN_WORD_CHARS
        and (w.end_s - w.start_s) >= min_word_seconds
    ]
    others.sort(key=lambda item: _stable_rank(utterance_id, item[0]))
    chosen += [(UNKNOWN_LABEL, w) for _, w in others[:unknown_per_utterance]]
    return chosen


def cut_word_clips(
    samples: np.ndarray,
    sample_rate: int,
    words: list[WordSpan],
    keywords: list[str],
    utterance_id: str,
    clip_samples: int,
    fade_ms: float,
    unknown_per_utterance: int,
    min_word_seconds: float,
) -> list[WordClip]:
    """Cut one clip per chosen word, centred on the word's aligned span.

    A keyword whose aligned span is longer than the clip is not cut: its :class:`WordClip` has
    no samples and says why in ``over_window`` (the caller quarantines it)."""
    clips = []
    for label, span in choose_clips(
        words, keywords, utterance_id, unknown_per_utterance, min_word_seconds
    ):
        if label != UNKNOWN_LABEL:
            try:
                check_speech_fits(
                    round(span.duration_s * sample_rate),
                    clip_samples,
                    sample_rate,
                    fade_ms,
                    f"aligned {span.word!r}",
                )
            except SpeechOverWindow as exc:
                empty = np.zeros(0, dtype=np.float32)
                clips.append(
                    WordClip(
                        label, span.word, span.start_s, span.end_s, span.confidence, empty, str(exc)
                    )
                )
                continue
        centre_s = (span.start_s + span.end_s) / 2
        clip = cut_centered(samples, sample_rate, centre_s, clip_samples, fade_ms)
        clips.append(WordClip(label, span.word, span.start_s, span.end_s, span.confidence, clip))
    return clips


ALIGNMENT_CACHE_FORMAT = "alignment-cache-v1"
"""Part of every alignment cache key: bump it when what an aligner returns changes meaning."""


@dataclass(frozen=True)
class AlignmentCache:
    """Alignments kept by what they are a function of: the aligner (its name and the alignment
    settings), the recording (an utterance id is a digest of its audio), its transcript and
    language.  A re-run with a keyword changed re-aligns none of the recordings it aligned
    before (pocketsphinx took most of each unchanged keyword partition's time).  One JSON file
    per alignment under ``folder`` (None: no cache); a file that does not load is a miss."""

    folder: Path | None

    def key(self, aligner: str, settings: AlignmentSettings, utt: dict, sample_rate: int) -> str:
        request = {
            "format": ALIGNMENT_CACHE_FORMAT,
            "aligner": aligner,
            "settings": settings.model_dump(mode="json"),
            "utterance": utt["utterance_id"],
            "transcript": utt["transcript"],
            "language": utt["language"],
            "sample_rate": sample_rate,
        }
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> AlignmentResult | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            words = [WordSpan(**w) for w in body.pop("words")]
            return AlignmentResult(words=words, **body)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def put(self, key: str, result: AlignmentResult) -> None:
        path = self._path(key)
        if path is not None:
            write_file_atomic(path, json.dumps(asdict(result)))


NO_ALIGNMENT_CACHE = AlignmentCache(None)


@dataclass(frozen=True)
class AlignmentFailure:
    utterance_id: str
    uri: str
    reason: str
    oov_words: tuple[str, ...]


def align_utterances(
    utterances: list[dict],
    keywords: list[str],
    aligner: Aligner | WordAligner | AlignerChoice,
    store: ClipStore,
    audio: AudioSettings,
    settings: AlignmentSettings,
    labels: Collection[str] | None = None,
    *,
    workers: int = 1,
    batch_size: int = ALIGN_BATCH_UTTERANCES,
    progress: Progress | None = None,
    cache: AlignmentCache = NO_ALIGNMENT_CACHE,
) -> tuple[list[dict], list[AlignmentFailure], dict[str, str]]:
    """Align each utterance to its transcript and cut keyword / ``_unknown_`` clips into the store.

    ``labels`` (default: all) limits which of the chosen clips are cut and stored — e.g. one
    keyword, or only ``_unknown_`` — while the choice itself still sees every keyword.
    ``aligner`` is one aligner for every utterance, or an ``AlignerChoice`` that picks one per
    utterance ``language``; a language no aligner serves is an alignment failure.
    Returns the clip rows, the utterances that could not be aligned (with their out-of-dictionary
    words), and the words whose pronunciation came from the g2p instead of the dictionary.

    Utterances are aligned in batches of ``batch_size`` on ``workers`` processes (each process
    keeps its own copy of the aligner; espeak-ng, which renders the TTS+DTW references, starts
    afresh before every batch), so the result is the same, in input order, for any worker count.
    An alignment in ``cache`` (:class:`AlignmentCache`) is not computed again.
    """
    rows: list[dict] = []
    failures: list[AlignmentFailure] = []
    g2p_words: dict[str, str] = {}

    def align_one(utt: dict) -> UtteranceClips:
        return _align_utterance(utt, keywords, aligner, store, audio, settings, labels, cache)

    # the TTS+DTW aligner speaks its reference with espeak-ng, which restarts per batch
    batches = batched_process_map(
        align_one,
        utterances,
        workers,
        batch_size,
        batch_setup=tts.reset_engine,
        batch_context=store.batch_writes,
        progress=progress,
        total=len(utterances),
    )
    for done in batches:
        rows.extend(done.rows)
        if done.failure is not None:
            failures.append(done.failure)
        g2p_words.update(done.g2p_words)
    return rows, failures, g2p_words


@dataclass(frozen=True)
class UtteranceClips:
    """What one utterance gave: its clip rows, or why it could not be aligned."""

    rows: list[dict]
    failure: AlignmentFailure | None
    g2p_words: dict[str, str]


def _align_utterance(
    utt: dict,
    keywords: list[str],
    aligner: Aligner | WordAligner | AlignerChoice,
    store: ClipStore,
    audio: AudioSettings,
    settings: AlignmentSettings,
    labels: Collection[str] | None,
    cache: AlignmentCache = NO_ALIGNMENT_CACHE,
) -> UtteranceClips:
    """Align one utterance (unless ``cache`` has it) and cut and store its chosen clips."""
    try:
        info = read_audio(utt["uri"], target_sr=audio.sample_rate)
    except AudioReadError as exc:
        failure = AlignmentFailure(utt["utterance_id"], utt["uri"], f"unreadable: {exc}", ())
        return UtteranceClips([], failure, {})
    try:
        word_aligner = as_word_aligner(aligner, utt["language"])
    except NoAlignerError as exc:
        reason = f"no aligner for language {utt['language']!r}: {exc}"
        return UtteranceClips([], AlignmentFailure(utt["utterance_id"], utt["uri"], reason, ()), {})
    key = cache.key(word_aligner.name, settings, utt, info.sample_rate)
    result = cache.get(key)
    if result is None:
        result = word_aligner.align(info.samples, info.sample_rate, utt["transcript"])
        cache.put(key, result)
    if not result.ok:
        failure = AlignmentFailure(
            utt["utterance_id"],
            utt["uri"],
            result.error or "alignment failed",
            tuple(result.oov_words),
        )
        return UtteranceClips([], failure, dict(result.g2p_words))
    rows: list[dict] = []
    spans = as_keywords(result.words, keywords, word_aligner)
    for clip in cut_word_clips(
        info.samples,
        info.sample_rate,
        spans,
        keywords,
        utt["utterance_id"],
        audio.clip_samples,
        audio.fade_ms,
        settings.unknown_per_utterance,
        settings.min_word_seconds,
    ):
        if labels is not None and clip.label not in labels:
            continue
        if clip.over_window:
            rows.append(_over_window_row(utt, clip, audio))
            continue
        clip_id = clip_id_for(
            utt["source"],
            utt["utterance_id"],
            clip.label,
            f"{clip.start_s:.3f}",
            audio.sample_rate,
            audio.clip_samples,
        )
        key = store.key_for(utt["source"], clip.label, clip_id)
        uri = store.put(key, clip.samples, info.sample_rate)
        rows.append(
            {
                "clip_id": clip_id,
                "uri": uri,
                "label": clip.label,
                "source": utt["source"],
                "speaker": utt["speaker"],
                "language": utt["language"],
                "origin_id": utt["utterance_id"],
                "start_s": clip.start_s,
                "sample_rate": info.sample_rate,
                "num_samples": len(clip.samples),
                "word": clip.word,
                "confidence": clip.confidence,
                "aligner": word_aligner.name,
            }
        )
    return UtteranceClips(rows, None, dict(result.g2p_words))


def _over_window_row(utt: dict, clip: WordClip, audio: AudioSettings) -> dict:
    """The dead letter (stage ``clip``, reason ``speech_over_window``) of a keyword occurrence
    whose aligned speech is longer than the clip: quarantined with its place in the utterance."""
    return dead_letter(
        clip_id_for(utt["utterance_id"], clip.label, f"{clip.start_s:.3f}", STAGE_CLIP),
        stage=STAGE_CLIP,
        reason=SpeechOverWindow.reason,
        detail=f"{clip.over_window} ({clip.start_s:.2f}-{clip.end_s:.2f} s of the utterance)",
        source=utt["source"],
        uri=utt["uri"],
        label=clip.label,
        speaker=utt["speaker"],
        language=utt["language"],
        origin_id=utt["utterance_id"],
    )


def as_keywords(words: list[WordSpan], keywords: list[str], aligner: WordAligner) -> list[WordSpan]:
    """Aligned words with every keyword occurrence renamed to the keyword as configured (an
    aligner spells words its own way: casefolded, accents kept or folded to ASCII); the
    consecutive words of a keyword phrase become one span (:func:`merge_phrases`)."""
    forms = {aligner.keyword_form(k): k for k in keywords}
    words = merge_phrases(words, {tuple(form.split()): k for form, k in forms.items()})
    return [replace(w, word=forms[w.word]) if w.word in forms else w for w in words]
