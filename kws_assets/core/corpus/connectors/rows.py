"""Streaming, row-isolated reading of manifest files (CSV, TSV, JSONL, Common Voice TSV).

A manifest is read line by line from its binary stream, never whole: a million-row manifest
costs one line of memory at a time, and a hostile line cannot take the other rows down.  Every
line that cannot become a row — longer than ``max_line_bytes`` (skipped unread), a field longer
than ``max_field_bytes``, not parsable, the wrong number of fields, not a JSON object — is yielded
as one :class:`ManifestRow` with ``values`` None, a reason code and a detail naming the file and
line; the next line is read as if nothing happened.  Rows past ``max_rows`` end the stream with
one ``too_many_rows`` row.

Undecodable bytes are kept as lone surrogates (``surrogateescape``) and NUL bytes become U+FFFD,
so the row holding them is rejected by name by the connector's text checks.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal, cast

from kws_assets.core.audio.quality import (
    BAD_MANIFEST_ROW,
    FIELD_TOO_LARGE,
    LINE_TOO_LONG,
    TOO_MANY_ROWS,
)
from kws_assets.core.corpus.connectors.base import REPLACEMENT_CHARACTER

UTF8_BOM = "\ufeff"
SKIP_CHUNK_BYTES = 1 << 16  # an over-long line is skipped in pieces this big (never held whole)


class HeaderError(ValueError):
    """The manifest's header line is missing, unreadable or over the line limit."""


@dataclass(frozen=True)
class RowLimits:
    """What one manifest may hold (see ``IngestSettings``: max_field_bytes, max_line_bytes,
    max_manifest_rows)."""

    max_field_bytes: int
    max_line_bytes: int
    max_rows: int

    @classmethod
    def of(cls, ingest) -> RowLimits:  # noqa: ANN001 - an IngestSettings (no config import here)
        return cls(ingest.max_field_bytes, ingest.max_line_bytes, ingest.max_manifest_rows)


@dataclass(frozen=True)
class ManifestRow:
    """One manifest row: ``values`` by column, or None with ``reason``/``detail`` saying why."""

    ref: str  # "<manifest>:<line>" (first physical line of the row)
    line: int
    values: dict | None
    reason: str = ""
    detail: str = ""


def decode_line(raw: bytes) -> str:
    """One line's bytes as text, never failing (see the module docstring)."""
    return raw.decode("utf-8", errors="surrogateescape").replace("\x00", REPLACEMENT_CHARACTER)


def physical_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, str | None, int]]:
    """``(line_number, text, n_bytes)`` per physical line; text is None for a line over
    ``max_line_bytes``, whose bytes were skipped without being kept."""
    if not isinstance(stream, (io.BufferedIOBase, io.RawIOBase)):
        # fsspec's remote files (s3://...) take no size in readline(): read them through a
        # standard buffer, whose readline(limit) bounds what one line can take.
        # (typed BinaryIO, but a raw byte stream is all BufferedReader needs of it)
        stream = io.BufferedReader(cast("io.RawIOBase", stream), buffer_size=1 << 16)
    number = 0
    while True:
        raw = stream.readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        size = len(raw)
        if size > max_line_bytes and not raw.endswith(b"\n"):
            while True:
                rest = stream.readline(SKIP_CHUNK_BYTES)
                size += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None, size
            continue
        text = decode_line(raw)
        if number == 1 and text.startswith(UTF8_BOM):
            text = text[1:]
        yield number, text, size


def _oversized_field(values: dict, max_field_bytes: int) -> str | None:
    for column, value in values.items():
        if isinstance(value, str) and len(value) * 4 > max_field_bytes:  # cheap bound first
            size = len(value.encode("utf-8", errors="surrogatepass"))
            if size > max_field_bytes:
                return (
                    f"field {str(column)[:40]!r} is {size} bytes "
                    f"> max_field_bytes {max_field_bytes}"
                )
    return None


def _too_many(name: str, line: int, limits: RowLimits) -> ManifestRow:
    return ManifestRow(
        f"{name}:{line}",
        line,
        None,
        TOO_MANY_ROWS,
        f"{name}: more than max_manifest_rows {limits.max_rows} rows; lines from "
        f"{line} on were not read",
    )


