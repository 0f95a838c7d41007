"""The landing zone: where new corpus batches arrive, locally or under an ``s3://`` prefix.

A batch is a folder directly under the landing root that holds a manifest (``manifest.csv``,
``.tsv`` or ``.jsonl``, the same format as a ``kind: manifest`` source) next to its audio.  The
manifest is the "ready" signal: write it last.  Folders whose names start with ``.`` or ``_`` are
never picked up, so a batch can also be staged under ``_incoming-x`` and renamed when complete.

Everything here goes through :class:`upath.UPath`, so the same code lists a local folder or an
object-store prefix.  :class:`BatchCursor` is what the landing-zone sensor remembers between
ticks: the fingerprint of every batch it has requested, so a batch is requested once, a corrected
manifest is requested again, and any number of batches landing between two ticks are all seen.

What the landing zone is (root, manifest names, settle time, licence of unlabelled rows, S3
connection) travels as one :class:`LandingZone`, built by the caller from the ``automation`` and
``storage`` settings: nothing here sees the whole config.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from upath import UPath

from kws_assets.core.corpus.batches import (
    BatchKeyError,
    configured_batch_keys,
    configured_source,
    content_fingerprint,
    landed_fingerprint,
    landed_source,
    landing_batch_key,
    parse_batch_key,
    source_fingerprint,
)
from kws_assets.core.corpus.connectors.base import local_os_path
from kws_assets.core.storage.s3 import S3Connection
from kws_assets.settings import (
    AutomationSettings,
    CorpusSource,
    ManifestSource,
    StorageSettings,
)

HIDDEN_PREFIXES = (".", "_")
LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
INVALID_NAME = "invalid_batch_name"
UNREADABLE_MANIFEST = "unreadable_manifest"
AMBIGUOUS_MANIFEST = "ambiguous_manifest"  # two uploads left two manifests in one batch folder
MANIFEST_SETTLING = "manifest_settling"  # deferred: written too recently, or changed while read
MANIFEST_CHANGED = "manifest_changed"  # replaced after the scan that requested the run
BATCH_DELETED = "batch_deleted"  # gone after the scan that requested the run
# Seconds a manifest must be unchanged before a scan takes it (``automation.landing_settle_s``
# when the config has one).  0 keeps the original behaviour: the manifest is the ready signal.
DEFAULT_SETTLE_S = 0.0


@dataclass(frozen=True)
class LandedBatch:
    """A ready batch folder: its key, where it is, which manifest it holds and that file's hash."""

    key: str
    folder: str
    manifest: str
    fingerprint: str


@dataclass(frozen=True)
class LandingProblem:
    """A folder in the landing zone that cannot become a batch, and why."""

    folder: str
    reason: str
    detail: str


def landing_root(automation: AutomationSettings, storage: StorageSettings) -> str:
    """The landing zone's root: ``automation.landing_root``, relative ones under
    ``storage.root``."""
    root = automation.landing_root
    if "://" in root:
        return root.rstrip("/")
    path = Path(root).expanduser()
    if path.is_absolute():
        return str(path.resolve())
    storage_root = storage.root
    if "://" in storage_root:
        return f"{storage_root.rstrip('/')}/{root}"
    return str(storage.local_path(root))


@dataclass(frozen=True)
class LandingZone:
    """Where corpus batches land and how they are read: the root (folder or ``s3://`` prefix),
    the manifest names a batch folder may hold, the seconds a manifest must settle, the licence
    of landed rows that name none, and the one S3 connection.  The caller builds it once
    (:meth:`from_settings`), so the functions below take what they use, not the config."""

    root: str
    manifests: list[str]
    settle_s: float = DEFAULT_SETTLE_S
    license: str = "unknown"
    s3: S3Connection = field(default_factory=S3Connection)

    @classmethod
    def from_settings(cls, automation: AutomationSettings, storage: StorageSettings) -> LandingZone:
        """The zone ``automation`` describes, read through ``storage``'s S3 settings."""
        return cls(
            landing_root(automation, storage),
            list(automation.landing_manifests),
            automation.landing_settle_s,
            automation.landing_license,
            S3Connection.from_settings(storage),
        )


