"""Corpus ingestion: every configured source, listed by its connector, each file read once.

One row per corpus entry (``raw_corpus``).  A usable recording carries its provenance (source,
original path, license, speaker), what the file is (sample rate, channels, libsndfile subtype and
bit depth, duration, size, sha256) and its levels.  An entry that cannot be used stays in the
table as a *rejected* row — ``reject_reason`` and ``reject_detail`` set, named by its original
path — so the quarantine table downstream lists it (stage ``ingest``); nothing is dropped silently
and one bad file never stops the others.

Layouts (see :mod:`kws_assets.core.corpus.connectors`): manifest (CSV/TSV/JSONL), Common Voice,
LibriSpeech, Speech Commands, and the generated demo corpus.  Roots may be local folders or
``s3://`` prefixes; remote files are mirrored locally, content-addressed, as they are hashed.

Re-ingesting an unchanged corpus reads nothing: each file's facts are cached by (location, size,
modification stamp) in a small SQLite table under the ingest work folder.  The table's data
version (:func:`content_version`) is a hash of content, not of paths or times.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from upath import UPath

from kws_assets.core.audio import quality
from kws_assets.core.corpus.connectors import DecoderMissingError, list_source
from kws_assets.core.corpus.connectors.base import (
    CorpusEntry,
    EntryProblem,
    UnsafePathError,
    check_reachable,
    corpus_root,
    is_remote,
    member,
)
from kws_assets.core.corpus.connectors.demo import (
    demo_source_as_manifest,
    generate_demo_corpus,
    tts_speaker_id,
)
from kws_assets.core.corpus.connectors.files import (
    CACHE_FILE,
    FileFacts,
    FileFactsCache,
    inspect_file,
)
from kws_assets.core.speech.text_normalize import normalize_keyword, normalize_text
from kws_assets.core.storage.s3 import S3Connection, transient_storage_error
from kws_assets.core.tables import CORPUS_SCHEMA, PROVENANCE_COLUMNS
from kws_assets.settings import (
    SILENCE_LABEL,
    CorpusSource,
    DemoCorpusSource,
    IngestSettings,
    QualitySettings,
    SpeechCommandsSource,
    StorageSettings,
)

__all__ = [
    "CORPUS_SCHEMA",
    "CorpusLoad",
    "CorpusReading",
    "IngestStats",
    "attach_provenance",
    "content_version",
    "corpus_table",
    "ingest_summary",
    "labeled_rows",
    "load_corpus",
    "namespaced_speaker",
    "rejected_rows",
    "rows_to_align",
    "silence_windows_by_source",
    "tts_speaker_id",
    "usable_rows",
]

UTTERANCE_COLUMNS = tuple(CORPUS_SCHEMA)
MIRROR_FOLDER = "mirror"


@dataclass
class IngestStats:
    """How much work an ingestion did (a re-run over an unchanged corpus reads no file)."""

    entries_listed: int = 0
    files_read: int = 0
    files_from_cache: int = 0
    bytes_read: int = 0
    skipped_without_keyword: int = 0


@dataclass(frozen=True)
class CorpusReading:
    """What reading corpus sources depends on besides the sources themselves, built once by the
    caller from the config's sections: the keywords (labelled layouts label by them,
    ``only_with_keywords`` sources keep the entries that mention them, the demo corpus speaks
    them), the language of rows that name none, the sample rate the demo corpus is generated
    at, the recording checks (``ingest``, ``quality``) and ``storage`` (the local work folders
    and the one S3 connection)."""

    keywords: list[str]
    language: str
    sample_rate: int
    ingest: IngestSettings
    quality: QualitySettings
    storage: StorageSettings


@dataclass(frozen=True)
class CorpusLoad:
    table: pl.DataFrame
    stats: IngestStats

    @property
    def usable(self) -> pl.DataFrame:
        return usable_rows(self.table)

    @property
    def rejected(self) -> pl.DataFrame:
        return rejected_rows(self.table)


def namespaced_speaker(source_name: str, speaker: str) -> str:
    """Prefix a corpus-local speaker id with its source, unless it already names a namespace.

    Speaker ids of TTS voices (``tts:en-us+m1``) are global on purpose: the same voice in the demo
    corpus and in the synthetic clips is one speaker, so the hash split keeps it in one split.
    """
    return speaker if ":" in speaker else f"{source_name}:{speaker}"


def mentions_keyword(transcript: str, keywords: list[str], language: str) -> bool:
    """Whether a transcript contains one of the keywords as a word, after the same normalisation
    the aligners apply (case folding, numbers spoken, punctuation): "Stop!" and "STOP" mention
    ``stop``, "2" mentions ``two`` in English and ``dos`` in Spanish."""
    spoken = f" {normalize_text(transcript, language)} "
    return any(f" {normalize_keyword(k, language)} " in spoken for k in keywords)


def _reject_row(
    source: str,
    original_path: str,
    reason: str,
    detail: str,
    *,
    uri: str = "",
    speaker: str = "",
    transcript: str = "",
    clip_label: str | None = None,
    language: str = "",
    license_: str = "",
    facts: FileFacts | None = None,
) -> dict:
    key = hashlib.sha256(f"{source}|{original_path}|{reason}".encode()).hexdigest()[:16]
    row = dict.fromkeys(CORPUS_SCHEMA)
    row.update(
        utterance_id=f"{source}:rejected:{key}",
        uri=uri or original_path,
        transcript=transcript,
        speaker=namespaced_speaker(source, speaker) if speaker else "",
        language=language,
        source=source,
        license=license_,
        original_path=original_path,
        clip_label=clip_label,
        reject_reason=reason,
        reject_detail=detail,
    )
    if facts is not None:
        row.update(
            size_bytes=facts.size_bytes,
            sha256=facts.sha256,
            sample_rate=facts.sample_rate,
            channels=facts.channels,
            subtype=facts.subtype,
            bit_depth=quality.bit_depth(facts.subtype),
            duration_s=facts.duration_s,
        )
    return row


def _problem_row(problem: EntryProblem, language: str, license_: str) -> dict:
    return _reject_row(
        problem.source,
        problem.original_path,
        problem.reason,
        problem.detail,
        speaker=problem.speaker,
        transcript=problem.transcript,
        clip_label=problem.clip_label,
        language=language,
        license_=license_,
    )


def _entry_row(
    entry: CorpusEntry,
    root: UPath,
    reading: CorpusReading,
    cache: FileFactsCache,
    mirror_dir: Path,
    stats: IngestStats,
) -> dict:
    """Read (or recall) one entry's file and turn it into a usable or rejected row."""
    reject = functools.partial(
        _reject_row,
        speaker=entry.speaker,
        transcript=entry.transcript,
        clip_label=entry.clip_label,
        language=entry.language,
        license_=entry.license,
    )
    try:
        path = member(root, entry.original_path)
    except UnsafePathError as exc:
        return reject(entry.source, entry.original_path, quality.PATH_OUTSIDE_ROOT, str(exc))
    inspection = inspect_file(path, reading.ingest, cache, mirror_dir)
    facts = inspection.facts
    if inspection.read_now:
        stats.files_read += 1
        stats.bytes_read += facts.size_bytes
    elif facts.sha256:
        stats.files_from_cache += 1
    if facts.error_reason:
        return reject(
            entry.source,
            entry.original_path,
            facts.error_reason,
            facts.error_detail or facts.error_reason,
            uri=str(path),
            facts=facts,
        )
    levels = {c: getattr(facts, c) for c in quality.LEVEL_COLUMNS}
    reasons = quality.recording_reasons(
        facts.duration_s or 0.0,
        levels,
        reading.quality,
        max_duration_s=reading.ingest.max_utterance_s,
        min_duration_s=reading.ingest.min_utterance_s,
        silence_peak_dbfs=reading.ingest.silence_peak_dbfs,
        is_silence=entry.clip_label == SILENCE_LABEL,
    )
    if reasons:
        detail = f"{'; '.join(reasons)} | duration_s={facts.duration_s:.3g}, " + ", ".join(
            f"{k}={v:.3g}" for k, v in levels.items()
        )
        row = reject(
            entry.source,
            entry.original_path,
            reasons[0],
            detail,
            uri=str(path),
            facts=facts,
        )
        row.update(levels)
        return row
    assert facts.sha256 is not None  # a file read without error has its digest
    return {
        "utterance_id": f"{entry.source}:{facts.sha256[:16]}",
        "uri": inspection.local_uri,
        "transcript": entry.transcript,
        "speaker": namespaced_speaker(entry.source, entry.speaker),
        "language": entry.language,
        "source": entry.source,
        "license": entry.license,
        "original_path": entry.original_path,
        "clip_label": entry.clip_label,
        "field_tag": entry.field_tag,
        "sample_rate": facts.sample_rate,
        "channels": facts.channels,
        "subtype": facts.subtype,
        "bit_depth": quality.bit_depth(facts.subtype),
        "duration_s": facts.duration_s,
        "size_bytes": facts.size_bytes,
        "sha256": facts.sha256,
        **levels,
        "reject_reason": None,
        "reject_detail": None,
    }


