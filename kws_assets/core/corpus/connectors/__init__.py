"""Corpus connectors, one module per layout: ``manifest`` (CSV/TSV/JSONL), ``common_voice``,
``librispeech``, ``speech_commands``, and ``demo`` (generated, then read as a manifest).

:func:`list_source` turns a configured source and its root (a local folder or an ``s3://``
prefix) into entries and listing problems; :mod:`.files` reads, hashes and checks each file.
"""

from __future__ import annotations

from upath import UPath

from kws_assets.core.corpus.connectors.base import CorpusEntry, EntryProblem
from kws_assets.core.corpus.connectors.common_voice import DecoderMissingError, list_common_voice
from kws_assets.core.corpus.connectors.librispeech import list_librispeech
from kws_assets.core.corpus.connectors.manifest import ManifestError, list_manifest
from kws_assets.core.corpus.connectors.speech_commands import list_speech_commands
from kws_assets.settings import (
    CommonVoiceSource,
    IngestSettings,
    LibriSpeechSource,
    ManifestSource,
    SpeechCommandsSource,
)

FileSource = ManifestSource | CommonVoiceSource | LibriSpeechSource | SpeechCommandsSource

__all__ = [
    "CorpusEntry",
    "DecoderMissingError",
    "EntryProblem",
    "FileSource",
    "ManifestError",
    "list_source",
]


def list_source(
    source: FileSource,
    root: UPath,
    keywords: list[str],
    default_language: str,
    limits: IngestSettings | None = None,
) -> tuple[list[CorpusEntry], list[EntryProblem]]:
    """Entries and listing problems of one source; manifests are streamed row by row under
    ``limits`` (default: IngestSettings()).  Raises ManifestError / DecoderMissingError /
    OSError when the source as a whole cannot be listed."""
    limits = limits if limits is not None else IngestSettings()
    if isinstance(source, ManifestSource):
        return list_manifest(source, root, limits)
    if isinstance(source, CommonVoiceSource):
        return list_common_voice(source, root, default_language, limits)
    if isinstance(source, LibriSpeechSource):
        return list_librispeech(source, root, limits)
    if isinstance(source, SpeechCommandsSource):
        return list_speech_commands(source, root, keywords)
    raise TypeError(
        f"no connector for source kind {getattr(source, 'kind', type(source).__name__)!r}"
    )