def _as_upath(root: str | os.PathLike[str], s3: S3Connection | None) -> UPath:
    """A landing-zone path; ``s3://`` ones through the one S3 configuration (None: AWS
    defaults from the environment)."""
    return (s3 or S3Connection()).upath(root)


@dataclass(frozen=True)
class LandingScan:
    """One look at the landing zone: ready batches, folders that cannot be batches, and batches
    deferred to a later tick (their manifest is still being written or settling)."""

    batches: list[LandedBatch]
    problems: list[LandingProblem]
    deferred: list[LandingProblem]


def _manifest_stamp(path: UPath) -> tuple[int, float | None]:
    """(size, modification time in epoch seconds or None where the store has none)."""
    info = path.fs.info(path.path) if path.protocol not in LOCAL_PROTOCOLS else None
    if info is None:
        st = os.stat(local_os_path(path))
        return int(st.st_size), st.st_mtime
    stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
    if hasattr(stamp, "timestamp"):
        stamp = stamp.timestamp()
    return int(info.get("size") or 0), float(stamp) if isinstance(stamp, (int, float)) else None


def read_settled_manifest(
    path: UPath, settle_s: float, now: float | None = None
) -> tuple[bytes | None, str]:
    """The manifest's bytes, or (None, why) when it is not safe to take yet: younger than
    ``settle_s`` seconds, or its size/stamp changed while it was read (a writer is still at it).
    Raises FileNotFoundError when it vanished."""
    size, mtime = _manifest_stamp(path)
    clock = time.time() if now is None else now
    if settle_s > 0 and mtime is not None and clock - mtime < settle_s:
        return (
            None,
            f"{path.name} was modified {clock - mtime:.1f} s ago (< {settle_s:g} s to settle)",
        )
    data = path.read_bytes()
    after = _manifest_stamp(path)
    if len(data) != size or after != (size, mtime):
        return None, f"{path.name} changed while it was read ({size} -> {after[0]} bytes)"
    return data, ""


def scan_landing(
    root: str | os.PathLike[str],
    manifest_names: list[str],
    settle_s: float = DEFAULT_SETTLE_S,
    now: float | None = None,
    s3: S3Connection | None = None,
) -> LandingScan:
    """Every ready batch under ``root`` (sorted by key), the folders that cannot be batches, and
    the batches deferred because their manifest is not settled (see :func:`read_settled_manifest`).

    A missing root is an empty landing zone, not an error: nothing has landed yet.  A folder that
    vanishes during the scan is skipped (deleted batches are not batches).  Each batch's
    fingerprint is the hash of the exact manifest bytes read here: a run started for it can check
    with :func:`check_batch_unchanged` that it ingests the same manifest.  An ``s3://`` root is
    read with the endpoint, region and retries of ``s3``.
    """
    base = _as_upath(root, s3)
    if base.protocol not in LOCAL_PROTOCOLS:
        base.fs.invalidate_cache()  # list what is there now, not what fsspec saw on the last tick
    scan = LandingScan([], [], [])
    if not base.exists():
        return scan
    for folder in sorted(base.iterdir(), key=lambda p: p.name):
        try:
            if folder.name.startswith(HIDDEN_PREFIXES) or not folder.is_dir():
                continue
            present = [name for name in manifest_names if (folder / name).is_file()]
        except FileNotFoundError:
            continue  # deleted while we looked
        if not present:
            continue  # not ready yet: the manifest is written last
        try:
            key = landing_batch_key(folder.name)
        except ValueError as exc:
            scan.problems.append(LandingProblem(str(folder), INVALID_NAME, str(exc)))
            continue
        if len(present) > 1:
            scan.problems.append(
                LandingProblem(
                    str(folder),
                    AMBIGUOUS_MANIFEST,
                    f"{', '.join(present)} are all present: two uploads used the batch name "
                    f"{folder.name!r}; keep one manifest (or land the other under a new name)",
                )
            )
            continue
        manifest = present[0]
        try:
            data, why = read_settled_manifest(folder / manifest, settle_s, now)
        except FileNotFoundError:
            continue  # deleted while we looked
        except OSError as exc:
            scan.problems.append(
                LandingProblem(str(folder), UNREADABLE_MANIFEST, f"{manifest}: {exc}")
            )
            continue
        if data is None:
            scan.deferred.append(LandingProblem(str(folder), MANIFEST_SETTLING, why))
            continue
        scan.batches.append(LandedBatch(key, str(folder), manifest, content_fingerprint(data)))
    return scan


