"""Evaluate: every family's int8 artifact on speech it never trained on — real recordings and a
held-out TTS engine first, clip by clip and as streams at the operating point the evaluation
shipped (transfer_evaluation) — and clip by clip and as a streaming wake-word detector
(evaluation: FRR at a false-accepts-per-hour operating point).

Both assets are family-blind: they take every family of a registry's artifact folder by name and
load each with the registry's ``load_classifier``, which reads the family from the folder.
:func:`evaluation_asset` and :func:`transfer_evaluation_asset` build them for any registry (a
test's, with a family of its own); the code location's are built over the families the config
trains (``defs/family_graph.py``).  The registry's first family is the evaluation's headline: its
report keeps the top-level keys of evaluation.json and its plots carry no suffix."""

import functools
import time
from collections.abc import Callable, Mapping
from typing import cast

import dagster as dg
import numpy as np
import polars as pl

from kws_assets.core.evaluation import report as evaluation_report
from kws_assets.core.evaluation import transfer
from kws_assets.core.evaluation.family import clip_batches, evaluate_families
from kws_assets.core.evaluation.material import build_material
from kws_assets.core.evaluation.plots import png_markdown
from kws_assets.core.evaluation.real_speech import score_families, transfer_rows
from kws_assets.core.evaluation.real_streams import (
    BESIDE_PEERS_COLUMNS,
    STREAM_SUMMARY_COLUMNS,
    beside_peers,
    score_streams,
    shipped_points,
)
from kws_assets.core.evaluation.report import REPORT_FILE
from kws_assets.core.evaluation.transfer import TRANSFER_REPORT_FILE
from kws_assets.core.families import REGISTRY, Registry
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.parallel import resolve_workers
from kws_assets.core.ship.export import ClipClassifier
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.core.storage.render_cache import RenderCache
from kws_assets.lib.metadata import metadata_table
from kws_assets.lib.resources import ClipStoreResource, KwsSettings

RENDER_CACHE_DIR = ("cache", "renders")
CLIP_FEATURES_CACHE_DIR = ("cache", "clip_features")
"""Under storage.root: each evaluated clip's front-end features by front end and audio, so a
re-run (a keyword changed, the models retrained) runs the front ends on the new clips alone."""
"""Under storage.root (always local): the evaluation's TTS renders by request, so a re-run
speaks nothing it spoke before (``core.storage.render_cache``)."""

STUDENT_ASSET = "student_model"
"""The distilled DS-CNN, an input of transfer_evaluation when the DS-CNN on MFCC trains."""


def _ins(family_artifacts: Mapping[str, str]) -> dict[str, dg.AssetIn]:
    return {asset: dg.AssetIn() for asset in family_artifacts.values()}


def _classifiers(
    registry: Registry, artifacts: Mapping[str, ArtifactFolder]
) -> dict[str, ClipClassifier]:
    """Every registered family's classifier, in registration order."""
    return {family: load() for family, load in _loaders(registry, artifacts).items()}


def _loaders(
    registry: Registry, artifacts: Mapping[str, ArtifactFolder], threads: int | None = None
) -> dict[str, Callable[[], ClipClassifier]]:
    """Every registered family's classifier as the function that loads it (with ``threads``
    inference threads; None: the runtime's default), in registration order."""
    return {
        family: functools.partial(registry.load_classifier, artifacts[asset].path, threads)
        for family, asset in registry.artifact_assets().items()
    }


