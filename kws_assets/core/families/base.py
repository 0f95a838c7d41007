"""What a model family is: the one place that knows its front end, network, training and artifact.

The feature tables, the training and shipping assets, ``kws classify/detect`` and the demo loop
over the registry (:mod:`kws_assets.core.families`) and call a family only through this
interface, so adding a family is one module (a :class:`Family` subclass, registered) and its
tests.  The shared steps — staging a feature table through the feature cache, exporting float and
int8 ONNX, measuring accuracy and CPU latency, writing the folder — are written here once; a
family supplies what differs.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from kws_assets.core.features.loader import TrainingData, collect_splits
from kws_assets.core.features.table import (
    ClipReader,
    FeatureCache,
    TableFrontEnd,
    TableStats,
    split_arrays,
    stage_feature_table,
)
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.detect import DetectorOperatingPoint
from kws_assets.core.model.training import EvalReport, TrainResult
from kws_assets.core.model.warm_start import WarmStart, warm_signature, warm_start_from
from kws_assets.core.parallel import Progress
from kws_assets.core.ship.cpu_latency import (
    DEFAULT_PRECISION,
    PrecisionLatency,
    measure_precision_latency,
)
from kws_assets.core.ship.export import (
    ArtifactFile,
    ClipClassifier,
    export_onnx,
    onnx_accuracy,
    quantize_int8,
    write_artifact_folder,
)
from kws_assets.core.storage.parquet_stream import StagedParquet
from kws_assets.core.storage.render_cache import NO_CACHE, RenderCache
from kws_assets.core.tables import SPLITS
from kws_assets.settings import (
    AudioSettings,
    DistillSettings,
    EmbeddingSettings,
    FeatureSettings,
    MicroWakeWordSettings,
    ModelSettings,
    QuantizeSettings,
    TrainSettings,
)

PathLike = str | os.PathLike[str]
Log = Callable[[str], None]

LATENCY_WINDOWS = 64
"""Validation windows each graph is timed on for ``cpu_latency.json``."""


@dataclass(frozen=True)
class FamilySettings:
    """The settings sections a family may read (never the whole config: the core takes sections).

    A family that needs a new section adds it here and where the assets build it
    (``kws_assets.lib.family_assets.family_settings``)."""

    labels: list[str]
    audio: AudioSettings = field(default_factory=AudioSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    micro: MicroWakeWordSettings = field(default_factory=MicroWakeWordSettings)
    distill: DistillSettings = field(default_factory=DistillSettings)


@dataclass(frozen=True)
class TeacherLogits:
    """A teacher family's logits on every row of its own feature table, by clip id: what a
    family with ``distil_from`` learns from (matched to its own rows by clip id)."""

    ids: list[str]
    logits: np.ndarray


@dataclass(frozen=True)
class AssetText:
    """How one of a family's assets is named and described in the asset graph."""

    key: str
    description: str
    kinds: frozenset[str]
    code_version: str = "1"


class EmptySplitError(ValueError):
    """A split a model needs has no rows: a data problem no retry fixes."""


def require_train_and_val(data: TrainingData, asset: str) -> None:
    """Raise :class:`EmptySplitError` when the train or the val split is empty."""
    rows = {split: data.rows(split) for split in SPLITS}
    if rows["train"] == 0 or rows["val"] == 0:
        raise EmptySplitError(f"{asset} needs train and val rows; got {rows}")


@dataclass
class Trained:
    """A trained model: its checkpoint, the best network, the data and the per-split reports."""

    checkpoint: ModelCheckpoint
    result: TrainResult
    data: TrainingData
    reports: dict[str, EvalReport]
    notes: dict[str, Any] = field(default_factory=dict)
    """What else training measured, for the model asset's metadata (e.g. the negative rounds)."""

    @classmethod
    def scored(
        cls,
        result: TrainResult,
        data: TrainingData,
        make_checkpoint: Callable[[dict[str, float]], ModelCheckpoint],
        notes: dict[str, Any] | None = None,
    ) -> Trained:
        """Score the best network on every split with rows; the checkpoint records the
        accuracies (rounded to 4 places)."""
        reports = {
            split: report
            for split in SPLITS
            if (report := data.report(result.model, split)) is not None
        }
        accuracy = {split: round(float(r.accuracy), 4) for split, r in reports.items()}
        return cls(make_checkpoint(accuracy), result, data, reports, dict(notes or {}))