def scan_landing_zone(
    root: str | os.PathLike[str],
    manifest_names: list[str],
    settle_s: float = DEFAULT_SETTLE_S,
    s3: S3Connection | None = None,
) -> tuple[list[LandedBatch], list[LandingProblem]]:
    """Ready batches and problem folders of :func:`scan_landing` (deferred batches are neither:
    a later tick sees them)."""
    scan = scan_landing(root, manifest_names, settle_s, s3=s3)
    return scan.batches, scan.problems


def check_batch_unchanged(
    batch: LandedBatch, s3: S3Connection | None = None
) -> LandingProblem | None:
    """None when the batch's manifest still has the bytes it was scanned with; otherwise why a run
    for it must stop: ``batch_deleted`` or ``manifest_changed`` (the changed manifest is a new
    batch version: the next scan gives it a new fingerprint and the sensor requests it again)."""
    path = _as_upath(batch.folder, s3) / batch.manifest
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return LandingProblem(
            batch.folder,
            BATCH_DELETED,
            f"{batch.manifest} is gone: the batch was deleted after it was scanned",
        )
    except OSError as exc:
        return LandingProblem(batch.folder, UNREADABLE_MANIFEST, f"{batch.manifest}: {exc}")
    found = content_fingerprint(data)
    if found != batch.fingerprint:
        return LandingProblem(
            batch.folder,
            MANIFEST_CHANGED,
            f"{batch.manifest} was replaced after the scan (fingerprint "
            f"{batch.fingerprint} -> {found}); the new version is a new request",
        )
    return None


def find_landed_batch(
    root: str | os.PathLike[str],
    key: str,
    manifest_names: list[str],
    s3: S3Connection | None = None,
) -> LandedBatch:
    """The ready batch with this key; :class:`BatchKeyError` naming the root when there is none."""
    ref = parse_batch_key(key)
    if ref.kind != "landing":
        raise BatchKeyError(f"{key!r} is not a landing batch")
    folder = _as_upath(root, s3) / ref.name
    manifest = next((name for name in manifest_names if (folder / name).is_file()), None)
    if manifest is None:
        raise BatchKeyError(
            f"batch {key!r}: no folder {ref.name!r} with a manifest "
            f"({', '.join(manifest_names)}) under the landing zone {root}"
        )
    return LandedBatch(
        key, str(folder), manifest, content_fingerprint((folder / manifest).read_bytes())
    )


@dataclass(frozen=True)
class KnownBatch:
    """A batch a sensor can request: its key and fingerprint (configured source or landed
    folder)."""

    key: str
    fingerprint: str
    origin: str


def landing_scan(zone: LandingZone, now: float | None = None) -> LandingScan:
    """:func:`scan_landing` of ``zone``, with its settle time and S3 connection."""
    return scan_landing(zone.root, zone.manifests, zone.settle_s, now=now, s3=zone.s3)


def landed_batch(zone: LandingZone, key: str) -> LandedBatch:
    """The ready landed batch ``key`` of ``zone`` (see :func:`find_landed_batch`)."""
    return find_landed_batch(zone.root, key, zone.manifests, zone.s3)


def configured_batches(
    sources: Sequence[CorpusSource], keywords: Sequence[str], language: str, sample_rate: int
) -> list[KnownBatch]:
    """The configured sources as batches with fingerprints (see
    :func:`~kws_assets.core.corpus.batches.source_fingerprint`)."""
    return [
        KnownBatch(
            key,
            source_fingerprint(source, keywords, language, sample_rate),
            f"configured source {source.name!r}",
        )
        for key, source in configured_batch_keys(sources).items()
    ]


