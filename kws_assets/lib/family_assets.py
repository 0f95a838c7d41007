"""The three assets every model family gets — its feature table, its trained model, its int8
artifact — made by one factory from a :class:`~kws_assets.core.families.base.Family`.

``defs/assets/features.py``, ``train.py`` and ``ship.py`` call these over the registry; a test
calls :func:`family_assets` with a family of its own.  Keys, groups, kinds, code versions and
descriptions come from the family's :class:`~kws_assets.core.families.base.AssetText`; each
asset body is one core call plus the metadata the UI shows.  The helpers the specific assets
share (the settings sections a family reads, staging a table through the feature cache, the
metadata of a trained model) live here too, so asset modules never import each other.
"""

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import dagster as dg
import polars as pl

from kws_assets.core.evaluation.plots import confusion_matrix_png, png_markdown
from kws_assets.core.families import get_family
from kws_assets.core.families.base import (
    EmptySplitError,
    Family,
    FamilySettings,
    Log,
    TeacherLogits,
    Trained,
)
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN
from kws_assets.core.features.loader import table_logits
from kws_assets.core.features.table import ClipReader, TableStats, local_file_stamp
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.parallel import progress_reporter, resolve_workers
from kws_assets.core.ship.cpu_latency import PrecisionLatency
from kws_assets.core.ship.export import OPERATING_POINT_FILE
from kws_assets.core.ship.release import write_release
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.core.storage.parquet_stream import StagedParquet, sweep_stale_staged
from kws_assets.core.storage.render_cache import RenderCache
from kws_assets.core.tables import SPLITS, TRAIN
from kws_assets.lib.io_managers import TorchCheckpointUPathIOManager
from kws_assets.lib.metadata import confusion_table
from kws_assets.lib.resources import ClipStoreResource, KwsSettings
from kws_assets.settings import KwsConfig

# Under storage.root (always local): the feature cache, and where the table is built before the
# IO manager moves it into place.
FEATURE_CACHE_DIR = ("cache", "features")
STAGING_DIR = ("cache", "staging")
STREAM_CACHE_DIR = ("cache", "streams")
"""Under storage.root: the negative material's streamed frames by recording and front end, so a
re-run (a keyword changed) embeds only the recordings that changed."""
OWNERS = ["team:kws-ml"]


def family_settings(cfg: KwsConfig) -> FamilySettings:
    """The settings sections a family reads, cut from the config once, here."""
    return FamilySettings(
        labels=cfg.labels,
        audio=cfg.audio,
        features=cfg.features,
        model=cfg.model,
        train=cfg.train,
        embedding=cfg.embedding,
        micro=cfg.micro_wake_word,
        distill=cfg.distill,
    )


def stage_family_table(
    family: Family,
    cfg: KwsConfig,
    clip_store: ClipStoreResource,
    clips: pl.DataFrame,
    cache_name: str | None = None,
    partition_key: str | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[StagedParquet, TableStats, dict[str, Any]]:
    """``family``'s features of ``clips`` as a staged Parquet file, through the feature cache
    (a clip featurized once is read from the cache; a partition keeps a cache of its own), with
    the family's table metadata; ``say`` hears how far it is (clips done of all, rate, time
    left)."""
    front_end = family.front_end(family_settings(cfg))
    if cache_name is None and partition_key is not None:
        cache_name = f"{front_end.cache_name}-{partition_key}"
    staging = cfg.storage_path(*STAGING_DIR)
    sweep_stale_staged(staging)
    staged, stats = family.stage_table(
        front_end,
        clips,
        staging,
        ClipReader(load_bytes=clip_store.store.read_bytes, stamp=local_file_stamp),
        cfg.storage_path(*FEATURE_CACHE_DIR),
        cache_name,
        progress_reporter(say, "clips featurized") if say is not None else None,
    )
    return staged, stats, family.table_metadata(front_end, stats)


def stage_features(
    cfg: KwsConfig,
    clip_store: ClipStoreResource,
    clips: pl.DataFrame,
    cache_name: str | None = None,
) -> tuple[StagedParquet, TableStats]:
    """MFCC of ``clips`` as a staged Parquet file (the data card's keyword features), through
    the same path and cache as the MFCC table."""
    staged, stats, _ = stage_family_table(MFCC_DSCNN, cfg, clip_store, clips, cache_name)
    return staged, stats


def _json_values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        k: dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v
        for k, v in metadata.items()
    }


