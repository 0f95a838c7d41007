"""Artifact folders (a model artifact, an evaluation report with its plots, the data card) kept
in the same object store as the tables: a local folder or an S3 prefix.

An artifact is a folder of files handed between assets as a value (:class:`ArtifactFolder`), not
a path into one machine's disk.  Stored, it is its files under a key prefix plus an index
(``artifact.json``: every file's size and sha256), written last, so a reader sees either a whole
artifact or none:

* in a **local** store the folder is built beside its place and renamed in as a whole, so the
  stored artifact is itself a folder a user can open or pass to ``kws classify --model``;
* in an **S3** store each file is one object and the index is put after them; a reader
  downloads the files the index names into a local cache folder, checks every sha256, and
  renames the finished folder into place.  A fresh machine with an empty disk reads it as well
  as the machine that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from kws_assets.core.storage.atomic_files import swap_folder_into_place
from kws_assets.core.storage.object_store import ObjectNotFound, ObjectStore, StorageError

INDEX_FILE = "artifact.json"
INDEX_FORMAT = "kws-artifact-v1"
REASON_CORRUPT = "artifact_corrupt"


@dataclass(frozen=True)
class ArtifactFolder:
    """A folder of files on the local disk, as assets hand it to one another.

    ``staged`` marks a temporary folder an asset built: once stored, the store removes it.
    A loaded artifact is never staged (it is the store's folder or its local cache)."""

    path: Path
    staged: bool = False

    def file(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def staging(cls, prefix: str = "kws-artifact-") -> ArtifactFolder:
        """A new empty temporary folder to build an artifact in."""
        return cls(Path(tempfile.mkdtemp(prefix=prefix)), staged=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_index(folder: Path) -> dict:
    """The index of a folder: each file (relative POSIX path) with its size and sha256."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name != INDEX_FILE:
            files[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    return {"format": INDEX_FORMAT, "files": files}


def _index_digest(index: dict) -> str:
    return hashlib.sha256(json.dumps(index, sort_keys=True).encode()).hexdigest()[:16]


def store_artifact(objects: ObjectStore, key: str, artifact: ArtifactFolder) -> str:
    """Store ``artifact`` at ``key`` (replacing what was there); returns the stored location."""
    if not artifact.path.is_dir():
        raise FileNotFoundError(f"artifact folder {artifact.path} does not exist")
    try:
        index = folder_index(artifact.path)
        local = objects.local_path(key)
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            staging = local.parent / f".{local.name}.tmp-{uuid.uuid4().hex[:8]}"
            shutil.copytree(artifact.path, staging)
            (staging / INDEX_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
            try:
                swap_folder_into_place(staging, local)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            return str(local)
        for name in index["files"]:
            objects.put_bytes(f"{key}/{name}", (artifact.path / name).read_bytes())
        objects.put_bytes(
            f"{key}/{INDEX_FILE}", (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
        )
        return objects.uri_for(key)
    finally:
        if artifact.staged:
            shutil.rmtree(artifact.path, ignore_errors=True)


def artifact_exists(objects: ObjectStore, key: str) -> bool:
    return objects.exists(f"{key}/{INDEX_FILE}")


def load_artifact(objects: ObjectStore, key: str, cache_root: Path) -> ArtifactFolder:
    """The artifact stored at ``key`` as a local folder: the store's own folder when it is local,
    else a verified copy under ``cache_root`` (reused while the stored index is unchanged).
    A missing artifact raises :class:`ObjectNotFound`; a file that does not match the index
    raises :class:`StorageError` (reason ``artifact_corrupt``)."""
    local = objects.local_path(key)
    if local is not None:
        if not (local / INDEX_FILE).is_file():
            raise ObjectNotFound(str(local / INDEX_FILE))
        return ArtifactFolder(local)
    raw = objects.get_bytes(f"{key}/{INDEX_FILE}")
    index = json.loads(raw)
    target = Path(cache_root) / key / _index_digest(index)
    if (target / INDEX_FILE).is_file() and (target / INDEX_FILE).read_bytes() == raw:
        return ArtifactFolder(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for name, facts in index["files"].items():
            data = objects.get_bytes(f"{key}/{name}")
            if len(data) != facts["bytes"] or hashlib.sha256(data).hexdigest() != facts["sha256"]:
                raise StorageError(
                    objects.uri_for(f"{key}/{name}"),
                    REASON_CORRUPT,
                    "the stored file does not match the artifact's index",
                )
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (staging / INDEX_FILE).write_bytes(raw)
        swap_folder_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ArtifactFolder(target)
