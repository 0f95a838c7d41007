"""The generic manifest layout: a folder (or ``s3://`` prefix) with a CSV, TSV or JSONL manifest
whose rows name an audio file (``path``, relative to the folder), its ``transcript`` and its
``speaker``; optional ``language`` and ``license`` override the source's defaults per row.

Each manifest row is judged on its own: an unparsable line, undecodable text, a blank field or a
path listed twice becomes an :class:`EntryProblem` naming the row, and the other rows go on.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath

from upath import UPath

from kws_assets.settings import ManifestSource
from kws_assets.core.corpus.connectors.base import (
    BAD_MANIFEST_ROW,
    BAD_TRANSCRIPT,
    DUPLICATE_ROW,
    MISSING_PATH,
    MISSING_SPEAKER,
    MISSING_TRANSCRIPT,
    REPLACEMENT_CHARACTER,
    CorpusEntry,
    EntryProblem,
    clean_text,
    member,
    text_problem,
)

REQUIRED_COLUMNS = ("path", "transcript", "speaker")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl")


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (missing, wrong type, no required columns)."""


def decode_manifest(data: bytes) -> str:
    """Manifest bytes as text, never failing: undecodable bytes become lone surrogates (so the row
    holding them can be rejected by name) and NUL bytes become U+FFFD (csv cannot parse NUL)."""
    text = data.decode("utf-8-sig", errors="surrogateescape")
    return text.replace("\x00", REPLACEMENT_CHARACTER)


def manifest_rows(name: str, text: str, required: tuple[str, ...] = REQUIRED_COLUMNS
                  ) -> list[tuple[str, dict | None, str]]:
    """``(row_ref, row, error)`` per manifest row: row is None and error says why when a line
    cannot be parsed.  ``row_ref`` is ``<manifest>:<line>`` for messages.  A CSV/TSV header
    lacking one of ``required`` raises :class:`ManifestError` (JSONL rows are checked by the
    caller, row by row)."""
    suffix = posixpath.splitext(name)[1].lower()
    out: list[tuple[str, dict | None, str]] = []
    if suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            ref = f"{name}:{number}"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                out.append((ref, None, f"not JSON ({exc.msg})"))
                continue
            if not isinstance(value, dict):
                out.append((ref, None, "line is not a JSON object"))
                continue
            out.append((ref, value, ""))
        return out
    if suffix in {".csv", ".tsv"}:
        reader = csv.DictReader(io.StringIO(text, newline=""), dialect="excel-tab" if suffix == ".tsv" else "excel")
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{name}: missing columns {missing}; a manifest needs "
                                f"{list(required)} (found {reader.fieldnames})")
        for row in reader:
            ref = f"{name}:{reader.line_num}"
            if None in row or any(v is None for v in row.values()):
                out.append((ref, None, f"row has {len([v for v in row.values() if v is not None])} "
                                       f"fields, the header has {len(reader.fieldnames or [])}"))
                continue
            out.append((ref, row, ""))
        return out
    raise ManifestError(f"{name}: unsupported manifest type {suffix!r} (use one of {MANIFEST_SUFFIXES})")


def list_manifest(source: ManifestSource, root: UPath) -> tuple[list[CorpusEntry], list[EntryProblem]]:
    """Entries and row problems of a manifest corpus.  Raises ManifestError (or OSError) only
    when the manifest itself is missing or unreadable."""
    manifest_path = member(root, source.manifest)
    if not manifest_path.is_file():
        raise ManifestError(f"corpus source {source.name!r}: manifest {manifest_path} not found")
    rows = manifest_rows(source.manifest, decode_manifest(manifest_path.read_bytes()))
    entries: list[CorpusEntry] = []
    problems: list[EntryProblem] = []
    seen: dict[str, str] = {}
    for ref, row, error in rows:
        if row is None:
            problems.append(EntryProblem(source.name, ref, BAD_MANIFEST_ROW, error))
            continue
        entry, problem = _entry_from_row(source, ref, row)
        if problem is not None:
            problems.append(problem)
            continue
        key = posixpath.normpath(entry.original_path.replace("\\", "/"))
        if key in seen:
            problems.append(EntryProblem(source.name, entry.original_path, DUPLICATE_ROW,
                                         f"{ref} lists the same file as {seen[key]}",
                                         speaker=entry.speaker, transcript=entry.transcript))
            continue
        seen[key] = ref
        entries.append(entry)
    return entries, problems


def _entry_from_row(source: ManifestSource, ref: str, row: dict
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
        return None, EntryProblem(source.name, path, BAD_TRANSCRIPT, f"{ref}: {transcript_issue}",
                                  speaker=speaker)
    transcript = clean_text(row.get("transcript"))
    if not transcript:
        return None, EntryProblem(source.name, path, MISSING_TRANSCRIPT,
                                  f"{ref}: the transcript is empty", speaker=speaker)
    if speaker_issue or not speaker:
        return None, EntryProblem(source.name, path, MISSING_SPEAKER,
                                  f"{ref}: {speaker_issue or 'the row has no speaker'}",
                                  transcript=transcript)
    language = row.get("language")
    license_ = row.get("license")
    return CorpusEntry(
        source=source.name,
        original_path=path,
        transcript=transcript,
        speaker=speaker,
        language=clean_text(language) if language and not text_problem(language, "language") else source.language,
        license=clean_text(license_) if license_ and not text_problem(license_, "license") else source.license,
    ), None