def table_asset(family: Family) -> dg.AssetsDefinition:
    """The family's feature table over every validated and augmented clip."""

    @dg.asset(
        name=family.table.key,
        group_name="features",
        kinds=set(family.table.kinds),
        code_version=family.table.code_version,
        owners=OWNERS,
        description=family.table.description,
    )
    def _table(
        context: dg.AssetExecutionContext,
        settings: KwsSettings,
        clip_store: ClipStoreResource,
        validated_set: pl.DataFrame,
        augmented_clips: pl.DataFrame,
    ) -> StagedParquet:
        staged, stats, extra = stage_family_table(
            family,
            settings.config,
            clip_store,
            pl.concat([validated_set, augmented_clips], how="diagonal_relaxed"),
            partition_key=context.partition_key if context.has_partition_key else None,
            say=context.log.info,
        )
        context.add_output_metadata(
            {
                "rows": stats.rows,
                "featurized": stats.featurized,
                "from_cache": stats.from_cache,
                "clips_per_s": round(stats.clips_per_s, 1),
                "row_groups": stats.row_groups,
                "all_finite": stats.all_finite,
                **_json_values(extra),
            }
        )
        return staged  # the IO manager moves the finished Parquet file into place

    return _table


def training_metadata(trained: Trained, labels: list[str]) -> dict[str, Any]:
    """What every trained model shows: rows and accuracy per split, epochs, parameters, whether
    the train split streamed, and the test confusion matrix as a picture."""
    accuracy = trained.checkpoint.accuracy
    test = trained.reports.get("test")
    data, result = trained.data, trained.result
    meta: dict[str, Any] = {
        **{f"accuracy_{split}": value for split, value in accuracy.items()},
        "rows_per_split": dg.MetadataValue.json({s: data.rows(s) for s in SPLITS}),
        "train_split_streamed": data.streamed,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "parameters": sum(p.numel() for p in result.model.parameters()),
    }
    rounds = trained.notes.get("negative_rounds")
    if rounds:
        meta["negative_rounds"] = dg.MetadataValue.json(rounds)
        for entry in rounds:
            if "heldout" in entry:
                meta[f"heldout_fa_per_hour_round_{entry['round']}"] = entry["heldout"][
                    "fa_per_hour"
                ]
    if test is not None:
        png = confusion_matrix_png(
            labels, test.confusion, title=f"test split, accuracy {accuracy['test']:.3f}"
        )
        meta["test_confusion_matrix_plot"] = dg.MetadataValue.md(
            png_markdown(png, "test confusion matrix")
        )
    return meta


def train_family(
    family: Family,
    cfg: KwsConfig,
    table: pl.LazyFrame,
    log: Log,
    teacher: TeacherLogits | None = None,
    negatives: pl.LazyFrame | None = None,
    previous: ModelCheckpoint | None = None,
) -> Trained:
    """``family.train`` (``train_distilled`` with a teacher; ``train_on_material`` with the
    family's negatives table), warm-started from ``previous`` where the family can, with an
    empty split as a clear, non-retried failure."""
    settings = family_settings(cfg)
    try:
        if teacher is not None:
            return family.train_distilled(settings, table, teacher, log, previous=previous)
        if negatives is not None:
            return family.train_on_material(settings, table, negatives, log, previous=previous)
        return family.train(settings, table, log, previous=previous)
    except EmptySplitError as err:
        raise dg.Failure(str(err), allow_retries=False) from err


