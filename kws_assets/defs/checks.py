"""Asset checks: pandera schemas and dataset invariants, run by Dagster after each materialization.

Blocking checks stop a bad table from flowing downstream in the same run; the quarantine-rate
check only warns, because a high rejection rate is a signal to look, not a broken table.
"""

import dagster as dg
import pandera.polars as pa
import polars as pl

from kws_assets.core import schemas
from kws_assets.core.dataset.unknown_guard import unknown_share_problems
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.ship import export
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.core.tables import MFCC_COLUMN, SPLITS
from kws_assets.lib.resources import KwsSettings

MAX_FAILURES_SHOWN = 20
QUARANTINE_WARN_FRACTION = 0.25


def _schema_result(df: pl.DataFrame, schema: pa.DataFrameSchema) -> dg.AssetCheckResult:
    _, failures = schemas.validate(df, schema)
    return dg.AssetCheckResult(
        passed=failures.height == 0, metadata=_failure_metadata(df.height, failures)
    )


def _failure_metadata(rows: int, failures: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    return {
        "rows": dg.MetadataValue.int(rows),
        "failure_cases": dg.MetadataValue.int(failures.height),
        "failures": dg.MetadataValue.json(
            failures.head(MAX_FAILURES_SHOWN).to_dicts() if failures.height else []
        ),
    }


@dg.asset_check(
    asset="validated_set",
    blocking=True,
    description="The validated set satisfies the pandera clip-table schema.",
)
def validated_set_schema(settings: KwsSettings, validated_set: pl.DataFrame) -> dg.AssetCheckResult:
    cfg = settings.config
    schema = schemas.clip_table_schema(cfg.labels, cfg.audio.sample_rate, cfg.audio.clip_samples)
    return _schema_result(validated_set, schema)


@dg.asset_check(
    asset="validated_set", blocking=True, description="No speaker appears in more than one split."
)
def validated_set_speaker_disjoint(validated_set: pl.DataFrame) -> dg.AssetCheckResult:
    shared = (
        validated_set.group_by("speaker")
        .agg(pl.col("split").n_unique().alias("n"))
        .filter(pl.col("n") > 1)
    )
    return dg.AssetCheckResult(
        passed=shared.height == 0,
        metadata={
            "speakers": validated_set["speaker"].n_unique(),
            "speakers_in_several_splits": dg.MetadataValue.json(shared["speaker"].to_list()),
        },
    )


@dg.asset_check(
    asset="validated_set",
    blocking=True,
    description="Every label has training clips, and val and test are not empty.",
)
def validated_set_label_coverage(
    settings: KwsSettings, validated_set: pl.DataFrame
) -> dg.AssetCheckResult:
    labels = settings.config.labels
    train = validated_set.filter(pl.col("split") == "train")
    train_counts = dict(train.group_by("label").len().iter_rows())
    missing = [label for label in labels if train_counts.get(label, 0) == 0]
    split_sizes = {s: validated_set.filter(pl.col("split") == s).height for s in SPLITS}
    empty = [s for s, n in split_sizes.items() if n == 0]
    return dg.AssetCheckResult(
        passed=not missing and not empty,
        metadata={
            "labels_without_train_clips": dg.MetadataValue.json(missing),
            "empty_splits": dg.MetadataValue.json(empty),
            "split_sizes": dg.MetadataValue.json(split_sizes),
        },
    )


@dg.asset_check(
    asset="validated_set",
    blocking=True,
    description="Enough _unknown_ to train on and enough test clips per label to "
    "measure (dataset_guard); the message names the setting to change.",
)
def validated_set_unknown_and_test_size(
    settings: KwsSettings, validated_set: pl.DataFrame
) -> dg.AssetCheckResult:
    guard = settings.config.dataset_guard
    counts: dict[str, dict[str, int]] = {}
    for label, split, n in validated_set.group_by("label", "split").len().iter_rows():
        counts.setdefault(label, {})[split] = int(n)
    for label in settings.config.labels:
        counts.setdefault(label, {})
    problems = unknown_share_problems(
        counts, guard.min_unknown_share, guard.min_test_clips_per_label
    )
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) if problems else None,
        metadata={
            "problems": dg.MetadataValue.json(problems),
            "clips_per_label_and_split": dg.MetadataValue.json(counts),
        },
    )


@dg.asset_check(
    asset="quarantined_clips",
    additional_ins={"validated_set": dg.AssetIn("validated_set")},
    description="Warns when more than a quarter of the candidate clips are quarantined.",
)
def quarantine_rate(
    quarantined_clips: pl.DataFrame, validated_set: pl.DataFrame
) -> dg.AssetCheckResult:
    total = quarantined_clips.height + validated_set.height
    fraction = quarantined_clips.height / total if total else 0.0
    return dg.AssetCheckResult(
        passed=fraction <= QUARANTINE_WARN_FRACTION,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "quarantined_fraction": round(fraction, 4),
            "quarantined": quarantined_clips.height,
        },
    )


@dg.asset_check(
    asset="mfcc_table",
    blocking=True,
    description="Every MFCC has the configured shape and only finite values.",
)
def mfcc_table_schema(settings: KwsSettings, mfcc_table: pl.LazyFrame) -> dg.AssetCheckResult:
    cfg = settings.config
    spec = FeatureSpec.from_settings(cfg.features, cfg.audio)
    schema = schemas.mfcc_table_schema(spec.n_frames, spec.n_mfcc, cfg.labels)
    rows, failures = schemas.validate_lazy(mfcc_table, schema)  # a chunk of MFCCs at a time
    finite = not failures.filter(pl.col("column") == MFCC_COLUMN).height
    return dg.AssetCheckResult(
        passed=failures.height == 0 and rows > 0,
        metadata={**_failure_metadata(rows, failures), "all_finite": finite},
    )


def _gate_result(gate: export.GateResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=gate.passed,
        metadata={"value": gate.value, "limit": gate.limit, "detail": gate.detail},
    )


def int8_accuracy_drop(
    settings: KwsSettings, quantized_model: ArtifactFolder
) -> dg.AssetCheckResult:
    cfg = settings.config
    metrics = export.read_metrics(quantized_model.path)
    return _gate_result(export.accuracy_drop_gate(metrics, cfg.quant_gate.max_accuracy_drop_points))


def int8_artifact_size(
    settings: KwsSettings, quantized_model: ArtifactFolder
) -> dg.AssetCheckResult:
    cfg = settings.config
    model = quantized_model.file(export.MODEL_FILE)
    return _gate_result(export.size_gate(model, cfg.quant_gate.max_artifact_kb))


def dscnn_checks() -> list[dg.AssetChecksDefinition]:
    """The shipping gates on quantized_model: in the graph when the DS-CNN on MFCC trains
    (``families`` lists mfcc)."""
    return [
        dg.asset_check(
            asset="quantized_model",
            blocking=True,
            name="int8_accuracy_drop",
            description="Quantization gate: int8 test accuracy is at most "
            "quant_gate.max_accuracy_drop_points below the float model's.",
        )(int8_accuracy_drop),
        dg.asset_check(
            asset="quantized_model",
            blocking=True,
            name="int8_artifact_size",
            description="Quantization gate: the int8 model file fits in "
            "quant_gate.max_artifact_kb KiB.",
        )(int8_artifact_size),
    ]


ALL_CHECKS = [
    validated_set_schema,
    validated_set_speaker_disjoint,
    validated_set_label_coverage,
    validated_set_unknown_and_test_size,
    quarantine_rate,
    mfcc_table_schema,
]
