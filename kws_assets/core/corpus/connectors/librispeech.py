"""The LibriSpeech layout: ``<reader>/<chapter>/<reader>-<chapter>.trans.txt`` files whose lines
are ``<utterance-id> <TRANSCRIPT>``, next to ``<utterance-id>.flac``.  The speaker is the reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from upath import UPath

from kws_assets.core.audio.quality import LINE_TOO_LONG, TOO_MANY_ROWS
from kws_assets.core.corpus.connectors.base import (
    BAD_MANIFEST_ROW,
    BAD_TRANSCRIPT,
    DUPLICATE_ROW,
    MISSING_TRANSCRIPT,
    CorpusEntry,
    EntryProblem,
    clean_text,
    relative_to_root,
    text_problem,
)
from kws_assets.core.corpus.connectors.manifest import DEFAULT_LIMITS, ManifestError
from kws_assets.core.corpus.connectors.registry import Listing, ListRequest, register_connector
from kws_assets.core.corpus.connectors.rows import physical_lines
from kws_assets.core.license_terms import LicenseTerms
from kws_assets.settings import IngestSettings, LibriSpeechSource

TRANSCRIPT_GLOB = "*.trans.txt"
ID_SEPARATOR = "-"
ID_PARTS = 3  # reader-chapter-utterance


def list_librispeech(
    source: LibriSpeechSource, root: UPath, limits: IngestSettings = DEFAULT_LIMITS
) -> tuple[list[CorpusEntry], list[EntryProblem]]:
    """Entries of every transcript file under ``root`` (any depth), in sorted path order; each
    file streamed line by line, a line over ``limits.max_line_bytes`` one line_too_long problem."""
    if not root.exists():
        raise ManifestError(f"corpus source {source.name!r}: {root} not found")
    transcript_files = sorted(root.rglob(TRANSCRIPT_GLOB), key=str)
    if not transcript_files:
        raise ManifestError(f"corpus source {source.name!r}: no {TRANSCRIPT_GLOB} under {root}")
    entries: list[CorpusEntry] = []
    problems: list[EntryProblem] = []
    seen: set[str] = set()
    for trans in transcript_files:
        folder = relative_to_root(root, trans.parent)
        trans_rel = relative_to_root(root, trans)
        with trans.open("rb") as stream:
            lines = list(_transcript_lines(stream, trans_rel, limits, problems, source.name))
        for number, line in lines:
            ref = f"{trans_rel}:{number}"
            utterance_id, _, words = line.strip().partition(" ")
            parts = utterance_id.split(ID_SEPARATOR)
            if len(parts) != ID_PARTS or text_problem(utterance_id, "utterance id"):
                problems.append(
                    EntryProblem(
                        source.name,
                        ref,
                        BAD_MANIFEST_ROW,
                        f"{ref}: expected '<reader>-<chapter>-<n> TEXT'",
                    )
                )
                continue
            rel = f"{folder}/{utterance_id}{source.audio_extension}"
            speaker = parts[0]
            issue = text_problem(words, "transcript")
            if issue:
                problems.append(
                    EntryProblem(
                        source.name, rel, BAD_TRANSCRIPT, f"{ref}: {issue}", speaker=speaker
                    )
                )
                continue
            transcript = clean_text(words)
            if not transcript:
                problems.append(
                    EntryProblem(
                        source.name,
                        rel,
                        MISSING_TRANSCRIPT,
                        f"{ref}: no transcript",
                        speaker=speaker,
                    )
                )
                continue
            if rel in seen:
                problems.append(
                    EntryProblem(
                        source.name, rel, DUPLICATE_ROW, f"{ref}: listed twice", speaker=speaker
                    )
                )
                continue
            seen.add(rel)
            entries.append(
                CorpusEntry(
                    source=source.name,
                    original_path=rel,
                    transcript=transcript,
                    speaker=speaker,
                    language=source.language,
                    license=source.license,
                )
            )
    return entries, problems


def _transcript_lines(
    stream: BinaryIO,
    trans_rel: str,
    limits: IngestSettings,
    problems: list[EntryProblem],
    source_name: str,
) -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-blank lines of one transcript file; over-long lines become
    problems, and reading stops (one too_many_rows problem) after ``limits.max_manifest_rows``."""
    count = 0
    for number, text, size in physical_lines(stream, limits.max_line_bytes):
        ref = f"{trans_rel}:{number}"
        if text is None:
            problems.append(
                EntryProblem(
                    source_name,
                    ref,
                    LINE_TOO_LONG,
                    f"{ref}: line is {size} bytes > max_line_bytes {limits.max_line_bytes}",
                )
            )
            continue
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        count += 1
        if count > limits.max_manifest_rows:
            problems.append(
                EntryProblem(
                    source_name,
                    ref,
                    TOO_MANY_ROWS,
                    f"{ref}: more than max_manifest_rows "
                    f"{limits.max_manifest_rows} lines; the rest was not read",
                )
            )
            return
        yield number, text


def _list(source: LibriSpeechSource, root: UPath, request: ListRequest) -> Listing:
    return list_librispeech(source, root, request.limits)


REGISTRATION = register_connector(
    LibriSpeechSource,
    lister=_list,
    module=__name__,
    license=LicenseTerms(
        "CC-BY-4.0",
        "LibriSpeech (user-supplied; https://www.openslr.org/12)",
        "Default licence of a librispeech source; attribution required for derived data.",
    ),
)
