"""The Mozilla Common Voice layout: ``<root>/validated.tsv`` (or train/dev/test/other.tsv) whose
rows name an MP3 under ``<root>/clips/``, with the speaker as ``client_id`` and the text as
``sentence``.  MP3 is decoded by libsndfile (>= 1.1 has an MPEG decoder) — no ffmpeg needed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

import soundfile as sf
from upath import UPath

from kws_assets.core.corpus.connectors.base import (
    BAD_TRANSCRIPT,
    DUPLICATE_ROW,
    MISSING_PATH,
    MISSING_SPEAKER,
    MISSING_TRANSCRIPT,
    CorpusEntry,
    EntryProblem,
    clean_text,
    member,
    text_problem,
)
from kws_assets.core.corpus.connectors.manifest import DEFAULT_LIMITS, ManifestError
from kws_assets.core.corpus.connectors.registry import Listing, ListRequest, register_connector
from kws_assets.core.corpus.connectors.rows import (
    HeaderError,
    ManifestRow,
    RowLimits,
    delimited_rows,
)
from kws_assets.core.license_terms import LicenseTerms
from kws_assets.settings import CommonVoiceSource, IngestSettings

SPEAKER_COLUMN = "client_id"
PATH_COLUMN = "path"
TEXT_COLUMN = "sentence"
LOCALE_COLUMN = "locale"
REQUIRED_COLUMNS = (SPEAKER_COLUMN, PATH_COLUMN, TEXT_COLUMN)
MP3_FORMAT = "MP3"


class DecoderMissingError(RuntimeError):
    """The audio library cannot decode a format the corpus uses; the message says what to
    install."""


def mp3_supported() -> bool:
    """Whether the libsndfile behind soundfile decodes MP3 (libsndfile >= 1.1 built with mpg123)."""
    return MP3_FORMAT in sf.available_formats()


def require_mp3_support() -> None:
    """Raise DecoderMissingError naming what to install when MP3 cannot be decoded."""
    if not mp3_supported():
        raise DecoderMissingError(
            f"Common Voice clips are MP3, but the libsndfile {sf.__libsndfile_version__} that "
            f"soundfile {sf.__version__} uses has no MP3 decoder. Install the PyPI wheel "
            f"'soundfile>=0.12.1' (it bundles libsndfile >= 1.1 with MPEG support), or a system "
            f"libsndfile >= 1.1 built with mpg123 (Debian bookworm and later: libsndfile1), or "
            f"convert the clips to WAV/FLAC and use a manifest source."
        )


def list_common_voice(
    source: CommonVoiceSource,
    root: UPath,
    default_language: str,
    limits: IngestSettings = DEFAULT_LIMITS,
) -> tuple[list[CorpusEntry], list[EntryProblem]]:
    """Entries of one Common Voice TSV, streamed row by row under ``limits``; rows with blank
    fields, undecodable text, oversized fields or lines, or the wrong field count are problems."""
    tsv_path = member(root, source.tsv)
    if not tsv_path.is_file():
        raise ManifestError(f"corpus source {source.name!r}: {tsv_path} not found")
    entries: list[CorpusEntry] = []
    problems: list[EntryProblem] = []
    with tsv_path.open("rb") as stream:
        # Sentences hold quotes of every kind: the TSV is written without quoting.
        try:
            columns, rows = delimited_rows(
                stream, source.tsv, RowLimits.of(limits), delimiter="\t", quoting=csv.QUOTE_NONE
            )
        except HeaderError as exc:
            raise ManifestError(str(exc)) from exc
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ManifestError(
                f"{tsv_path}: missing Common Voice columns {missing} "
                f"(found {[c[:40] for c in columns[:20]]})"
            )
        needs_mp3 = _collect(source, default_language, rows, entries, problems)
    if needs_mp3:
        require_mp3_support()
    return entries, problems


def _collect(
    source: CommonVoiceSource,
    default_language: str,
    rows: Iterator[ManifestRow],
    entries: list[CorpusEntry],
    problems: list[EntryProblem],
) -> bool:
    """Entries and problems of the TSV's rows; whether any entry is an MP3."""
    seen: dict[str, str] = {}
    needs_mp3 = False
    for parsed in rows:
        ref = parsed.ref
        if parsed.values is None:
            problems.append(EntryProblem(source.name, ref, parsed.reason, parsed.detail))
            continue
        row = parsed.values
        name = clean_text(row[PATH_COLUMN])
        if text_problem(row[PATH_COLUMN], "path") or not name:
            problems.append(EntryProblem(source.name, ref, MISSING_PATH, f"{ref}: no usable path"))
            continue
        rel = f"{source.clips_folder}/{name}"
        speaker = (
            clean_text(row[SPEAKER_COLUMN])
            if not text_problem(row[SPEAKER_COLUMN], "client_id")
            else ""
        )
        issue = text_problem(row[TEXT_COLUMN], "sentence")
        if issue:
            problems.append(
                EntryProblem(source.name, rel, BAD_TRANSCRIPT, f"{ref}: {issue}", speaker=speaker)
            )
            continue
        transcript = clean_text(row[TEXT_COLUMN])
        if not transcript:
            problems.append(
                EntryProblem(
                    source.name, rel, MISSING_TRANSCRIPT, f"{ref}: empty sentence", speaker=speaker
                )
            )
            continue
        if not speaker:
            problems.append(
                EntryProblem(
                    source.name, rel, MISSING_SPEAKER, f"{ref}: no client_id", transcript=transcript
                )
            )
            continue
        if rel in seen:
            problems.append(
                EntryProblem(
                    source.name,
                    rel,
                    DUPLICATE_ROW,
                    f"{ref} lists the same clip as {seen[rel]}",
                    speaker=speaker,
                )
            )
            continue
        seen[rel] = ref
        needs_mp3 = needs_mp3 or name.lower().endswith(".mp3")
        locale = clean_text(row.get(LOCALE_COLUMN)) if row.get(LOCALE_COLUMN) else ""
        entries.append(
            CorpusEntry(
                source=source.name,
                original_path=rel,
                transcript=transcript,
                speaker=speaker,
                language=source.language or locale or default_language,
                license=source.license,
            )
        )
    return needs_mp3


def _list(source: CommonVoiceSource, root: UPath, request: ListRequest) -> Listing:
    return list_common_voice(source, root, request.default_language, request.limits)


REGISTRATION = register_connector(
    CommonVoiceSource,
    lister=_list,
    module=__name__,
    license=LicenseTerms(
        "CC0-1.0",
        "Mozilla Common Voice releases (user-supplied; https://commonvoice.mozilla.org)",
        "Default licence of a common_voice source (settings/corpus.py); clips keep it per row.",
    ),
)