def _mark_duplicate_audio(rows: list[dict]) -> None:
    """Later rows byte-identical to an earlier usable row (any source) become rejected rows."""
    first: dict[str, dict] = {}
    for index, row in enumerate(rows):
        if row["reject_reason"] is not None or not row["sha256"]:
            continue
        earlier = first.get(row["sha256"])
        if earlier is None:
            first[row["sha256"]] = row
            continue
        duplicate = _reject_row(
            row["source"],
            row["original_path"],
            quality.DUPLICATE_AUDIO,
            f"same bytes as {earlier['source']}:{earlier['original_path']} (sha256 "
            f"{row['sha256'][:16]})",
            uri=row["uri"],
            transcript=row["transcript"],
            clip_label=row["clip_label"],
            language=row["language"],
            license_=row["license"],
        )
        duplicate["speaker"] = row["speaker"]
        duplicate.update(
            {
                k: row[k]
                for k in (
                    "sample_rate",
                    "channels",
                    "subtype",
                    "bit_depth",
                    "duration_s",
                    "size_bytes",
                    "sha256",
                )
            }
        )
        rows[index] = duplicate


def load_corpus(
    sources: Sequence[CorpusSource], reading: CorpusReading, work_dir: str | Path | None = None
) -> CorpusLoad:
    """``sources`` (every configured one, or the one a batch stands for), each read through its
    connector, as one table.

    ``work_dir`` (default ``<storage>/ingest``) holds the file-facts cache and the local mirror of
    remote corpora.  The demo corpus is generated once under ``<storage>/corpora``.  A source that
    cannot be listed at all (missing manifest or root, no MP3 decoder) becomes one rejected row
    naming its root, and the other sources go on; a transient S3 error (5xx, throttling, a
    dropped connection after the client's retries) is raised as a transient ``StorageError``
    instead, so the step is retried rather than the source rejected.  ``s3://`` roots are read
    with ``reading.storage``'s endpoint, region and retries.
    """
    storage, keywords = reading.storage, reading.keywords
    work = Path(work_dir) if work_dir is not None else storage.local_path("ingest")
    cache = FileFactsCache(work / CACHE_FILE if reading.ingest.hash_cache else None)
    mirror_dir = work / MIRROR_FOLDER
    s3 = S3Connection.from_settings(storage)  # the one S3 configuration, for s3:// roots
    stats = IngestStats()
    rows: list[dict] = []
    for source in sources:
        if isinstance(source, DemoCorpusSource):
            folder = generate_demo_corpus(
                source,
                keywords,
                reading.language,
                reading.sample_rate,
                storage.local_path("corpora"),
            )
            source = demo_source_as_manifest(source, folder, reading.language)
        language = getattr(source, "language", None) or reading.language
        try:
            root = corpus_root(source.root, s3)
            if is_remote(root):
                root.fs.invalidate_cache()  # list what is there now, not what fsspec saw before
                check_reachable(root)  # an outage is a transient error, not "manifest not found"
            entries, problems = list_source(
                source, root, keywords, reading.language, reading.ingest
            )
        except DecoderMissingError as exc:
            rows.append(
                _reject_row(
                    source.name,
                    source.root,
                    quality.DECODER_MISSING,
                    str(exc),
                    language=language,
                    license_=source.license,
                )
            )
            continue
        except Exception as exc:
            outage = transient_storage_error(source.root, exc)
            if outage is not None:  # an S3 outage is not the source's fault: retry the step
                raise outage from exc
            rows.append(
                _reject_row(
                    source.name,
                    source.root,
                    quality.SOURCE_UNREADABLE,
                    f"{type(exc).__name__}: {exc}",
                    language=language,
                    license_=source.license,
                )
            )
            continue
        stats.entries_listed += len(entries) + len(problems)
        rows += [_problem_row(p, language, source.license) for p in problems]
        if getattr(source, "only_with_keywords", False):
            kept = [
                e
                for e in entries
                if mentions_keyword(e.transcript, keywords, e.language or language)
            ]
            stats.skipped_without_keyword += len(entries) - len(kept)
            entries = kept
        rows += [_entry_row(e, root, reading, cache, mirror_dir, stats) for e in entries]
    _mark_duplicate_audio(rows)
    return CorpusLoad(corpus_table(rows), stats)