@dataclass
class Shipped:
    """What exporting an artifact measured: ``metrics.json``'s values and the CPU timing."""

    metrics: dict[str, Any]
    latency: PrecisionLatency | None


@dataclass
class HeldOut:
    """Validation features (calibration, latency) and the test split, as the network takes them."""

    x_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class Family(ABC):
    """A model family: a front end, a network over its features, and an artifact folder.

    Class attributes name it (``name``: the ``model.family`` setting's value, recorded in
    checkpoints and artifact folders) and its three assets; the methods are what the assets,
    the classifier loader and the CLI call.
    """

    name: str
    table: AssetText
    model: AssetText
    artifact: AssetText
    column: str
    """The feature column of this family's table (its front end's ``column``)."""
    input_name: str
    """Name of the ONNX graph's input."""
    report_confusion_table: bool = False
    """Whether the model asset shows the test confusion matrix as a table (beside the PNG)."""
    distil_from: str | None = None
    """The family whose trained model teaches this one (the model asset then also reads that
    family's model and table and calls :meth:`train_distilled`); None: hard labels only."""
    negatives: AssetText | None = None
    """The family's negatives table: the negative material (``negative_material``) through its
    front end as a stream, frames not windows (``core/model/negative_windows.py``); None for a
    family that trains on clips only."""

    # -- front end ---------------------------------------------------------------------------
    @abstractmethod
    def front_end(self, settings: FamilySettings) -> TableFrontEnd:
        """The front end the settings ask for: its spec, and features for a batch of clips
        (the same call the classifier makes on a stream's windows)."""

    @abstractmethod
    def table_metadata(self, front_end: TableFrontEnd, stats: TableStats) -> dict[str, Any]:
        """Family-specific metadata of the feature table (shape, the front-end config)."""

    def stage_table(
        self,
        front_end: TableFrontEnd,
        clips: pl.DataFrame,
        staging: PathLike,
        reader: ClipReader | None,
        cache_folder: PathLike | None,
        cache_name: str | None = None,
        progress: Progress | None = None,
    ) -> tuple[StagedParquet, TableStats]:
        """The feature table of ``clips`` as a staged Parquet file, unchanged clips from the
        feature cache in ``cache_folder`` (None: no cache); ``progress(done, total)`` hears the
        clips done."""
        cache = (
            FeatureCache.for_front_end(cache_folder, front_end, cache_name)
            if cache_folder is not None
            else None
        )
        return stage_feature_table(
            clips, front_end, staging, reader, cache=cache, progress=progress
        )

    # -- network -----------------------------------------------------------------------------
    @abstractmethod
    def network(self, checkpoint: ModelCheckpoint) -> nn.Module:
        """The network of a checkpoint, weights loaded, in eval mode: the one rebuild."""

    @abstractmethod
    def train(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        log: Log,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        """Train on the table's train split, early-stopped on val (raises
        :class:`EmptySplitError` when either is empty); ``previous`` (the model asset's last
        materialization) warm-starts it where :meth:`warm_start` allows, on the short budget
        ``train.warm_epochs``, and ``notes["warm_start"]`` says which it was and why."""

    def train_distilled(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        teacher: TeacherLogits,
        log: Log,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        """Train on the table's train split with the teacher's logits as soft targets (a family
        with ``distil_from`` overrides this)."""
        raise NotImplementedError(f"the {self.name} family is not distilled")

    # -- warm start from the previous materialization ----------------------------------------
    def signature(self, settings: FamilySettings) -> dict[str, Any] | None:
        """What a previous checkpoint must match (:func:`warm_signature`: family, network shape
        settings, front-end spec without data-derived parts) to warm-start training under
        ``settings``; None: this family always trains from scratch."""
        return None

    def checkpoint_signature(self, checkpoint: ModelCheckpoint) -> dict[str, Any]:
        """:meth:`signature` as a checkpoint records it (a family with a signature overrides
        this; the default compares the raw network and front end)."""
        return warm_signature(checkpoint.family, checkpoint.network, checkpoint.front_end)

    def fresh_state(self, settings: FamilySettings) -> dict[str, torch.Tensor]:
        """A seeded, freshly initialised network for ``settings``' labels: the shape a previous
        state is mapped onto and the rows a new label starts from."""
        raise NotImplementedError(f"the {self.name} family does not warm-start")

    def warm_start(self, settings: FamilySettings, previous: ModelCheckpoint | None) -> WarmStart:
        """The initial state training under ``settings`` takes from ``previous``: its weights,
        the output rows mapped by label, when ``train.warm_from_previous`` is on and the
        checkpoint has this family's :meth:`signature`; otherwise from scratch, with the
        reason (never an error)."""
        if not settings.train.warm_from_previous:
            return WarmStart.from_scratch("train.warm_from_previous is off")
        signature = self.signature(settings)
        if signature is None:
            return WarmStart.from_scratch(f"the {self.name} family does not warm-start")
        return warm_start_from(
            previous,
            signature,
            self.checkpoint_signature,
            settings.labels,
            lambda: self.fresh_state(settings),
        )

    def stage_negatives(
        self,
        settings: FamilySettings,
        material: pl.DataFrame,
        read_audio: Callable[[str], np.ndarray],
        staging: PathLike,
        keywords: pl.DataFrame | None = None,
        cache: RenderCache = NO_CACHE,
        workers: int = 1,
    ) -> StagedParquet:
        """The negatives table of the material's recordings (rows: ``uri``, ``segment_id``,
        ``split``, ``kind``, ``seconds``) as a staged Parquet file, a recording at a time; with
        ``keywords`` (train keyword clips: ``uri``, ``label``, ``clip_id``), those clips in the
        material's surroundings too, as a stream shows them.  ``cache`` keeps each recording's
        frames by its ``segment_id`` (a digest of what the recording is made of) and the front
        end, so a re-run runs the front end over new recordings only; the others go through it
        on ``workers`` processes (the same frames for any count)."""
        raise NotImplementedError(f"the {self.name} family declares no negatives table")

    def train_on_material(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        negatives: pl.LazyFrame,
        log: Log,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        """:meth:`train` with the negatives table's windows as ``_unknown_`` (and the family's
        hard-negative mining); a family without a negatives table trains on clips only."""
        return self.train(settings, table, log, previous)

    # -- artifact ----------------------------------------------------------------------------
    def held_out(self, checkpoint: ModelCheckpoint, table: pl.LazyFrame) -> HeldOut:
        """The val and test rows of the table as the network takes them (features as stored;
        a family that normalises overrides this)."""
        held = collect_splits(table, ["val", "test"], [self.column, "label", "split"])
        x_val, _ = split_arrays(held, checkpoint.labels, "val", column=self.column)
        x_test, y_test = split_arrays(held, checkpoint.labels, "test", column=self.column)
        return HeldOut(x_val, x_test, y_test)

    @abstractmethod
    def spec_shape(self, checkpoint: ModelCheckpoint) -> tuple[int, ...]:
        """The input shape of one example, from the checkpoint's front-end spec."""

    @abstractmethod
    def artifact_files(
        self, checkpoint: ModelCheckpoint, int8_path: Path
    ) -> Mapping[str, ArtifactFile]:
        """The family's own files in the artifact folder (front-end config, C array, graphs)."""

    def export(
        self,
        checkpoint: ModelCheckpoint,
        table: pl.LazyFrame,
        quantize: QuantizeSettings,
        directory: PathLike,
    ) -> Shipped:
        """Export the checkpoint to float and int8 ONNX (calibrated on validation rows), score
        both on the test split, time both on a CPU and write the artifact folder."""
        model = self.network(checkpoint)
        held = self.held_out(checkpoint, table)
        with tempfile.TemporaryDirectory(prefix="kws-export-") as tmp:
            float_path, int8_path = Path(tmp) / "model.float.onnx", Path(tmp) / "model.int8.onnx"
            export_onnx(
                model,
                _Shape(self.spec_shape(checkpoint)),
                float_path,
                input_name=self.input_name,
            )
            quantize_int8(
                float_path,
                int8_path,
                held.x_val[: quantize.calibration_rows],
                per_channel=quantize.per_channel,
            )
            metrics = export_metrics(
                float_path, int8_path, held.x_test, held.y_test, checkpoint.accuracy
            )
            latency = cpu_latency(float_path, int8_path, held.x_val)
            write_artifact_folder(
                directory,
                int8_path,
                checkpoint.labels,
                metrics,
                self.artifact_files(checkpoint, int8_path),
                float_path,
                latency,
            )
        return Shipped(metrics, latency)

    @abstractmethod
    def load_classifier(
        self, folder: Path, threads: int | None = None, precision: str = DEFAULT_PRECISION
    ) -> ClipClassifier:
        """The classifier of one of this family's artifact folders."""

    @abstractmethod
    def owns_folder(self, folder: Path) -> bool:
        """Whether ``folder`` is an artifact folder of this family."""

    def reads_shipped(self, folder: Path) -> bool:
        """Whether ``folder`` is one of the family's other shipped formats (a device folder, an
        ESPHome folder) that :meth:`load_shipped` runs; none by default.  Checked before the
        artifact layouts, so a malformed one is reported by its own loader."""
        return False

    def load_shipped(self, folder: Path, threads: int | None = None) -> ClipClassifier:
        """The classifier of one of the family's other shipped formats (a ``ValueError`` or
        ``OSError`` saying what is wrong with a malformed one)."""
        raise ValueError(f"{folder}: the {self.name} family ships no other format")

    def release_files(self, release: Path, point: DetectorOperatingPoint) -> list[Path]:
        """Write the family's other runtimes' formats into its release folder (which already
        holds the artifact and ``point``), returning the files written; none by default.  A
        ``ValueError`` says this release cannot have them (the release itself still stands)."""
        return []


@dataclass(frozen=True)
class _Shape:
    """A spec reduced to what ONNX export needs: the shape of one example."""

    shape: tuple[int, ...]


def export_metrics(
    float_path: Path,
    int8_path: Path,
    x_test: np.ndarray,
    y_test: np.ndarray,
    torch_accuracy: dict[str, float],
) -> dict[str, Any]:
    """Test-split accuracy of the float and int8 ONNX files, and their sizes."""
    return {
        "test_rows": len(y_test),
        "float_test_accuracy": round(onnx_accuracy(float_path, x_test, y_test), 4)
        if len(y_test)
        else None,
        "int8_test_accuracy": round(onnx_accuracy(int8_path, x_test, y_test), 4)
        if len(y_test)
        else None,
        "float_size_kb": round(float_path.stat().st_size / 1024, 1),
        "int8_size_kb": round(int8_path.stat().st_size / 1024, 1),
        "torch_accuracy": torch_accuracy,
    }


def cpu_latency(float_path: Path, int8_path: Path, x_val: np.ndarray) -> PrecisionLatency | None:
    """Both graphs timed on validation windows (None without any: nothing real to time on)."""
    if len(x_val) == 0:
        return None
    return measure_precision_latency(
        {"float": float_path, "int8": int8_path}, x_val[:LATENCY_WINDOWS]
    )