def previous_checkpoint(
    context: dg.AssetExecutionContext, store: object, enabled: bool
) -> tuple[ModelCheckpoint | None, dict[str, Any]]:
    """The checkpoint of the asset's last materialization, and where it came from (run id, time,
    path), for a warm start (``train.warm_from_previous``).  (None, ``{"problem": why}``) when
    there is none to use: no materialization in this instance (a checkpoint file alone is not
    one), a store that keeps no checkpoints, an unreadable object — a warm start is an
    optimisation, so none of these fails the step."""
    if not enabled:
        return None, {}
    event = context.instance.get_latest_materialization_event(context.asset_key)
    materialization = event.asset_materialization if event is not None else None
    if event is None or materialization is None:
        return None, {"problem": f"no previous materialization of {context.asset_key.path[-1]}"}
    path = materialization.metadata.get("path")
    source: dict[str, Any] = {
        "run_id": event.run_id,
        "materialized_at": datetime.fromtimestamp(event.timestamp, UTC).isoformat("T", "seconds"),
        **({"path": str(path.value)} if path is not None else {}),
    }
    if not isinstance(store, TorchCheckpointUPathIOManager):
        return None, {**source, "problem": "the model IO manager keeps no checkpoints to read"}
    try:
        return store.stored(context.asset_key), source
    except Exception as err:  # any unreadable object: train from scratch
        return None, {**source, "problem": f"the previous checkpoint is unreadable: {err!r}"}


def warm_start_record(trained: Trained, source: dict[str, Any]) -> dict[str, Any]:
    """Whether training started from the previous materialization (which run, when, the labels
    kept, added and removed) or from scratch, and why: the checkpoint's ``warm_start``."""
    info = dict(trained.notes.get("warm_start") or {"warm": False, "reason": "not recorded"})
    if not info.get("warm") and source.get("problem"):
        info["reason"] = source["problem"]
    if info.get("warm"):
        info["from"] = {k: v for k, v in source.items() if k != "problem"}
    return info


def with_warm_start(trained: Trained, source: dict[str, Any]) -> ModelCheckpoint:
    """The trained checkpoint recording how its training started (for the model card)."""
    return replace(trained.checkpoint, warm_start=warm_start_record(trained, source))


def warm_start_metadata(checkpoint: ModelCheckpoint) -> dict[str, Any]:
    """``warm_started`` and the ``warm_start`` record, as the model asset's metadata."""
    return {
        "warm_started": bool(checkpoint.warm_start.get("warm")),
        "warm_start": dg.MetadataValue.json(checkpoint.warm_start),
    }


def teacher_ins(family: Family) -> dict[str, dg.AssetIn]:
    """The teacher's model and table, for a family with ``distil_from`` (else none)."""
    if family.distil_from is None:
        return {}
    teacher = get_family(family.distil_from)
    return {
        teacher.model.key: dg.AssetIn(dagster_type=ModelCheckpoint),
        teacher.table.key: dg.AssetIn(dagster_type=pl.LazyFrame),
    }


def teacher_logits(family: Family, cfg: KwsConfig, inputs: dict[str, Any]) -> TeacherLogits | None:
    """The teacher's logits on its own table (None without a teacher or with distillation off);
    a teacher trained on other labels is a clear, non-retried failure."""
    if family.distil_from is None or not cfg.distill.enabled:
        return None
    teacher = get_family(family.distil_from)
    checkpoint: ModelCheckpoint = inputs[teacher.model.key]
    if checkpoint.labels != cfg.labels:
        raise dg.Failure(
            f"teacher labels {checkpoint.labels} differ from the config's {cfg.labels}: "
            f"rematerialize {teacher.model.key}",
            allow_retries=False,
        )
    ids, logits = table_logits(
        teacher.network(checkpoint), inputs[teacher.table.key], column=teacher.column
    )
    return TeacherLogits(ids, logits)


