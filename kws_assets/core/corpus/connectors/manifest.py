"""The generic manifest layout: a folder (or ``s3://`` prefix) with a CSV, TSV or JSONL manifest
whose rows name an audio file (``path``, relative to the folder), its ``transcript`` and its
``speaker``; optional ``language`` and ``license`` override the source's defaults per row.

A device's uploads land the same way, one row per audio it saved around an activation, with a
``tag``: ``false_wake`` (it fired and should not have: the clip is labelled ``_unknown_``, a hard
negative once a person confirms it) or ``missed_wake`` (it should have fired: ``label`` names the
keyword).  A tagged row may leave ``transcript`` empty (a device does not know what was said).

Each manifest row is judged on its own: an unparsable or over-long line, an oversized field,
undecodable text, a blank field or a path listed twice becomes an :class:`EntryProblem` naming
the row (file and line), and the other rows go on.  The manifest is streamed, never read whole.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import BinaryIO

from upath import UPath

from kws_assets.core.corpus.connectors.base import (
    BAD_MANIFEST_ROW,
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
from kws_assets.core.corpus.connectors.registry import Listing, ListRequest, register_connector
from kws_assets.core.corpus.connectors.rows import (
    HeaderError,
    ManifestRow,
    RowLimits,
    delimited_rows,
    jsonl_rows,
)
from kws_assets.core.tables import FALSE_WAKE, FIELD_TAGS, MISSED_WAKE
from kws_assets.settings import UNKNOWN_LABEL, IngestSettings, ManifestSource

REQUIRED_COLUMNS = ("path", "transcript", "speaker")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl")
DEFAULT_LIMITS = IngestSettings()


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (missing, wrong type, no required columns)."""


def manifest_rows(
    name: str, stream: BinaryIO, limits: RowLimits, required: tuple[str, ...] = REQUIRED_COLUMNS
) -> Iterator[ManifestRow]:
    """The rows of a manifest stream, one at a time (see :mod:`.rows`).  Raises ManifestError
    when the manifest type is unknown or its header lacks one of ``required`` (JSONL rows are
    checked by the caller, row by row)."""
    suffix = posixpath.splitext(name)[1].lower()
    if suffix == ".jsonl":
        return jsonl_rows(stream, name, limits)
    if suffix in {".csv", ".tsv"}:
        try:
            columns, rows = delimited_rows(
                stream, name, limits, delimiter="\t" if suffix == ".tsv" else ","
            )
        except HeaderError as exc:
            raise ManifestError(str(exc)) from exc
        missing = [c for c in required if c not in columns]
        if missing:
            raise ManifestError(
                f"{name}: missing columns {missing}; a manifest needs "
                f"{list(required)} (found {[c[:40] for c in columns[:20]]})"
            )
        return rows
    raise ManifestError(
        f"{name}: unsupported manifest type {suffix!r} (use one of {MANIFEST_SUFFIXES})"
    )


def list_manifest(
    source: ManifestSource, root: UPath, limits: IngestSettings = DEFAULT_LIMITS
) -> tuple[list[CorpusEntry], list[EntryProblem]]:
    """Entries and row problems of a manifest corpus, the manifest streamed row by row under
    ``limits`` (max_field_bytes, max_line_bytes, max_manifest_rows).  Raises ManifestError (or
    OSError) only when the manifest itself is missing, of an unknown type or has no header."""
    manifest_path = member(root, source.manifest)
    if not manifest_path.is_file():
        raise ManifestError(f"corpus source {source.name!r}: manifest {manifest_path} not found")
    entries: list[CorpusEntry] = []
    problems: list[EntryProblem] = []
    seen: dict[str, str] = {}
    with manifest_path.open("rb") as stream:
        for row in manifest_rows(source.manifest, stream, RowLimits.of(limits)):
            if row.values is None:
                problems.append(EntryProblem(source.name, row.ref, row.reason, row.detail))
                continue
            entry, problem = _entry_from_row(source, row.ref, row.values)
            if problem is not None:
                problems.append(problem)
                continue
            assert entry is not None  # _entry_from_row returns an entry or a problem
            key = posixpath.normpath(entry.original_path.replace("\\", "/"))
            if key in seen:
                problems.append(
                    EntryProblem(
                        source.name,
                        entry.original_path,
                        DUPLICATE_ROW,
                        f"{row.ref} lists the same file as {seen[key]}",
                        speaker=entry.speaker,
                        transcript=entry.transcript,
                    )
                )
                continue
            seen[key] = row.ref
            entries.append(entry)
    return entries, problems


def _entry_from_row(
    source: ManifestSource, ref: str, row: dict
) -> tuple[CorpusEntry | None, EntryProblem | None]:
    raw_path = row.get("path")
    path_issue = text_problem(raw_path, "path")
    path = clean_text(raw_path) if not path_issue else ""
    if path_issue:
        return None, EntryProblem(source.name, ref, BAD_MANIFEST_ROW, path_issue)
    if not path:
        return None, EntryProblem(source.name, ref, MISSING_PATH, f"{ref}: the row has no path")
    speaker_issue = text_problem(row.get("speaker"), "speaker")
    speaker = "" if speaker_issue else clean_text(row.get("speaker"))
    transcript_issue = text_problem(row.get("transcript"), "transcript")
    if transcript_issue:
        return None, EntryProblem(
            source.name, path, BAD_TRANSCRIPT, f"{ref}: {transcript_issue}", speaker=speaker
        )
    transcript = clean_text(row.get("transcript"))
    tag, clip_label, tag_issue = _field_tag(row)
    if tag_issue:
        return None, EntryProblem(source.name, path, BAD_MANIFEST_ROW, f"{ref}: {tag_issue}")
    if not transcript and tag is None:
        return None, EntryProblem(
            source.name,
            path,
            MISSING_TRANSCRIPT,
            f"{ref}: the transcript is empty",
            speaker=speaker,
        )
    if speaker_issue or not speaker:
        return None, EntryProblem(
            source.name,
            path,
            MISSING_SPEAKER,
            f"{ref}: {speaker_issue or 'the row has no speaker'}",
            transcript=transcript,
        )
    language = row.get("language")
    license_ = row.get("license")
    return CorpusEntry(
        source=source.name,
        original_path=path,
        transcript=transcript,
        speaker=speaker,
        language=clean_text(language)
        if language and not text_problem(language, "language")
        else source.language,
        license=clean_text(license_)
        if license_ and not text_problem(license_, "license")
        else source.license,
        clip_label=clip_label,
        field_tag=tag,
    ), None


def _field_tag(row: dict) -> tuple[str | None, str | None, str]:
    """A row's field tag and the clip label it implies, or a reason the tag is unusable."""
    raw = row.get("tag")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, None, ""
    issue = text_problem(raw, "tag")
    tag = "" if issue else clean_text(raw).lower()
    if issue or tag not in FIELD_TAGS:
        return None, None, issue or f"tag {tag!r} is not one of {', '.join(FIELD_TAGS)}"
    if tag == FALSE_WAKE:
        return tag, UNKNOWN_LABEL, ""
    label = row.get("label")
    if label is None or text_problem(label, "label") or not clean_text(label):
        return None, None, f"a {MISSED_WAKE} row needs the keyword in its label column"
    return tag, clean_text(label).lower(), ""


def _list(source: ManifestSource, root: UPath, request: ListRequest) -> Listing:
    return list_manifest(source, root, request.limits)


REGISTRATION = register_connector(
    ManifestSource,
    lister=_list,
    module=__name__,
)
