"""The ``mfcc`` family: a DS-CNN (MLPerf Tiny reference shape) on normalised MFCC.

Its front end is :class:`~kws_assets.core.features.mfcc.MfccExtractor` (torch, batched, one
thread per worker while a table builds); the network is
:class:`~kws_assets.core.model.networks.DSCNN` rebuilt from the checkpoint's model settings; the
normalisation stats come from the train split and travel in the checkpoint's front-end spec and
the artifact's ``feature_config.json``.  The artifact folder also holds the int8 graph as a C
array (``model_data.h`` / ``model_data.c``) for microcontroller builds.  A folder without a
``front_end.json`` is this family's (every folder written before families recorded themselves).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import torch
from torch import nn

from kws_assets.core.families.base import (
    AssetText,
    Family,
    FamilySettings,
    HeldOut,
    Log,
    Trained,
    require_train_and_val,
)
from kws_assets.core.features.loader import (
    TrainingData,
    collect_splits,
    streamed_norm_stats,
    training_data,
)
from kws_assets.core.features.mfcc import (
    COLUMN,
    FAMILY,
    FeatureSpec,
    MfccExtractor,
    compute_norm_stats,
    feature_config_hash,
    normalize,
    single_threaded_torch,
)
from kws_assets.core.features.table import TableFrontEnd, TableStats, split_arrays
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.model.training import MfccAugment, TrainResult, train_model
from kws_assets.core.model.warm_start import seeded_state, warm_signature
from kws_assets.core.ship.cpu_latency import DEFAULT_PRECISION, PrecisionLatency
from kws_assets.core.ship.device_folder import DeviceClassifier, is_device_folder
from kws_assets.core.ship.export import (
    C_HEADER_FILE,
    C_SOURCE_FILE,
    FEATURES_FILE,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ArtifactFile,
    ClipClassifier,
    KwsClassifier,
    model_c_files,
    recorded_family,
    write_artifact_folder,
)
from kws_assets.settings import ModelSettings

NAME = FAMILY
"""``mfcc``: the name checkpoints, artifact folders and the ``model.family`` setting use."""

PathLike = str | os.PathLike[str]

ARTIFACT_FILES = (
    MODEL_FILE,
    LABELS_FILE,
    FEATURES_FILE,
    METRICS_FILE,
    C_HEADER_FILE,
    C_SOURCE_FILE,
)
"""The files of an MFCC artifact folder (plus the optional float graph and CPU timing)."""


def table_front_end(spec: FeatureSpec) -> TableFrontEnd:
    """The MFCC front end as the feature table runs it (un-normalised MFCC of a batch of clips)."""
    return TableFrontEnd(
        spec=spec,
        column=COLUMN,
        shape=spec.shape,
        features=MfccExtractor(spec),
        cache_key=feature_config_hash(spec),
        cache_name=COLUMN,
        staging_prefix="mfcc_table-",
        running=single_threaded_torch,
    )


def feature_spec(settings: FamilySettings) -> FeatureSpec:
    """The MFCC spec the settings ask for (no normalisation stats yet)."""
    return FeatureSpec.from_settings(settings.features, settings.audio)


def checkpoint_spec(checkpoint: ModelCheckpoint) -> FeatureSpec:
    """The front-end spec (with normalisation stats) a checkpoint was trained on."""
    return FeatureSpec.model_validate(checkpoint.front_end)


def normalised_data(
    settings: FamilySettings, table: pl.LazyFrame, asset: str
) -> tuple[FeatureSpec, TrainingData]:
    """The MFCC front end with train-split normalisation stats, and every split normalised
    through it (the train split streamed when it is large: ``train.stream_above_rows``).
    Shared with the distilled student, which trains the same network on the same table."""
    raw = training_data(table, settings.labels, settings.train)
    require_train_and_val(raw, asset)
    if raw.streamed:  # one streamed pass; in memory: the same stats as ever, from the array
        mean, std = streamed_norm_stats(table, settings.labels, "train")
    else:
        mean, std = compute_norm_stats(raw.held["train"][0])
    spec = feature_spec(settings).with_stats(mean, std)
    return spec, raw.normalised(lambda x: normalize(x, spec))


def warm_state(
    checkpoint: ModelCheckpoint, settings: FamilySettings, spec: FeatureSpec
) -> dict[str, torch.Tensor] | None:
    """The weights of a DS-CNN ``checkpoint`` (kws_model) to warm-start another DS-CNN (the
    student) with, when it is the same network on the same labels and the same normalised
    features; None otherwise (a stale checkpoint of another shape or table trains from scratch)."""
    same = (
        checkpoint.family == NAME
        and checkpoint.labels == settings.labels
        and checkpoint.network == settings.model.model_dump(mode="json")
        and checkpoint.front_end == spec.model_dump(mode="json")
    )
    return dict(checkpoint.state_dict) if same else None


NOT_SHAPE = frozenset({"family", "dropout", "final_dropout"})
"""Model settings a DS-CNN's tensors do not depend on."""