def corpus_table(rows: list[dict]) -> pl.DataFrame:
    """Corpus rows as a table with CORPUS_SCHEMA, sorted by utterance id."""
    if not rows:
        return pl.DataFrame(schema=CORPUS_SCHEMA)
    return pl.DataFrame(rows, schema=CORPUS_SCHEMA).sort("utterance_id")


def usable_rows(table: pl.DataFrame) -> pl.DataFrame:
    """Rows that were read and passed the recording checks."""
    return table.filter(pl.col("reject_reason").is_null())


def rejected_rows(table: pl.DataFrame) -> pl.DataFrame:
    """Rows that cannot be used, each with its reason (stage ``ingest`` of the quarantine)."""
    return table.filter(pl.col("reject_reason").is_not_null())


def rows_to_align(table: pl.DataFrame) -> pl.DataFrame:
    """Usable recordings with a transcript to align (no ``clip_label``)."""
    return usable_rows(table).filter(pl.col("clip_label").is_null())


def labeled_rows(table: pl.DataFrame) -> pl.DataFrame:
    """Usable recordings that already are labelled clips (Speech Commands): no alignment."""
    return usable_rows(table).filter(pl.col("clip_label").is_not_null())


def attach_provenance(clips: pl.DataFrame, corpus: pl.DataFrame) -> pl.DataFrame:
    """Clips cut from corpus recordings, with the recording's license, original path and format
    (joined on ``origin_id`` = ``utterance_id``; values a clip row already has are kept)."""
    recordings = corpus.select(
        pl.col("utterance_id").alias("origin_id"),
        "license",
        "original_path",
        pl.col("sample_rate").alias("original_sample_rate"),
        pl.col("channels").alias("original_channels"),
        pl.col("subtype").alias("original_subtype"),
        pl.col("bit_depth").alias("original_bit_depth"),
        pl.col("duration_s").alias("original_duration_s"),
    ).unique(subset="origin_id", keep="first")
    present = [c for c in PROVENANCE_COLUMNS if c in clips.columns]
    joined = clips.join(
        recordings.rename({c: f"{c}__recording" for c in present}), on="origin_id", how="left"
    )
    return joined.with_columns(
        [
            pl.coalesce(pl.col(c).cast(PROVENANCE_COLUMNS[c]), pl.col(f"{c}__recording")).alias(c)
            for c in present
        ]
    ).drop([f"{c}__recording" for c in present])


