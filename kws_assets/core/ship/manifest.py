"""``manifest.json``: the versioned, checked description of a shipped model folder.

A device build or a loader reads one file to learn everything it must get right: which files
make the model (each with its sha256 and size), the labels in output order, the front end (MFCC
settings with the normalisation stats, or the speech-embedding graphs with their digests), the
audio framing (sample rate, window, hop), the operating point the evaluation chose (threshold,
smoothing windows, refractory seconds and the false-accepts-per-hour target it was chosen for,
with the FA/h and FRR measured there and their exact intervals, and whether it is usable),
the int8 weight and file sizes and the tensor arena to allocate.  The fields follow what
microWakeWord's model JSON tells ESPHome (probability cutoff, sliding window, tensor arena
size), plus what an MFCC front end needs.

:func:`load_manifest` trusts nothing: a wrong schema, an unknown field, a missing file, a digest
or size mismatch, or labels that differ from ``labels.json`` raise :class:`ManifestError` with
the file and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Final, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.features.speech_embedding import EMBEDDING_FILE, MELSPEC_FILE, EmbeddingSpec
from kws_assets.core.storage.atomic_files import write_file_atomic

SCHEMA: Final = "kws-manifest-v1"
MANIFEST_FILE = "manifest.json"
LABELS_FILE = "labels.json"
HASH_CHUNK_BYTES = 1 << 20

PathLike = str | os.PathLike[str]


class ManifestError(ValueError):
    """A manifest that is malformed or does not match the files beside it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Strict):
    """One file of the folder: a plain name relative to the manifest, its digest and size."""

    path: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class ModelFiles(_Strict):
    format: Literal["tflite", "onnx"]
    quantization: Literal["int8"] = "int8"
    file: FileEntry
    c_header: FileEntry | None = None
    c_source: FileEntry | None = None


class MfccFrontEnd(_Strict):
    kind: Literal["mfcc"] = "mfcc"
    features: FeatureSpec


class EmbeddingFrontEnd(_Strict):
    kind: Literal["speech_embedding"] = "speech_embedding"
    spec: dict[str, object]
    files: list[FileEntry] = Field(min_length=1)


class Audio(_Strict):
    sample_rate: int = Field(gt=0)
    window_seconds: float = Field(gt=0, description="Length of one classified window.")
    hop_seconds: float = Field(gt=0, description="Stride between windows when streaming.")


class OperatingPoint(_Strict):
    threshold: float = Field(ge=0, le=1, description="Smoothed keyword posterior that fires.")
    smoothing_windows: int = Field(ge=1, description="Moving average of posteriors, in windows.")
    refractory_seconds: float = Field(ge=0)
    target_fa_per_hour: float = Field(gt=0, description="False accepts per hour it was chosen for.")
    frr_at_target: float | None = Field(None, ge=0, le=1)
    # What the evaluation measured at this point on its test streams, with exact two-sided
    # intervals at `confidence` (absent in manifests written before they were reported).
    fa_per_hour_at_target: float | None = Field(
        None, ge=0, description="False accepts per hour measured at this point (test streams)."
    )
    fa_per_hour_lower: float | None = Field(None, ge=0, description="Poisson (Garwood) interval.")
    fa_per_hour_upper: float | None = Field(None, ge=0, description="Poisson (Garwood) interval.")
    frr_lower: float | None = Field(None, ge=0, le=1, description="Clopper-Pearson interval.")
    frr_upper: float | None = Field(None, ge=0, le=1, description="Clopper-Pearson interval.")
    confidence: float | None = Field(
        None, gt=0, lt=1, description="Level of both intervals (two-sided)."
    )
    negative_hours: float | None = Field(
        None, gt=0, description="Hours of keyword-free audio the FA/h comes from."
    )
    keywords: int | None = Field(None, ge=0, description="Keywords the FRR comes from.")
    target_met_on_validation: bool | None = Field(
        None, description="Whether the FA/h upper bound met the target where it was selected."
    )
    usable: bool | None = Field(
        None, description="False: the point misses more keywords than evaluation.max_frr."
    )
    usable_message: str | None = Field(None, description="What to do when it is not usable.")

    @model_validator(mode="after")
    def _intervals_hold_their_estimates(self) -> OperatingPoint:
        """An interval is ordered and, where the estimate is known, holds it."""
        for name, low, value, high in (
            (
                "fa_per_hour",
                self.fa_per_hour_lower,
                self.fa_per_hour_at_target,
                self.fa_per_hour_upper,
            ),
            ("frr", self.frr_lower, self.frr_at_target, self.frr_upper),
        ):
            known = [v for v in (low, value, high) if v is not None]
            if known != sorted(known):
                raise ValueError(
                    f"{name}: need lower <= estimate <= upper, got {low}, {value}, {high}"
                )
        return self