def dscnn_signature(
    network: Mapping[str, Any], spec: FeatureSpec, family: str = NAME
) -> dict[str, Any]:
    """A DS-CNN's warm-start signature: its shape settings (not ``model.family``, which only
    names the family the docs present, nor the dropouts, which no tensor depends on) and its
    MFCC spec without the normalisation stats (they follow the train split, which a changed
    keyword changes a little; the weights adapt)."""
    shape = {k: v for k, v in network.items() if k not in NOT_SHAPE}
    return warm_signature(family, shape, spec.model_dump(mode="json", exclude={"mean", "std"}))


def dscnn_checkpoint(
    settings: FamilySettings, spec: FeatureSpec, result: TrainResult, accuracy: dict[str, float]
) -> ModelCheckpoint:
    """The checkpoint of a DS-CNN trained on ``spec``'s features (kws_model, the student)."""
    return ModelCheckpoint(
        family=NAME,
        labels=settings.labels,
        state_dict=result.model.state_dict(),
        network=settings.model.model_dump(mode="json"),
        front_end=spec.model_dump(mode="json"),
        accuracy=accuracy,
        history=[dict(epoch.__dict__) for epoch in result.history],
        best_epoch=result.best_epoch,
    )


def artifact_files(
    spec: FeatureSpec, labels: Sequence[str], int8_onnx: bytes
) -> dict[str, ArtifactFile]:
    """The MFCC family's files: ``feature_config.json`` and the int8 graph as a C array."""
    if not spec.has_stats:
        raise ValueError("the feature spec carries no normalisation stats")
    header, source = model_c_files(int8_onnx, labels, spec)
    return {
        FEATURES_FILE: spec.model_dump_json(indent=2) + "\n",
        C_HEADER_FILE: header,
        C_SOURCE_FILE: source,
    }


def write_artifact(
    directory: PathLike,
    int8_onnx_path: PathLike,
    labels: Sequence[str],
    spec: FeatureSpec,
    metrics: Mapping[str, object],
    float_onnx_path: PathLike | None = None,
    cpu_latency: PrecisionLatency | None = None,
) -> Path:
    """Write an MFCC artifact folder atomically (see ``export.write_artifact_folder``)."""
    files = artifact_files(spec, labels, Path(int8_onnx_path).read_bytes())
    return write_artifact_folder(
        directory, int8_onnx_path, labels, metrics, files, float_onnx_path, cpu_latency
    )