def evaluation_asset(registry: Registry = REGISTRY) -> dg.AssetsDefinition:
    """The ``evaluation`` asset over every family of ``registry`` (its artifact assets are the
    inputs, its first family the headline)."""
    family_artifacts = registry.artifact_assets()

    @dg.asset(
        group_name="ship",
        kinds={"onnx", "matplotlib"},
        io_manager_key="artifact_io_manager",
        code_version="2",
        owners=["team:kws-ml"],
        ins=_ins(family_artifacts),
        description="Every family's int8 artifact (DS-CNN quantized_model, speech_embedding "
        "embedding_artifact) evaluated from its real outputs: test-split accuracy, "
        "per-class precision/recall and confusion matrix; accuracy on held-out espeak-ng "
        "voices; an operating point (threshold x smoothing x refractory, from the "
        "evaluation grids) selected on validation-split streams for "
        "evaluation.target_fa_per_hour, then the FA/h and FRR at it on test streams (a long "
        "keyword-free recording and test keywords embedded in one; DET curve); latency per "
        f"1-s window; synthetic-vs-real feature distance per keyword. The report folder "
        f"({REPORT_FILE}, the plots, <family>/operating_point.json for kws detect "
        "--operating-point) is stored beside the tables.",
    )
    def evaluation(
        context: dg.AssetExecutionContext,
        settings: KwsSettings,
        clip_store: ClipStoreResource,
        mfcc_table: pl.LazyFrame,
        validated_set: pl.DataFrame,
        **artifacts: ArtifactFolder,
    ) -> dg.Output[ArtifactFolder]:
        cfg = settings.config
        store = clip_store.store

        def read(uri: str) -> np.ndarray:
            return store.read(uri, target_sr=cfg.audio.sample_rate).samples

        test_clips = validated_set.filter(pl.col("split") == "test").sort("clip_id")
        if test_clips.is_empty():
            raise dg.Failure("evaluation needs test-split rows in validated_set")

        started = time.perf_counter()
        renders = RenderCache(cfg.storage_path(*RENDER_CACHE_DIR))
        workers = resolve_workers(cfg.compute.workers)
        try:
            material = build_material(
                cfg.evaluation,
                cfg.audio,
                cfg.tts,
                cfg.keywords,
                cfg.negatives,
                cfg.language,
                test_clips=test_clips,
                val_clips=validated_set.filter(pl.col("split") == "val"),
                read_clip=read,
                mfcc_table=mfcc_table,
                progress=context.log.info,
                cache=renders,
                workers=workers,
            )
        except ValueError as err:
            raise dg.Failure(f"evaluation cannot build its streams: {err}") from err
        material_s = time.perf_counter() - started
        context.log.info(f"evaluation material: {renders.summary()}")
        results = evaluate_families(
            # one inference thread per worker process: the workers share the cores
            _loaders(registry, artifacts, threads=1 if workers > 1 else None),
            cfg.evaluation,
            material,
            test_clips["label"].to_list(),
            lambda: clip_batches(test_clips["uri"].to_list(), read),
            progress=context.log.info,
            workers=workers,
            features=RenderCache(cfg.storage_path(*CLIP_FEATURES_CACHE_DIR)),
        )
        lead = evaluation_report.headline(results)
        result = results[lead]
        point = result.stream.selected().detector
        return dg.Output(
            evaluation_report.write_report(results),
            metadata={
                **result.summary(),
                **evaluation_report.other_summaries(results),
                "families": metadata_table(evaluation_report.family_table(results)),
                # wall time: metadata only, not the report
                "evaluation_seconds": dg.MetadataValue.json(
                    {
                        "streams_and_voices": round(material_s, 2),
                        "renders_from_cache": renders.hits,
                        "renders_made": renders.misses,
                        **{
                            f"{f}_stream_scoring": round(r.stream_seconds, 2)
                            for f, r in results.items()
                        },
                    }
                ),
                "per_class_test": metadata_table(evaluation_report.per_class_table(result)),
                "confusion_matrix_test": dg.MetadataValue.md(
                    png_markdown(result.pictures["confusion_test"], "test confusion matrix")
                ),
                **{
                    evaluation_report.family_key("det_curve", f, lead): dg.MetadataValue.md(
                        png_markdown(
                            r.pictures["det_curve"], "DET curve" if f == lead else f"DET curve, {f}"
                        )
                    )
                    for f, r in results.items()
                },
                "synthetic_vs_real": metadata_table(result.synthetic_real),
                "notes": dg.MetadataValue.json(result.notes),
                "detect_command": dg.MetadataValue.text(
                    evaluation_report.detect_command(
                        point, lead, f"<{family_artifacts[lead]} folder>"
                    )
                ),
            },
        )

    return evaluation