class Sizes(_Strict):
    int8_weight_bytes: int = Field(ge=0)
    model_file_bytes: int = Field(gt=0)
    tensor_arena_bytes: int = Field(ge=0, description="Arena to give the TFLM interpreter first.")
    planned_activation_bytes: int | None = Field(None, ge=0)


class Manifest(_Strict):
    schema_: Literal["kws-manifest-v1"] = Field(SCHEMA, alias="schema")
    family: Literal["mfcc", "speech_embedding"]
    model: ModelFiles
    labels: list[str] = Field(min_length=2)
    labels_file: FileEntry
    front_end: Annotated[MfccFrontEnd | EmbeddingFrontEnd, Field(discriminator="kind")]
    audio: Audio
    operating_point: OperatingPoint
    sizes: Sizes

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def files(self) -> list[FileEntry]:
        """Every file the manifest vouches for."""
        entries = [self.model.file, self.labels_file]
        entries += [e for e in (self.model.c_header, self.model.c_source) if e is not None]
        if isinstance(self.front_end, EmbeddingFrontEnd):
            entries += self.front_end.files
        return entries


def sha256_file(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _plain_name(name: str) -> str:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name or not pure.parts:
        raise ManifestError(f"{name!r}: manifest paths must be relative names inside the folder")
    return name


def file_entry(folder: PathLike, name: str) -> FileEntry:
    """The entry of ``folder/name`` (digest and size read now)."""
    path = Path(folder) / _plain_name(name)
    if not path.is_file():
        raise ManifestError(f"{path}: missing; write it before the manifest")
    return FileEntry(path=name, sha256=sha256_file(path), bytes=path.stat().st_size)


def write_manifest(
    folder: PathLike,
    *,
    family: str,
    model_file: str,
    labels: Sequence[str],
    front_end: FeatureSpec | tuple[dict[str, object], Sequence[str]],
    operating_point: OperatingPoint,
    int8_weight_bytes: int,
    tensor_arena_bytes: int,
    window_seconds: float,
    hop_seconds: float,
    planned_activation_bytes: int | None = None,
    c_header: str | None = None,
    c_source: str | None = None,
) -> Path:
    """Write ``labels.json`` and ``manifest.json`` into ``folder`` (the model and C files must be
    there already) and return the manifest's path.

    ``front_end`` is the MFCC :class:`FeatureSpec` (with stats), or for the speech-embedding
    family ``(spec dict, names of its graph files in folder)``.  The written manifest is loaded
    back with :func:`load_manifest`; one that would not load is removed, never left behind.
    """
    folder = Path(folder)
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise ManifestError("labels must be unique")
    model_path = folder / _plain_name(model_file)
    fmt = model_path.suffix.lstrip(".")
    if isinstance(front_end, FeatureSpec):
        if not front_end.has_stats:
            raise ManifestError("the MFCC front end needs its normalisation stats (mean, std)")
        front: MfccFrontEnd | EmbeddingFrontEnd = MfccFrontEnd(features=front_end)
        sample_rate = front_end.sample_rate
    else:
        spec, names = front_end
        front = EmbeddingFrontEnd(spec=dict(spec), files=[file_entry(folder, n) for n in names])
        sample_rate = int(cast("int", spec.get("sample_rate", 0)))  # a JSON number
    write_file_atomic(folder / LABELS_FILE, json.dumps(labels, indent=2) + "\n")
    entry = file_entry(folder, model_file)
    try:
        manifest = Manifest(
            family=family,  # type: ignore[arg-type]  # pydantic checks the Literal (below)
            model=ModelFiles(
                format=fmt,  # type: ignore[arg-type]  # pydantic checks the Literal (below)
                file=entry,
                c_header=file_entry(folder, c_header) if c_header else None,
                c_source=file_entry(folder, c_source) if c_source else None,
            ),
            labels=labels,
            labels_file=file_entry(folder, LABELS_FILE),
            front_end=front,
            audio=Audio(
                sample_rate=sample_rate, window_seconds=window_seconds, hop_seconds=hop_seconds
            ),
            operating_point=operating_point,
            sizes=Sizes(
                int8_weight_bytes=int8_weight_bytes,
                model_file_bytes=entry.bytes,
                tensor_arena_bytes=tensor_arena_bytes,
                planned_activation_bytes=planned_activation_bytes,
            ),
        )
    except ValidationError as err:
        raise ManifestError(f"cannot write {folder / MANIFEST_FILE}: {_first_error(err)}") from err
    path = write_file_atomic(
        folder / MANIFEST_FILE, manifest.model_dump_json(indent=2, by_alias=True) + "\n"
    )
    try:
        load_manifest(folder)
    except ManifestError:
        path.unlink(missing_ok=True)
        raise
    return path


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']} ({len(err.errors())} error(s))"


def load_manifest(folder: PathLike) -> Manifest:
    """Read and check ``folder/manifest.json`` against the files beside it."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest; write_manifest() writes it with the model")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"{path}: not JSON ({err})") from err
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a JSON object")
    if data.get("schema") != SCHEMA:
        raise ManifestError(
            f"{path}: schema is {data.get('schema')!r}, this version reads "
            f"{SCHEMA!r}; re-export the model with this version"
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as err:
        raise ManifestError(f"{path}: {_first_error(err)}") from err
    for entry in manifest.files():
        file = folder / _plain_name(entry.path)
        if not file.is_file():
            raise ManifestError(f"{path}: lists {entry.path}, which is missing from {folder}")
        size = file.stat().st_size
        if size != entry.bytes or sha256_file(file) != entry.sha256:
            raise ManifestError(
                f"{path}: {entry.path} does not match its sha256/size in the "
                f"manifest (changed after export?); re-export the folder"
            )
    try:
        on_disk = json.loads((folder / manifest.labels_file.path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"{folder / manifest.labels_file.path}: not JSON ({err})") from err
    if on_disk != manifest.labels:
        raise ManifestError(
            f"{path}: labels {manifest.labels} differ from {manifest.labels_file.path} {on_disk}"
        )
    if manifest.sizes.model_file_bytes != manifest.model.file.bytes:
        raise ManifestError(f"{path}: sizes.model_file_bytes disagrees with the model file entry")
    if isinstance(manifest.front_end, MfccFrontEnd):
        if not manifest.front_end.features.has_stats:
            raise ManifestError(f"{path}: the MFCC front end lacks normalisation stats")
        if manifest.front_end.features.sample_rate != manifest.audio.sample_rate:
            raise ManifestError(f"{path}: audio.sample_rate disagrees with the front end's")
    else:
        try:
            spec = EmbeddingSpec.from_dict(dict(manifest.front_end.spec))
        except (TypeError, ValueError) as err:
            raise ManifestError(
                f"{path}: front_end.spec is not a speech-embedding spec ({err})"
            ) from err
        expected = {MELSPEC_FILE: spec.melspec_sha256, EMBEDDING_FILE: spec.embedding_sha256}
        listed = {e.path: e.sha256 for e in manifest.front_end.files}
        for name, digest in expected.items():
            if listed.get(name) != digest:
                raise ManifestError(
                    f"{path}: front-end graph {name} is not listed with the "
                    f"sha256 its spec names ({digest[:12]}...)"
                )
    return manifest
