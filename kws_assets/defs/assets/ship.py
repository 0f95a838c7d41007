"""Ship: one int8 artifact per model family (model + labels + the front end it expects), each an
asset value stored beside the tables: quantized_model (DS-CNN on MFCC) and embedding_artifact."""

import tempfile
from pathlib import Path
from typing import Any, cast

import dagster as dg
import numpy as np
import polars as pl

from kws_assets.core.features.embedding_table import EMBEDDING_COLUMN, embedding_split_arrays
from kws_assets.core.features.loader import collect_splits
from kws_assets.core.features.mfcc import FeatureSpec, normalize
from kws_assets.core.features.speech_embedding import EmbeddingSpec
from kws_assets.core.features.table import split_arrays
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.embedding_head import build_head
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.ship.cpu_latency import PrecisionLatency, measure_precision_latency
from kws_assets.core.ship.export import (
    export_onnx,
    onnx_accuracy,
    quantize_int8,
    write_artifact,
    write_embedding_artifact,
)
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.lib.resources import KwsSettings
from kws_assets.settings import ModelSettings


@dg.asset(
    group_name="ship",
    kinds={"onnx"},
    io_manager_key="artifact_io_manager",
    code_version="1",
    owners=["team:kws-ml"],
    description="ONNX export of kws_model, int8 static quantization (QDQ) with onnxruntime "
    "calibrated on validation rows; the artifact folder holds model.int8.onnx (and the "
    "model.float.onnx it came from, with cpu_latency.json: which of the two runs faster on a CPU), "
    "labels.json, feature_config.json, metrics.json and the C array; stored beside the tables "
    "(local folder or S3) and handed to evaluation and the checks as a value.",
)
def quantized_model(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    kws_model: ModelCheckpoint,
    mfcc_table: pl.LazyFrame,
) -> dg.Output[ArtifactFolder]:
    cfg = settings.config
    labels = kws_model.labels
    spec = FeatureSpec.model_validate(kws_model.front_end)
    model = DSCNN(len(labels), ModelSettings.model_validate(kws_model.network))
    model.load_state_dict(kws_model.state_dict)
    model.eval()
    held = collect_splits(mfcc_table, ["val", "test"], ["mfcc", "label", "split"])
    x_val, _ = split_arrays(held, labels, "val")
    x_test, y_test = split_arrays(held, labels, "test")
    del held
    x_val, x_test = normalize(x_val, spec), normalize(x_test, spec)
    calibration = x_val[: cfg.quantize.calibration_rows]

    with tempfile.TemporaryDirectory(prefix="kws-export-") as tmp:
        float_path, int8_path = Path(tmp) / "model.float.onnx", Path(tmp) / "model.int8.onnx"
        export_onnx(model, spec, float_path)
        quantize_int8(float_path, int8_path, calibration, per_channel=cfg.quantize.per_channel)
        metrics = _export_metrics(float_path, int8_path, x_test, y_test, kws_model.accuracy)
        latency = _cpu_latency(float_path, int8_path, x_val)
        artifact = ArtifactFolder.staging(prefix="kws-quantized-model-")
        write_artifact(artifact.path, int8_path, labels, spec, metrics, float_path, latency)

    return dg.Output(
        artifact,
        metadata={
            **{k: v for k, v in metrics.items() if k != "torch_accuracy" and v is not None},
            **_latency_metadata(latency),
            "labels": dg.MetadataValue.json(labels),
        },
    )


@dg.asset(
    group_name="ship",
    kinds={"onnx"},
    io_manager_key="artifact_io_manager",
    code_version="1",
    owners=["team:kws-ml"],
    description="The speech_embedding family's artifact: the two front-end ONNX graphs (copied, "
    "sha256-checked), the head exported to ONNX and quantized to int8 (QDQ, calibrated "
    "on validation rows), labels.json, front_end.json and metrics.json. `kws classify` "
    "and `kws detect` run it from the folder alone, through the training front end.",
)
def embedding_artifact(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    embedding_model: ModelCheckpoint,
    embedding_table: pl.LazyFrame,
) -> dg.Output[ArtifactFolder]:
    cfg = settings.config
    labels = embedding_model.labels
    spec = EmbeddingSpec.from_dict(embedding_model.front_end)
    net = embedding_model.network
    model = build_head(
        net["head"],
        net["n_frames"],
        net["dim"],
        len(labels),
        net["width"],
        net["dropout"],
        net["n_blocks"],
    )
    model.load_state_dict(embedding_model.state_dict)
    model.eval()
    held = collect_splits(embedding_table, ["val", "test"], [EMBEDDING_COLUMN, "label", "split"])
    x_val, _ = embedding_split_arrays(held, labels, "val")
    x_test, y_test = embedding_split_arrays(held, labels, "test")
    del held
    with tempfile.TemporaryDirectory(prefix="kws-export-") as tmp:
        float_path, int8_path = Path(tmp) / "head.float.onnx", Path(tmp) / "head.int8.onnx"
        export_onnx(model, spec, float_path)
        quantize_int8(
            float_path,
            int8_path,
            x_val[: cfg.quantize.calibration_rows],
            per_channel=cfg.quantize.per_channel,
        )
        metrics = _export_metrics(float_path, int8_path, x_test, y_test, embedding_model.accuracy)
        latency = _cpu_latency(float_path, int8_path, x_val)
        artifact = ArtifactFolder.staging(prefix="kws-embedding-artifact-")
        write_embedding_artifact(
            artifact.path,
            int8_path,
            labels,
            spec,
            metrics,
            float_onnx_path=float_path,
            cpu_latency=latency,
        )
    return dg.Output(
        artifact,
        metadata={
            **{k: v for k, v in metrics.items() if k != "torch_accuracy" and v is not None},
            **_latency_metadata(latency),
            "labels": dg.MetadataValue.json(labels),
        },
    )


def _cpu_latency(float_path: Path, int8_path: Path, x_val: np.ndarray) -> PrecisionLatency | None:
    """Both graphs timed on validation windows (None without any: nothing real to time on)."""
    if len(x_val) == 0:
        return None
    return measure_precision_latency({"float": float_path, "int8": int8_path}, x_val[:64])


def _latency_metadata(latency: PrecisionLatency | None) -> dict[str, Any]:  # metadata values
    if latency is None:
        return {}
    return {
        "cpu_precision": latency.recommended,
        "int8_speedup_per_window": round(latency.speedup(1), 3),
        "cpu_latency_us_per_window": dg.MetadataValue.json(
            cast("dict[str, Any]", latency.as_dict()["median_us_per_window"])
        ),
    }


def _export_metrics(
    float_path: Path,
    int8_path: Path,
    x_test: np.ndarray,
    y_test: np.ndarray,
    torch_accuracy: dict,
) -> dict:
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
