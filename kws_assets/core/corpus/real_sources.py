"""Real recordings by people, loaded as 1-s evaluation clips (never training data).

The pipeline trains and tests on synthetic speech; a *real source* is how a user measures the
shipped model on real voices.  It is a CSV, TSV or JSONL manifest of one of two kinds:

* ``clips``: ``path,label[,speaker][,word]`` — one word per file, any length up to
  ``max_clip_seconds``.  The file is decoded and resampled (``audio.io.read_audio``), trimmed to
  its speech (``speech.tts.trim_silence``: frames within ``trim_db`` of the loudest one) and the
  speech is centred in one clip (``audio.io.cut_centered``), so a recording with a long lead-in
  still puts its word where the model expects it.  ``_silence_`` clips are cut from the middle of
  the file, untrimmed.
* ``utterances``: ``path,transcript[,speaker]`` — aligned and cut exactly as corpus utterances
  are (``speech.aligners`` picks the aligner per language; ``corpus.segment`` chooses the keyword
  and ``_unknown_`` words and cuts them); a clip whose word confidence is below
  ``alignment.min_confidence`` is rejected (``low_alignment_confidence``), as curation would.

Labels that are not configured keywords become ``_unknown_``; keywords match case-insensitively
and take the configured spelling.  Paths are absolute or relative to the manifest's folder (the
manifest is the user's own evaluation list, like the config file).  Every row that cannot become
a clip is a :class:`RealRejection` with a reason code; only a manifest that cannot be read at all
raises :class:`RealSourceError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kws_assets.core.audio.io import AudioReadError, cut_centered, dbfs, read_audio
from kws_assets.core.audio.quality import (
    ALIGNMENT_FAILED,
    BAD_MANIFEST_ROW,
    DUPLICATE_ROW,
    LOW_ALIGNMENT_CONFIDENCE,
    MISSING_PATH,
    MISSING_TRANSCRIPT,
    SILENT,
    SPEECH_OVER_WINDOW,
    TOO_LONG,
)
from kws_assets.core.corpus.connectors.base import clean_text, text_problem
from kws_assets.core.corpus.connectors.manifest import ManifestError, manifest_rows
from kws_assets.core.corpus.connectors.rows import RowLimits
from kws_assets.core.corpus.segment import as_keywords, cut_word_clips
from kws_assets.core.speech.aligners import (
    AlignerChoice,
    NoAlignerError,
    WordAligner,
    as_word_aligner,
)
from kws_assets.core.speech.tts import trim_silence
from kws_assets.settings import (
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AlignmentSettings,
    AudioSettings,
    IngestSettings,
    RealSourceSettings,
)

CLIPS_KIND = "clips"
UTTERANCES_KIND = "utterances"
PATH_COLUMN = "path"
LABEL_COLUMN = "label"
TRANSCRIPT_COLUMN = "transcript"
SPEAKER_COLUMN = "speaker"
WORD_COLUMN = "word"  # clips only, optional: what was said when the label is _unknown_
TEXT_COLUMN_OF_KIND = {CLIPS_KIND: LABEL_COLUMN, UTTERANCES_KIND: TRANSCRIPT_COLUMN}
MISSING_LABEL = "missing_label"
UNKNOWN_COLUMNS = "unknown_columns"
NO_ALIGNER = "no_aligner"


class RealSourceError(ValueError):
    """The manifest of a real source cannot be read at all (missing, unknown format, header
    without the columns of its kind, or with columns no kind has)."""


@dataclass(frozen=True)
class RealRejection:
    """A manifest row (or one word of an utterance) that gave no clip, and why."""

    row: str  # <manifest>:<line>
    path: str
    reason: str
    detail: str


@dataclass(frozen=True, eq=False)
class RealClips:
    """The clips of one real source: ``samples[i]`` is clip ``i`` (1 s at ``sample_rate``) with
    ``labels[i]`` (a keyword, ``_unknown_`` or ``_silence_``), ``speakers[i]``, ``names[i]`` (the
    file, plus ``#word@start_s`` for words cut out of utterances) and ``words[i]`` (what the
    manifest or the alignment says was spoken)."""

    source: str
    sample_rate: int
    samples: np.ndarray
    labels: list[str]
    speakers: list[str]
    names: list[str]
    words: list[str]
    rejections: list[RealRejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label in self.labels:
            counts[label] = counts.get(label, 0) + 1
        return counts


def label_for(word: str, keywords: Sequence[str]) -> str:
    """The class of a spoken word: the configured keyword it names (case-insensitive),
    ``_silence_`` for ``_silence_``, else ``_unknown_``."""
    folded = " ".join(word.split()).casefold()
    if folded == SILENCE_LABEL:
        return SILENCE_LABEL
    for keyword in keywords:
        if folded == " ".join(keyword.split()).casefold():
            return keyword
    return UNKNOWN_LABEL


def speech_centre_s(samples: np.ndarray, sample_rate: int, trim_db: float) -> tuple[float, float]:
    """(centre, duration) in seconds of the speech in a recording: the span from the first to the
    last 10 ms frame within ``trim_db`` of the loudest frame."""
    kept, offset = trim_silence(samples, sample_rate, threshold_db=-abs(trim_db))
    if kept.size == 0:
        return len(samples) / sample_rate / 2, 0.0
    return (offset + kept.size / 2) / sample_rate, kept.size / sample_rate


def manifest_path(source: RealSourceSettings, base_dir: str | Path | None = None) -> Path:
    """Where the source's manifest is: absolute, or relative to ``base_dir`` (the config's
    folder; the working directory when None)."""
    if not source.manifest:
        raise RealSourceError(
            f"real source {source.name!r}: no manifest given "
            "(set evaluation.real_sources[].manifest)"
        )
    path = Path(source.manifest).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def read_real_manifest(
    source: RealSourceSettings, path: Path
) -> tuple[list[tuple[str, dict]], list[RealRejection]]:
    """``(row_ref, row)`` per usable manifest row and the rows rejected for their shape."""
    text_column = TEXT_COLUMN_OF_KIND[source.kind]
    required = (PATH_COLUMN, text_column)
    known = {PATH_COLUMN, text_column, SPEAKER_COLUMN}
    if source.kind == CLIPS_KIND:
        known.add(WORD_COLUMN)
    if not path.is_file():
        raise RealSourceError(f"real source {source.name!r}: manifest {path} not found")
    try:
        with open(path, "rb") as stream:
            rows = [
                (row.ref, row.values, row.detail or row.reason)
                for row in manifest_rows(
                    path.name, stream, RowLimits.of(IngestSettings()), required=required
                )
            ]
    except ManifestError as exc:
        raise RealSourceError(f"real source {source.name!r} (kind {source.kind}): {exc}") from exc
    except OSError as exc:
        raise RealSourceError(f"real source {source.name!r}: cannot read {path}: {exc}") from exc
    first = next((row for _, row, _ in rows if row is not None), None)
    if path.suffix.lower() != ".jsonl" and first is not None:
        header_unknown = sorted(set(first) - known)
        if header_unknown:
            raise RealSourceError(
                f"real source {source.name!r}: {path.name} has columns {header_unknown} that a "
                f"{source.kind} manifest does not have (allowed: {sorted(known)}); rename or "
                "drop them"
            )
    usable: list[tuple[str, dict]] = []
    rejected: list[RealRejection] = []
    seen: dict[str, str] = {}
    for ref, row, error in rows:
        if row is None:
            rejected.append(RealRejection(ref, "", BAD_MANIFEST_ROW, error))
            continue
        unknown = sorted(set(row) - known)
        if unknown:
            rejected.append(
                RealRejection(
                    ref,
                    str(row.get(PATH_COLUMN, "")),
                    UNKNOWN_COLUMNS,
                    f"keys {unknown} are not {sorted(known)}",
                )
            )
            continue
        problem = next((p for c in known if (p := text_problem(row.get(c), c))), None)
        if problem:
            rejected.append(RealRejection(ref, "", BAD_MANIFEST_ROW, problem))
            continue
        file = clean_text(row.get(PATH_COLUMN))
        if not file:
            rejected.append(RealRejection(ref, "", MISSING_PATH, "the row has no path"))
            continue
        if not clean_text(row.get(text_column)):
            reason = MISSING_LABEL if source.kind == CLIPS_KIND else MISSING_TRANSCRIPT
            rejected.append(RealRejection(ref, file, reason, f"the row has no {text_column}"))
            continue
        if file in seen:
            rejected.append(
                RealRejection(ref, file, DUPLICATE_ROW, f"listed already at {seen[file]}")
            )
            continue
        seen[file] = ref
        usable.append((ref, row))
    return usable, rejected


def _audio_path(manifest: Path, file: str) -> Path:
    path = Path(file).expanduser()
    return path if path.is_absolute() else manifest.parent / path


def _read(
    ref: str, file: str, path: Path, source: RealSourceSettings, sample_rate: int
) -> tuple[np.ndarray | None, RealRejection | None]:
    try:
        info = read_audio(path, target_sr=sample_rate)
    except AudioReadError as exc:
        return None, RealRejection(ref, file, exc.reason, str(exc))
    peak = float(np.max(np.abs(info.samples))) if info.samples.size else 0.0
    if dbfs(peak) < source.min_peak_dbfs:
        return None, RealRejection(
            ref, file, SILENT, f"peak {dbfs(peak):.1f} dBFS is below {source.min_peak_dbfs} dBFS"
        )
    return info.samples, None


def load_real_source(
    source: RealSourceSettings,
    keywords: Sequence[str],
    audio: AudioSettings,
    *,
    alignment: AlignmentSettings | None = None,
    aligner: AlignerChoice | WordAligner | None = None,
    base_dir: str | Path | None = None,
) -> RealClips:
    """The clips of a real source (see the module docstring).

    ``alignment`` (default: ``AlignmentSettings()``) and ``aligner`` matter only for
    ``utterances``; without an aligner an ``AlignerChoice`` over ``alignment`` is built (the
    corpus path's choice: pocketsphinx for English, TTS+DTW otherwise).
    """
    path = manifest_path(source, base_dir)
    rows, rejections = read_real_manifest(source, path)
    sr, n = audio.sample_rate, audio.clip_samples
    clips: list[np.ndarray] = []
    labels: list[str] = []
    speakers: list[str] = []
    names: list[str] = []
    words: list[str] = []
    alignment = alignment or AlignmentSettings()
    if source.kind == UTTERANCES_KIND and aligner is None:
        aligner = AlignerChoice(alignment, sample_rate=sr)
    for ref, row in rows:
        file = clean_text(row[PATH_COLUMN])
        speaker = clean_text(row.get(SPEAKER_COLUMN)) or source.name
        samples, rejection = _read(ref, file, _audio_path(path, file), source, sr)
        if rejection is not None:
            rejections.append(rejection)
            continue
        assert samples is not None  # _read returns the samples or a rejection
        if source.kind == CLIPS_KIND:
            label = label_for(clean_text(row[LABEL_COLUMN]), keywords)
            word = clean_text(row.get(WORD_COLUMN)) or clean_text(row[LABEL_COLUMN])
            duration = len(samples) / sr
            if duration > source.max_clip_seconds:
                rejections.append(
                    RealRejection(
                        ref,
                        file,
                        TOO_LONG,
                        f"{duration:.2f} s > max_clip_seconds {source.max_clip_seconds}",
                    )
                )
                continue
            if label == SILENCE_LABEL:
                centre = duration / 2
            else:
                centre, _ = speech_centre_s(samples, sr, source.trim_db)
            clips.append(cut_centered(samples, sr, centre, n, audio.fade_ms))
            labels.append(label)
            speakers.append(speaker)
            names.append(file)
            words.append(word)
            continue
        try:
            word_aligner = as_word_aligner(aligner, source.language)
        except NoAlignerError as exc:
            rejections.append(RealRejection(ref, file, NO_ALIGNER, str(exc)))
            continue
        result = word_aligner.align(samples, sr, clean_text(row[TRANSCRIPT_COLUMN]))
        if not result.ok:
            detail = result.error or "alignment failed"
            if result.oov_words:
                detail += f" (out of dictionary: {', '.join(result.oov_words)})"
            rejections.append(RealRejection(ref, file, ALIGNMENT_FAILED, detail))
            continue
        spans = as_keywords(result.words, list(keywords), word_aligner)
        for clip in cut_word_clips(
            samples,
            sr,
            spans,
            list(keywords),
            f"{source.name}|{file}",
            n,
            audio.fade_ms,
            alignment.unknown_per_utterance,
            alignment.min_word_seconds,
        ):
            name = f"{file}#{clip.word}@{clip.start_s:.3f}"
            if clip.over_window:  # a keyword longer than the clip: never cut to its middle
                rejections.append(RealRejection(ref, name, SPEECH_OVER_WINDOW, clip.over_window))
                continue
            if clip.confidence < alignment.min_confidence:
                rejections.append(
                    RealRejection(
                        ref,
                        name,
                        LOW_ALIGNMENT_CONFIDENCE,
                        f"word confidence {clip.confidence:.2f} < {alignment.min_confidence}",
                    )
                )
                continue
            clips.append(clip.samples)
            labels.append(clip.label)
            speakers.append(speaker)
            names.append(name)
            words.append(clip.word)
    stacked = np.stack(clips).astype(np.float32) if clips else np.zeros((0, n), np.float32)
    return RealClips(source.name, sr, stacked, labels, speakers, names, words, rejections)