def jsonl_rows(stream: BinaryIO, name: str, limits: RowLimits) -> Iterator[ManifestRow]:
    """Rows of a JSON-lines manifest, one JSON object per line (blank lines skipped)."""
    count = 0
    for number, text, size in physical_lines(stream, limits.max_line_bytes):
        ref = f"{name}:{number}"
        if text is None:
            yield ManifestRow(
                ref,
                number,
                None,
                LINE_TOO_LONG,
                f"{ref}: line is {size} bytes > max_line_bytes {limits.max_line_bytes}",
            )
            continue
        if not text.strip():
            continue
        count += 1
        if count > limits.max_rows:
            yield _too_many(name, number, limits)
            return
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield ManifestRow(ref, number, None, BAD_MANIFEST_ROW, f"{ref}: not JSON ({exc.msg})")
            continue
        except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, 10^5 nested arrays
            yield ManifestRow(
                ref,
                number,
                None,
                BAD_MANIFEST_ROW,
                f"{ref}: not usable JSON ({type(exc).__name__}: {str(exc)[:120]})",
            )
            continue
        if not isinstance(value, dict):
            yield ManifestRow(
                ref, number, None, BAD_MANIFEST_ROW, f"{ref}: line is not a JSON object"
            )
            continue
        oversized = _oversized_field(value, limits.max_field_bytes)
        if oversized:
            yield ManifestRow(ref, number, None, FIELD_TOO_LARGE, f"{ref}: {oversized}")
            continue
        yield ManifestRow(ref, number, value)


class _LineFeed:
    """The physical lines a csv reader consumes, remembering which were over the limit (fed to
    the reader as empty lines) so the row spanning them is reported instead of parsed."""

    def __init__(self, stream: BinaryIO, max_line_bytes: int) -> None:
        self._lines = physical_lines(stream, max_line_bytes)
        self.line = 0
        self.oversized: dict[int, int] = {}

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        number, text, size = next(self._lines)
        self.line = number
        if text is None:
            self.oversized[number] = size
            return "\n"
        return text


def delimited_rows(
    stream: BinaryIO,
    name: str,
    limits: RowLimits,
    *,
    delimiter: str,
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL,  # csv.QUOTE_* (3.11 has four)
) -> tuple[list[str], Iterator[ManifestRow]]:
    """The header's column names and an iterator over the data rows of a CSV/TSV manifest.

    Raises :class:`HeaderError` when there is no usable header line.  A quoted field may span
    lines; a field over the limit (even one spread over many short lines) is one problem row.
    """
    feed = _LineFeed(stream, limits.max_line_bytes)
    field_limit = max(limits.max_field_bytes, limits.max_line_bytes) + 1
    reader = csv.reader(feed, delimiter=delimiter, quoting=quoting, strict=False)
    previous_limit = csv.field_size_limit()
    try:
        if previous_limit < field_limit:
            csv.field_size_limit(field_limit)  # our own limits decide, not csv's 128 KiB default
        header = next(reader, None)
    except csv.Error as exc:
        raise HeaderError(f"{name}: header line cannot be parsed ({exc})") from exc
    if feed.oversized:
        raise HeaderError(f"{name}: header line is over max_line_bytes {limits.max_line_bytes}")
    if not header:
        raise HeaderError(f"{name}: empty manifest (no header line)")
    columns = [c.strip() for c in header]
    return columns, _data_rows(reader, feed, name, columns, limits)


def _data_rows(
    reader: Iterator[list[str]],
    feed: _LineFeed,
    name: str,
    columns: list[str],
    limits: RowLimits,
) -> Iterator[ManifestRow]:
    count = 0
    while True:
        start = feed.line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader resumes at the next line after an error
            ref = f"{name}:{start}"
            reason = FIELD_TOO_LARGE if "field limit" in str(exc) else BAD_MANIFEST_ROW
            yield ManifestRow(ref, start, None, reason, f"{ref}: {exc}")
            _skip_rest_of_line(reader, feed)
            continue
        ref = f"{name}:{start}"
        spanned = [n for n in range(start, feed.line + 1) if n in feed.oversized]
        if spanned:
            size = sum(feed.oversized.pop(n) for n in spanned)
            yield ManifestRow(
                ref,
                start,
                None,
                LINE_TOO_LONG,
                f"{ref}: line {spanned[0]} is {size} bytes > max_line_bytes "
                f"{limits.max_line_bytes}",
            )
            continue
        if not fields or (fields == [""] and len(columns) > 1):
            continue  # a blank line
        count += 1
        if count > limits.max_rows:
            yield _too_many(name, start, limits)
            return
        if len(fields) != len(columns):
            yield ManifestRow(
                ref,
                start,
                None,
                BAD_MANIFEST_ROW,
                f"{ref}: row has {len(fields)} fields, the header has {len(columns)}",
            )
            continue
        values = dict(zip(columns, fields, strict=True))
        oversized = _oversized_field(values, limits.max_field_bytes)
        if oversized:
            yield ManifestRow(ref, start, None, FIELD_TOO_LARGE, f"{ref}: {oversized}")
            continue
        yield ManifestRow(ref, start, values)


def _skip_rest_of_line(reader: Iterator[list[str]], feed: _LineFeed) -> None:
    """After a csv error the reader already dropped the failing line; nothing more to skip, but
    forget over-limit markers the failed row consumed so they are not blamed on the next row."""
    feed.oversized = {n: s for n, s in feed.oversized.items() if n > feed.line}