def transfer_evaluation_asset(registry: Registry = REGISTRY) -> dg.AssetsDefinition:
    """The ``transfer_evaluation`` asset over every family of ``registry`` (its artifact assets
    are the inputs), with the distilled DS-CNN student beside them when the registry holds the
    DS-CNN on MFCC (``student_model`` exists only then)."""
    ins = _ins(registry.artifact_assets())
    if MFCC_DSCNN.name in registry.names():
        ins[STUDENT_ASSET] = dg.AssetIn()

    @dg.asset(
        name="transfer_evaluation",
        group_name="ship",
        kinds={"onnx"},
        io_manager_key="artifact_io_manager",
        code_version="2",
        owners=["team:kws-ml"],
        ins=ins,
        description="Every model family's int8 artifact on speech it never trained on, through "
        "the artifact's own front end: each real source (evaluation.real_sources: recordings "
        "of people), the held-out TTS engine (evaluation.held_out_engine: a transfer "
        "proxy), and the synthetic test split last (in-distribution: it flatters); the "
        "distilled DS-CNN student beside them (float weights) when the DS-CNN trains. "
        "Accuracy on all clips and on keyword clips, the always-_unknown_ baseline, "
        "per-class recall and confusion matrices. Each real source and the held-out engine's "
        "renders also as one stream (the clips one after another: keywords among the other "
        "words), every family's detector on it at the operating point the evaluation shipped: "
        "FRR and FA/h (the whole stream counts as negative time) with exact intervals. The "
        f"report folder holds {TRANSFER_REPORT_FILE} (table, streams; beside_peers: where a "
        "keyword is a phrase openWakeWord or microWakeWord ships a pretrained model of, that "
        "model in its own runtime on the same streams at its shipped point, beside every "
        "family's numbers for the keyword).",
    )
    def transfer_evaluation(
        context: dg.AssetExecutionContext,
        settings: KwsSettings,
        clip_store: ClipStoreResource,
        validated_set: pl.DataFrame,
        evaluation: ArtifactFolder,
        **inputs: ArtifactFolder | ModelCheckpoint,
    ) -> dg.Output[ArtifactFolder]:
        return evaluate_transfer(
            context, settings, clip_store, validated_set, evaluation, registry, inputs
        )

    return transfer_evaluation


def evaluate_transfer(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    validated_set: pl.DataFrame,
    evaluation: ArtifactFolder,
    registry: Registry,
    inputs: dict[str, ArtifactFolder | ModelCheckpoint],
) -> dg.Output[ArtifactFolder]:
    """transfer_evaluation's body: ``inputs`` are the registry's artifacts (and the student)."""
    cfg = settings.config
    inputs = dict(inputs)
    student_model = inputs.pop(STUDENT_ASSET, None)
    artifacts = cast("dict[str, ArtifactFolder]", inputs)
    by_family = _classifiers(registry, artifacts)
    # the default family's rows lead the table, then the others in the registry's order
    classifiers: dict[str, ClipClassifier] = {
        f: by_family[f] for f in sorted(by_family, key=lambda f: f != cfg.model.family)
    }
    if cfg.distill.enabled and isinstance(student_model, ModelCheckpoint):
        # the DS-CNN distilled from the embedding teacher (float weights)
        classifiers[transfer.STUDENT] = transfer.student_classifier(student_model)
    renders = RenderCache(cfg.storage_path(*RENDER_CACHE_DIR))
    held_out, skipped = transfer.held_out_engine_set(
        cfg.evaluation,
        cfg.keywords,
        cfg.negatives,
        cfg.language,
        cfg.audio,
        cache=renders,
        workers=resolve_workers(cfg.compute.workers),
    )
    context.log.info(f"held-out engine: {renders.summary()}")
    for what, reason in list(skipped.items())[:5]:
        context.log.warning(f"held-out engine: {what}: {reason}")
    store = clip_store.store
    unseen = [
        *transfer.real_sets(
            cfg.evaluation, cfg.keywords, cfg.audio, cfg.alignment, context.log.info
        ),
        *([held_out] if held_out is not None else []),
    ]
    sets = [
        *unseen,
        transfer.in_distribution_set(
            validated_set,
            cfg.audio,
            lambda uri: store.read(uri, target_sr=cfg.audio.sample_rate).samples,
        ),
    ]
    scores = score_families(
        classifiers, sets, RenderCache(cfg.storage_path(*CLIP_FEATURES_CACHE_DIR))
    )
    rows = transfer_rows(scores)
    points = shipped_points(evaluation.path, list(by_family))  # the student ships none
    for family in sorted(set(by_family) - set(points)):
        context.log.warning(f"{family}: the evaluation report holds no operating point")
    stream_scores = score_streams(classifiers, points, unseen, cfg.evaluation)
    streams = [s.as_row() for s in stream_scores]
    peers = beside_peers(
        stream_scores, cfg.keywords, unseen, cfg.evaluation, cfg.audio.clip_seconds
    )
    report, pictures = transfer.write_transfer_report(
        scores, rows, cfg.model.family, skipped, streams, peers
    )
    return dg.Output(
        report,
        metadata={
            "transfer": metadata_table(pl.DataFrame(rows)),
            "streams": metadata_table(streams, STREAM_SUMMARY_COLUMNS),
            **(
                {"beside_pretrained_models": metadata_table(peers, BESIDE_PEERS_COLUMNS)}
                if peers
                else {}
            ),
            "default_family": cfg.model.family,
            **{f"{r['family']}: {r['set']}": cast("float", r["accuracy"]) for r in rows},
            **{
                f"plot: {name}": dg.MetadataValue.md(png_markdown(png, name))
                for name, png in pictures.items()
            },
        },
    )