def negatives_asset(family: Family) -> dg.AssetsDefinition:
    """The family's negatives table: every recording of ``negative_material`` through its front
    end as a stream (frames, not windows)."""
    text = family.negatives
    if text is None:
        raise ValueError(f"the {family.name} family declares no negatives table")

    @dg.asset(
        name=text.key,
        group_name="features",
        kinds=set(text.kinds),
        code_version=text.code_version,
        owners=OWNERS,
        description=text.description,
    )
    def _negatives(
        context: dg.AssetExecutionContext,
        settings: KwsSettings,
        clip_store: ClipStoreResource,
        negative_material: pl.DataFrame,
        validated_set: pl.DataFrame,
    ) -> StagedParquet:
        cfg = settings.config
        staging = cfg.storage_path(*STAGING_DIR)
        sweep_stale_staged(staging)
        store = clip_store.store
        frames = RenderCache(cfg.storage_path(*STREAM_CACHE_DIR))
        keywords = validated_set.filter(
            (pl.col("split") == TRAIN) & pl.col("label").is_in(cfg.keywords)
        ).select("uri", "label", "clip_id")
        staged = family.stage_negatives(
            family_settings(cfg),
            negative_material,
            lambda uri: store.read(uri, target_sr=cfg.audio.sample_rate).samples,
            staging,
            keywords,
            frames,
            resolve_workers(cfg.compute.workers),
        )
        context.add_output_metadata(
            {
                "rows": staged.rows,
                "recordings_from_cache": frames.hits,
                "recordings_embedded": frames.misses,
                "keywords_in_context": keywords.height,
                "hours": round(float(negative_material["seconds"].sum()) / 3600, 3)
                if negative_material.height
                else 0.0,
            }
        )
        return staged

    return _negatives


def model_asset(family: Family) -> dg.AssetsDefinition:
    """The family's network trained on its table's train split, early-stopped on val."""

    @dg.asset(
        name=family.model.key,
        group_name="train",
        kinds=set(family.model.kinds),
        io_manager_key="model_io_manager",
        code_version=family.model.code_version,
        owners=OWNERS,
        description=family.model.description,
        ins={
            family.table.key: dg.AssetIn(dagster_type=pl.LazyFrame),
            **teacher_ins(family),
            **(
                {family.negatives.key: dg.AssetIn(dagster_type=pl.LazyFrame)}
                if family.negatives
                else {}
            ),
        },
    )
    def _model(
        context: dg.AssetExecutionContext,
        settings: KwsSettings,
        model_io_manager: dg.ResourceParam[dg.IOManager],
        **inputs: Any,
    ) -> ModelCheckpoint:
        cfg = settings.config
        teacher = teacher_logits(family, cfg, inputs)
        previous, source = previous_checkpoint(
            context, model_io_manager, cfg.train.warm_from_previous
        )
        trained = train_family(
            family,
            cfg,
            inputs[family.table.key],
            context.log.info,
            teacher,
            inputs[family.negatives.key] if family.negatives else None,
            previous,
        )
        checkpoint = with_warm_start(trained, source)
        meta = {**training_metadata(trained, cfg.labels), **warm_start_metadata(checkpoint)}
        if family.report_confusion_table:
            test = trained.reports.get("test")
            meta["test_confusion_matrix"] = (
                confusion_table(cfg.labels, test.confusion)
                if test
                else dg.MetadataValue.text("no test rows")
            )
        if family.distil_from is not None:
            meta["distilled_from"] = family.distil_from if teacher is not None else "no"
        context.add_output_metadata(meta)
        return checkpoint

    return _model


def latency_metadata(latency: PrecisionLatency | None) -> dict[str, Any]:
    """The CPU timing of the float and int8 graphs, as metadata."""
    if latency is None:
        return {}
    return {
        "cpu_precision": latency.recommended,
        "int8_speedup_per_window": round(latency.speedup(1), 3),
        "cpu_latency_us_per_window": dg.MetadataValue.json(
            cast("dict[str, Any]", latency.as_dict()["median_us_per_window"])
        ),
    }


