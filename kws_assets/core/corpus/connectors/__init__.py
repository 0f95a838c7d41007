"""Corpus connectors, one module per layout: ``manifest`` (CSV/TSV/JSONL), ``common_voice``,
``librispeech``, ``speech_commands``, and ``demo`` (generated, then read as a manifest).

Importing this package imports every connector module, which registers it (see ``registry``).
:func:`list_source` turns a configured source and its root (a local folder or an ``s3://``
prefix) into entries and listing problems through the connector its ``kind`` names;
:mod:`.files` reads, hashes and checks each file.
"""

from __future__ import annotations

from pydantic import BaseModel
from upath import UPath

# Importing a connector module registers it; this order is the licence table's.
# isort: off
from kws_assets.core.corpus.connectors import manifest, common_voice, librispeech  # noqa: F401
from kws_assets.core.corpus.connectors import speech_commands, demo  # noqa: F401

# isort: on
from kws_assets.core.corpus.connectors.base import CorpusEntry, EntryProblem
from kws_assets.core.corpus.connectors.common_voice import DecoderMissingError
from kws_assets.core.corpus.connectors.manifest import ManifestError
from kws_assets.core.corpus.connectors.registry import (
    REGISTRY,
    ConnectorRegistration,
    ConnectorRegistry,
    ListRequest,
    UnknownConnectorError,
    register_connector,
)
from kws_assets.settings import IngestSettings

__all__ = [
    "REGISTRY",
    "ConnectorRegistration",
    "ConnectorRegistry",
    "CorpusEntry",
    "DecoderMissingError",
    "EntryProblem",
    "ListRequest",
    "ManifestError",
    "UnknownConnectorError",
    "list_source",
    "register_connector",
]


def list_source(
    source: BaseModel,
    root: UPath,
    keywords: list[str],
    default_language: str,
    limits: IngestSettings | None = None,
    registry: ConnectorRegistry = REGISTRY,
) -> tuple[list[CorpusEntry], list[EntryProblem]]:
    """Entries and listing problems of one source, through the connector of its ``kind`` in
    ``registry``; manifests are streamed row by row under ``limits`` (default:
    IngestSettings()).  Raises ManifestError / DecoderMissingError / OSError when the source as
    a whole cannot be listed, UnknownConnectorError when no connector lists its kind."""
    request = ListRequest(
        keywords, default_language, limits if limits is not None else IngestSettings()
    )
    return registry.list_entries(source, root, request)
