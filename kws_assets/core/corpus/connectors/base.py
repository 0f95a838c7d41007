"""What every corpus connector shares: the entries it lists, the problems it reports, corpus roots
that may be local folders or ``s3://`` prefixes, and the path-safety rule.

A connector only *lists* a corpus: it turns a layout (a manifest, Common Voice's TSV, LibriSpeech's
transcripts, Speech Commands' folders) into :class:`CorpusEntry` rows and :class:`EntryProblem`
rows.  Reading, hashing and checking the audio is the same for every layout and lives in
:mod:`kws_assets.core.corpus.connectors.files`.
"""

from __future__ import annotations

import os
import posixpath
import unicodedata
from dataclasses import dataclass
from typing import cast

from upath import UPath

from kws_assets.core.audio.quality import (  # reason codes of entries rejected while listing
    BAD_MANIFEST_ROW,
    BAD_TRANSCRIPT,
    DUPLICATE_ROW,
    MISSING_PATH,
    MISSING_SPEAKER,
    MISSING_TRANSCRIPT,
    PATH_OUTSIDE_ROOT,
)
from kws_assets.core.storage.s3 import S3Connection, storage_error_of

LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
REPLACEMENT_CHARACTER = "\ufffd"
__all__ = [
    "BAD_MANIFEST_ROW",
    "BAD_TRANSCRIPT",
    "DUPLICATE_ROW",
    "MISSING_PATH",
    "MISSING_SPEAKER",
    "MISSING_TRANSCRIPT",
    "PATH_OUTSIDE_ROOT",
    "CorpusEntry",
    "EntryProblem",
    "UnsafePathError",
    "check_reachable",
    "clean_text",
    "corpus_root",
    "is_remote",
    "member",
    "relative_to_root",
    "text_problem",
]


@dataclass(frozen=True)
class CorpusEntry:
    """One recording a connector found: where it is (relative to the root) and what it says.

    ``clip_label`` is set when the recording already *is* a labelled clip (Speech Commands): it
    skips alignment.  ``field_tag`` marks audio a device uploaded around an activation
    (``false_wake``/``missed_wake``, :data:`~kws_assets.core.tables.FIELD_TAGS`): it waits for a
    person's review before it trains anything.  ``speaker`` is corpus-local; the loader
    namespaces it with the source name.
    """

    source: str
    original_path: str
    transcript: str
    speaker: str
    language: str
    license: str
    clip_label: str | None = None
    field_tag: str | None = None


@dataclass(frozen=True)
class EntryProblem:
    """A corpus row or file that cannot be used, named by its path, with a reason code."""

    source: str
    original_path: str
    reason: str
    detail: str
    speaker: str = ""
    clip_label: str | None = None
    transcript: str = ""


class UnsafePathError(ValueError):
    """A corpus path that would leave its corpus root (``..``, an absolute path, a URL, a link)."""


def is_remote(path: UPath) -> bool:
    return path.protocol not in LOCAL_PROTOCOLS


def local_os_path(path: UPath) -> str:
    """The operating-system path of a local ``UPath`` (its ``__fspath__``, which UPath's type
    hints do not declare, so this is the one place that says so)."""
    return os.fspath(cast("os.PathLike[str]", path))


def corpus_root(root: str | os.PathLike[str], s3: S3Connection | None = None) -> UPath:
    """The root of a corpus as a UPath: a local folder (resolved) or a remote prefix such as
    ``s3://bucket/corpus``, read through fsspec with the endpoint, region and retries of ``s3``
    (the pipeline passes ``S3Connection.from_settings(cfg.storage)``; None: AWS defaults from
    the environment).  Credentials always come from the environment."""
    text = os.fspath(root)
    path = (s3 or S3Connection()).upath(text)
    if is_remote(path):
        return path
    return UPath(os.path.realpath(os.path.expanduser(text)))


def check_reachable(root: UPath) -> None:
    """Raise the transient :class:`StorageError` a remote root's store answers with now (an
    outage, throttling, a refused connection), before a connector lists it.

    fsspec's ``exists()``/``is_file()`` answer False for *any* error, so without this probe an
    S3 outage would read as "manifest not found" and the whole source would be rejected instead
    of the step being retried.  A missing root, or a permanent error, is left to the connector
    to report as it always does.  Local roots are not probed.
    """
    if not is_remote(root):
        return
    try:
        root.fs.info(root.path)
    except FileNotFoundError:
        return
    except Exception as exc:
        error = storage_error_of(str(root), exc)
        if error is not None and error.transient:
            raise error from exc


def member(root: UPath, relative: str) -> UPath:
    """The file ``relative`` names inside ``root``, refusing anything that escapes the root.

    Rejected: absolute paths, URLs, drive letters, ``..`` segments that climb above the root, NUL
    bytes, and (for local roots) symbolic links that resolve outside it.  Raises UnsafePathError.
    """
    text = relative.replace("\\", "/").strip()
    if not text:
        raise UnsafePathError("empty path")
    if "\x00" in text:
        raise UnsafePathError("path contains a NUL byte")
    if "://" in text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafePathError(
            f"{relative!r} is absolute; corpus paths must be relative to the root"
        )
    normalised = posixpath.normpath(text)
    if normalised == ".." or normalised.startswith("../"):
        raise UnsafePathError(f"{relative!r} climbs above the corpus root")
    if normalised in {".", ""}:
        raise UnsafePathError(f"{relative!r} names the corpus root itself")
    if is_remote(root):
        return root.joinpath(*normalised.split("/"))
    base = os.path.realpath(local_os_path(root))
    target = os.path.realpath(os.path.join(base, normalised))
    if os.path.commonpath([base, target]) != base or target == base:
        raise UnsafePathError(f"{relative!r} resolves to {target}, outside the corpus root {base}")
    return UPath(target)


def relative_to_root(root: UPath, path: UPath) -> str:
    """``path`` as a '/'-separated path relative to ``root`` (both from the same filesystem)."""
    root_text = str(root.path if is_remote(root) else local_os_path(root)).rstrip("/")
    path_text = str(path.path if is_remote(path) else local_os_path(path))
    if path_text.startswith(root_text + "/"):
        return path_text[len(root_text) + 1 :]
    return path_text


def text_problem(value: object, field: str) -> str | None:
    """Why a manifest text field is unusable, or None: not text, undecodable bytes (kept as lone
    surrogates or U+FFFD by the reader), or control characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{field} is a {type(value).__name__}, not text"
    for char in value:
        if char == REPLACEMENT_CHARACTER or "\ud800" <= char <= "\udfff":
            return f"{field} is not valid UTF-8"
        if unicodedata.category(char) == "Cc" and char not in "\t\n\r":
            return f"{field} holds control character U+{ord(char):04X}"
    return None


def clean_text(value: object) -> str:
    """Whitespace-normalised text of a manifest field (None -> '')."""
    return " ".join(str(value).split()) if value is not None else ""