class MfccDscnn(Family):
    name = NAME
    column = COLUMN
    input_name = "mfcc"
    report_confusion_table = True
    table = AssetText(
        key="mfcc_table",
        kinds=frozenset({"torchaudio", "parquet"}),
        code_version="2",
        description="MFCC of every validated clip (torchaudio, MLPerf Tiny convention: 40 ms "
        "window, 20 ms hop, 40 mel bands, 10 coefficients) as a fixed-shape array column, with "
        "clip id, label and split. Built batch by batch on all cores and written as "
        "Parquet row groups as it goes; clips unchanged since the last build come from "
        "the feature cache under storage.root/cache/features.",
    )
    model = AssetText(
        key="kws_model",
        kinds=frozenset({"pytorch"}),
        description="DS-CNN (MLPerf Tiny reference shape) trained on the train split with "
        "validation-based early stopping; accuracy per split and the test confusion "
        "matrix as metadata. Normalisation stats come from the train split only.",
    )
    artifact = AssetText(
        key="quantized_model",
        kinds=frozenset({"onnx"}),
        description="ONNX export of kws_model, int8 static quantization (QDQ) with onnxruntime "
        "calibrated on validation rows; the artifact folder holds model.int8.onnx (and the "
        "model.float.onnx it came from, with cpu_latency.json: which of the two runs faster on a "
        "CPU), labels.json, feature_config.json, metrics.json and the C array; stored beside the "
        "tables (local folder or S3) and handed to evaluation and the checks as a value.",
    )

    def front_end(self, settings: FamilySettings) -> TableFrontEnd:
        return table_front_end(feature_spec(settings))

    def table_metadata(self, front_end: TableFrontEnd, stats: TableStats) -> dict[str, Any]:
        spec = front_end.spec
        assert isinstance(spec, FeatureSpec)
        return {
            "threads": stats.workers,
            "feature_shape": f"{spec.n_frames}x{spec.n_mfcc}",
            "feature_config": spec.model_dump(mode="json"),
        }

    def network(self, checkpoint: ModelCheckpoint) -> nn.Module:
        model = DSCNN(len(checkpoint.labels), ModelSettings.model_validate(checkpoint.network))
        model.load_state_dict(checkpoint.state_dict)
        return model.eval()

    def signature(self, settings: FamilySettings) -> dict[str, Any]:
        return dscnn_signature(settings.model.model_dump(mode="json"), feature_spec(settings))

    def checkpoint_signature(self, checkpoint: ModelCheckpoint) -> dict[str, Any]:
        return dscnn_signature(checkpoint.network, checkpoint_spec(checkpoint), checkpoint.family)

    def fresh_state(self, settings: FamilySettings) -> dict[str, torch.Tensor]:
        return seeded_state(
            lambda: DSCNN(len(settings.labels), settings.model), settings.train.seed
        )

    def train(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        log: Log,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        spec, data = normalised_data(settings, table, self.model.key)
        warm = self.warm_start(settings, previous)
        log(f"{'warm start' if warm.warm else 'from scratch'}: {warm.reason}")
        budget = settings.train.for_dscnn()
        result = train_model(
            **data.train_inputs(),
            labels=settings.labels,
            model_settings=settings.model,
            train_settings=budget.warm() if warm.warm else budget,
            log=log,
            augment=MfccAugment.from_settings(settings.train.spec_augment),
            initial_state=warm.state,
            replay=warm.replay(settings.labels, settings.train.warm_replay),
        )
        return Trained.scored(
            result,
            data,
            lambda acc: dscnn_checkpoint(settings, spec, result, acc),
            {"warm_start": warm.as_dict()},
        )

    def held_out(self, checkpoint: ModelCheckpoint, table: pl.LazyFrame) -> HeldOut:
        spec = checkpoint_spec(checkpoint)
        held = collect_splits(table, ["val", "test"], [COLUMN, "label", "split"])
        x_val, _ = split_arrays(held, checkpoint.labels, "val", column=COLUMN)
        x_test, y_test = split_arrays(held, checkpoint.labels, "test", column=COLUMN)
        del held
        return HeldOut(normalize(x_val, spec), normalize(x_test, spec), y_test)

    def spec_shape(self, checkpoint: ModelCheckpoint) -> tuple[int, ...]:
        return checkpoint_spec(checkpoint).shape

    def artifact_files(
        self, checkpoint: ModelCheckpoint, int8_path: Path
    ) -> Mapping[str, ArtifactFile]:
        return artifact_files(
            checkpoint_spec(checkpoint), checkpoint.labels, int8_path.read_bytes()
        )

    def load_classifier(
        self, folder: Path, threads: int | None = None, precision: str = DEFAULT_PRECISION
    ) -> ClipClassifier:
        return KwsClassifier.load_mfcc(folder, threads, precision)

    def owns_folder(self, folder: Path) -> bool:
        return recorded_family(folder) in (None, NAME)

    def reads_shipped(self, folder: Path) -> bool:
        """The device folder (``manifest.json`` + int8 ``.tflite``: ``device_model``)."""
        return folder.is_dir() and is_device_folder(folder)

    def load_shipped(self, folder: Path, threads: int | None = None) -> ClipClassifier:
        return DeviceClassifier.load(folder, threads)


MFCC_DSCNN = MfccDscnn()