def artifact_asset(family: Family) -> dg.AssetsDefinition:
    """The family's int8 artifact folder, stored beside the tables and handed on as a value."""

    @dg.asset(
        name=family.artifact.key,
        group_name="ship",
        kinds=set(family.artifact.kinds),
        io_manager_key="artifact_io_manager",
        code_version=family.artifact.code_version,
        owners=OWNERS,
        description=family.artifact.description,
        ins={
            family.model.key: dg.AssetIn(dagster_type=ModelCheckpoint),
            family.table.key: dg.AssetIn(dagster_type=pl.LazyFrame),
        },
    )
    def _artifact(
        context: dg.AssetExecutionContext, settings: KwsSettings, **inputs: Any
    ) -> dg.Output[ArtifactFolder]:
        checkpoint: ModelCheckpoint = inputs[family.model.key]
        artifact = ArtifactFolder.staging(prefix=f"kws-{family.artifact.key.replace('_', '-')}-")
        try:
            shipped = family.export(
                checkpoint, inputs[family.table.key], settings.config.quantize, artifact.path
            )
        except BaseException:
            shutil.rmtree(artifact.path, ignore_errors=True)
            raise
        metrics = shipped.metrics
        return dg.Output(
            artifact,
            metadata={
                **{k: v for k, v in metrics.items() if k != "torch_accuracy" and v is not None},
                **latency_metadata(shipped.latency),
                "labels": dg.MetadataValue.json(checkpoint.labels),
            },
        )

    return _artifact


EVALUATION_ASSET = "evaluation"
"""The asset whose report folder holds ``<family>/operating_point.json`` for every family."""


def release_key(family: Family) -> str:
    """The release asset of a family: ``<family name>_release``."""
    return f"{family.name}_release"


def release_asset(family: Family) -> dg.AssetsDefinition:
    """The family's artifact with the operating point the evaluation selected for it: the folder
    ``kws detect --model`` runs as measured, and the one the demo prints."""

    @dg.asset(
        name=release_key(family),
        group_name="ship",
        kinds={"onnx"},
        io_manager_key="artifact_io_manager",
        code_version="1",
        owners=OWNERS,
        description=f"{family.artifact.key} with the operating point the evaluation selected for "
        f"the {family.name} family ({OPERATING_POINT_FILE}: threshold, smoothing, refractory, "
        "hop, and how it was chosen: FA/h and FRR with their intervals, whether the target is "
        "established, whether the point is usable). `kws detect --model <this folder>` runs the "
        "point the evaluation measured instead of the built-in defaults.",
        ins={
            family.artifact.key: dg.AssetIn(dagster_type=ArtifactFolder),
            EVALUATION_ASSET: dg.AssetIn(dagster_type=ArtifactFolder),
        },
    )
    def _release(context: dg.AssetExecutionContext, **inputs: Any) -> dg.Output[ArtifactFolder]:
        chosen = inputs[EVALUATION_ASSET].path / family.name / OPERATING_POINT_FILE
        release = ArtifactFolder.staging(prefix=f"kws-{release_key(family).replace('_', '-')}-")
        try:
            point = write_release(inputs[family.artifact.key].path, chosen, release.path)
        except ValueError as err:
            shutil.rmtree(release.path, ignore_errors=True)
            raise dg.Failure(f"{release_key(family)}: {err}", allow_retries=False) from err
        extra: dict[str, Any] = {}
        try:
            written = family.release_files(release.path, point)
        except ValueError as err:  # the release stands without the other formats
            context.log.warning(f"{release_key(family)}: no other runtime formats: {err}")
            extra["other_formats_refused"] = str(err)
        else:
            if written:
                extra["other_formats"] = dg.MetadataValue.json(
                    [str(path.relative_to(release.path)) for path in written]
                )
        provenance = json.loads(chosen.read_text()).get("selected", {})
        return dg.Output(
            release,
            metadata={
                **point.as_dict(),
                "usable": bool(provenance.get("usable", True)),
                "operating_point": dg.MetadataValue.json(provenance),
                **extra,
            },
        )

    return _release


def family_assets(family: Family) -> list[dg.AssetsDefinition]:
    """A family's table, model and artifact assets (and its negatives table, if it has one)."""
    negatives = [negatives_asset(family)] if family.negatives else []
    return [table_asset(family), *negatives, model_asset(family), artifact_asset(family)]