def landed_batches(scan: LandingScan, keywords: Sequence[str]) -> list[KnownBatch]:
    """The ready landed folders of ``scan`` as batches with fingerprints (their manifest's hash
    and the keywords)."""
    return [
        KnownBatch(b.key, landed_fingerprint(b.fingerprint, keywords), b.folder)
        for b in scan.batches
    ]


class LandedBatchChanged(RuntimeError):
    """The landed batch a run ingests vanished or got another manifest after it was scanned;
    ``problem`` says which (``batch_deleted`` / ``manifest_changed`` / ``unreadable_manifest``)."""

    def __init__(self, problem: LandingProblem) -> None:
        self.problem = problem
        super().__init__(f"landed batch {problem.folder}: {problem.reason}: {problem.detail}")


def landed_batch_for_run(
    zone: LandingZone, key: str, requested_fingerprint: str | None = None
) -> LandedBatch | None:
    """The landed batch a run for ``key`` ingests (None for a configured source), checked with
    :func:`check_batch_unchanged` against the manifest the sensor scanned: its
    ``requested_fingerprint`` (the run's manifest-fingerprint tag), or, for a run started by
    hand, the manifest there now.  Raises :class:`LandedBatchChanged` when it differs or is gone.
    """
    if parse_batch_key(key).kind != "landing":
        return None
    try:
        found = landed_batch(zone, key)
    except BatchKeyError as exc:
        raise LandedBatchChanged(LandingProblem(key, BATCH_DELETED, str(exc))) from exc
    batch = LandedBatch(
        found.key, found.folder, found.manifest, requested_fingerprint or found.fingerprint
    )
    ensure_batch_unchanged(zone, batch)
    return batch


def ensure_batch_unchanged(zone: LandingZone, batch: LandedBatch) -> None:
    """:func:`check_batch_unchanged` with the zone's S3 connection; raises
    :class:`LandedBatchChanged` with its problem."""
    problem = check_batch_unchanged(batch, zone.s3)
    if problem is not None:
        raise LandedBatchChanged(problem)


def landed_batch_source(zone: LandingZone, batch: LandedBatch, language: str) -> ManifestSource:
    """The source a landed batch is read as (the batch a run checked, not a fresh lookup): a
    manifest source in ``language`` under the zone's licence where its rows name none."""
    return landed_source(
        batch.key, batch.folder, batch.manifest, language=language, license_=zone.license
    )


def batch_source(
    zone: LandingZone, sources: Sequence[CorpusSource], key: str, language: str
) -> CorpusSource:
    """The single source batch ``key`` stands for: a configured one of ``sources``, or a folder
    landed in ``zone`` (:class:`BatchKeyError` when there is none)."""
    if parse_batch_key(key).kind == "source":
        return configured_source(sources, key)
    return landed_batch_source(zone, landed_batch(zone, key), language)


class BatchCursor:
    """Batch key -> fingerprint of the last request, serialised as a sensor cursor (JSON)."""

    def __init__(self, requested: dict[str, str] | None = None) -> None:
        self.requested: dict[str, str] = dict(requested or {})

    @classmethod
    def from_json(cls, text: str | None) -> BatchCursor:
        if not text:
            return cls()
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"landing-zone sensor cursor is not JSON ({exc.msg}); reset the "
                "sensor's cursor in the UI"
            ) from exc
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError(
                "landing-zone sensor cursor must map batch keys to fingerprints; "
                "reset the sensor's cursor in the UI"
            )
        return cls(value)

    def to_json(self) -> str:
        return json.dumps(self.requested, sort_keys=True, separators=(",", ":"))

    def pending(self, batches: list[KnownBatch]) -> list[KnownBatch]:
        """The batches never requested, or requested with another fingerprint (changed since)."""
        return [b for b in batches if self.requested.get(b.key) != b.fingerprint]

    def mark(self, batches: list[KnownBatch]) -> BatchCursor:
        """A new cursor that also remembers these batches as requested."""
        return BatchCursor({**self.requested, **{b.key: b.fingerprint for b in batches}})