def silence_windows_by_source(sources: Sequence[CorpusSource]) -> dict[str, int]:
    """Source name -> most ``_silence_`` windows per background-noise file (Speech Commands)."""
    return {
        s.name: s.silence_clips_per_file for s in sources if isinstance(s, SpeechCommandsSource)
    }


def ingest_summary(table: pl.DataFrame, stats: IngestStats) -> dict[str, Any]:
    """Plain numbers and rows describing one ingestion, for metadata and logs (values of mixed
    types: counts, a per-source DataFrame, JSON rows)."""
    usable, rejected = usable_rows(table), rejected_rows(table)
    per_source = (
        table.group_by("source")
        .agg(
            pl.col("reject_reason").is_null().sum().alias("recordings"),
            pl.col("reject_reason").is_not_null().sum().alias("rejected"),
            pl.col("speaker")
            .filter(pl.col("reject_reason").is_null())
            .n_unique()
            .alias("speakers"),
            (pl.col("duration_s").filter(pl.col("reject_reason").is_null()).sum() / 3600).alias(
                "hours"
            ),
            pl.col("license").first().alias("license"),
        )
        .sort("source")
    )
    by_reason = (
        rejected.group_by("reject_reason")
        .len()
        .sort(["len", "reject_reason"], descending=[True, False])
    )
    return {
        "recordings": usable.height,
        "speakers": usable["speaker"].n_unique() if usable.height else 0,
        "hours": round(float(usable["duration_s"].sum() or 0.0) / 3600, 4),
        "labelled_clips": usable.filter(pl.col("clip_label").is_not_null()).height,
        "rejected": rejected.height,
        "rejected_by_reason": dict(by_reason.iter_rows()),
        "rejected_entries": rejected.select(
            "source", "original_path", "reject_reason", "reject_detail"
        ).to_dicts(),
        "per_source": per_source,
        "entries_listed": stats.entries_listed,
        "files_read": stats.files_read,
        "files_from_cache": stats.files_from_cache,
        "mb_read": round(stats.bytes_read / 2**20, 3),
        "skipped_without_keyword": stats.skipped_without_keyword,
    }


def content_version(table: pl.DataFrame) -> str:
    """A data version from content alone: per entry its file hash, transcript, speaker, language,
    license, label and rejection — independent of row order, absolute paths and file times."""
    columns = (
        "source",
        "original_path",
        "sha256",
        "transcript",
        "speaker",
        "language",
        "license",
        "clip_label",
        "reject_reason",
    )
    digest = hashlib.sha256()
    for row in table.select(columns).sort("source", "original_path").iter_rows():
        digest.update("\x1f".join("" if v is None else str(v) for v in row).encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]
