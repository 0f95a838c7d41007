"""Corpus batches: the unit of ingestion that ``raw_corpus`` is partitioned by.

A batch is either a **configured source** (``sources:`` in ``kws.yaml``; key ``source-<name>``) or
a folder that **landed** in the landing zone (key ``landing-<folder>``; see
:mod:`kws_assets.core.corpus.landing`).  Each batch is read through the same corpus loader as a
whole config would be: the loader is given the one source the batch stands for
(:func:`kws_assets.core.corpus.landing.batch_source`), the config is never rewritten.

A batch's *fingerprint* changes when what it would ingest changes (the source's settings; for the
generated demo corpus also the keywords it speaks; for a landed batch its manifest bytes), so a
sensor can tell a new or changed batch from one it has already requested.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kws_assets.settings import CorpusSource, DemoCorpusSource, ManifestSource

SOURCE_PREFIX = "source-"
LANDING_PREFIX = "landing-"
FINGERPRINT_CHARS = 16
# Batch keys become file names (one Parquet file per partition) and UI labels: keep them plain.
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9._-]")
MAX_NAME_CHARS = 100


class BatchKeyError(ValueError):
    """A partition key that names no batch (unknown prefix, or a source no longer configured)."""


@dataclass(frozen=True)
class BatchRef:
    """What a batch key stands for: a configured source, or a landed folder, by name."""

    kind: Literal["source", "landing"]
    name: str


def is_valid_batch_name(name: str) -> bool:
    """A folder name usable as a batch: ASCII letters, digits, ``.``, ``_``, ``-``; no leading
    dot."""
    return bool(_VALID_NAME.match(name)) and len(name) <= MAX_NAME_CHARS


def source_batch_key(source_name: str) -> str:
    """The batch key of a configured source (characters a key cannot hold become ``_``)."""
    cleaned = _INVALID_CHARS.sub("_", source_name.strip()) or "_"
    return f"{SOURCE_PREFIX}{cleaned}"


def landing_batch_key(folder_name: str) -> str:
    """The batch key of a landed folder; ValueError for a name that cannot be a key."""
    if not is_valid_batch_name(folder_name):
        raise ValueError(
            f"landing folder {folder_name!r} cannot name a batch: use ASCII letters, "
            f"digits, '.', '_' or '-', at most {MAX_NAME_CHARS} characters, "
            "not starting with '.' or '_'"
        )
    return f"{LANDING_PREFIX}{folder_name}"


def parse_batch_key(key: str) -> BatchRef:
    """The batch a key names; :class:`BatchKeyError` for a key of neither kind."""
    if key.startswith(SOURCE_PREFIX) and len(key) > len(SOURCE_PREFIX):
        return BatchRef("source", key[len(SOURCE_PREFIX) :])
    if key.startswith(LANDING_PREFIX) and is_valid_batch_name(key[len(LANDING_PREFIX) :]):
        return BatchRef("landing", key[len(LANDING_PREFIX) :])
    raise BatchKeyError(
        f"{key!r} is not a corpus batch key: expected {SOURCE_PREFIX}<source name> "
        f"or {LANDING_PREFIX}<landing folder>"
    )


def configured_batch_keys(sources: Sequence[CorpusSource]) -> dict[str, CorpusSource]:
    """Batch key -> configured source, in config order; ValueError when two names collide."""
    keys: dict[str, CorpusSource] = {}
    for source in sources:
        key = source_batch_key(source.name)
        if key in keys:
            raise ValueError(
                f"corpus sources {keys[key].name!r} and {source.name!r} map to the same "
                f"batch key {key!r}; rename one of them"
            )
        keys[key] = source
    return keys


def configured_source(sources: Sequence[CorpusSource], key: str) -> CorpusSource:
    """The configured source a ``source-`` batch key names; BatchKeyError if it is not
    configured."""
    by_key = configured_batch_keys(sources)
    if key not in by_key:
        raise BatchKeyError(
            f"batch {key!r} names no configured source (configured: "
            f"{sorted(by_key) or 'none'}); add the source to the config or delete "
            "the partition"
        )
    return by_key[key]


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]


def source_fingerprint(
    source: CorpusSource, keywords: Sequence[str], language: str, sample_rate: int
) -> str:
    """What ingesting a configured source depends on, as a short hash: its settings and the
    keywords (the demo corpus speaks them, labelled layouts label by them, and a batch's
    ``_unknown_`` clips are the words that are not keywords); for the generated demo corpus
    also the language and sample rate it is spoken in."""
    payload: dict[str, object] = {
        "source": source.model_dump(mode="json"),
        "keywords": list(keywords),
    }
    if isinstance(source, DemoCorpusSource):
        payload.update(language=language, sample_rate=sample_rate)
    return _digest(payload)


def content_fingerprint(data: bytes) -> str:
    """A short content hash (of a landed batch's manifest)."""
    return hashlib.sha256(data).hexdigest()[:FINGERPRINT_CHARS]


def landed_fingerprint(manifest_fingerprint: str, keywords: Sequence[str]) -> str:
    """What ingesting a landed batch depends on: its manifest's content and the keywords."""
    return _digest({"manifest": manifest_fingerprint, "keywords": list(keywords)})


def landed_source(
    key: str, folder_uri: str, manifest_name: str, *, language: str, license_: str
) -> ManifestSource:
    """A landed folder as a manifest source named after its batch key (``language`` and
    ``license_``: what its rows are when the manifest names none).

    Speakers are namespaced by that name unless the manifest's ids carry their own namespace
    (``office:alice``): use namespaced ids to keep one speaker one speaker across batches.
    """
    return ManifestSource(
        name=key,
        root=folder_uri,
        manifest=manifest_name,
        language=language,
        license=license_,
    )


def keyword_seed(keyword: str) -> int:
    """A stable per-keyword seed, so a keyword's synthetic clips never depend on the other
    keywords."""
    return int(hashlib.sha256(f"keyword|{keyword}".encode()).hexdigest()[:8], 16)


def keyword_changes(
    configured: Sequence[str], registered: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Keywords to add (configured, not registered; config order) and to remove (registered, no
    longer configured; sorted)."""
    registered_set, configured_set = set(registered), set(configured)
    added = [k for k in configured if k not in registered_set]
    removed = sorted(k for k in registered_set if k not in configured_set)
    return added, removed
