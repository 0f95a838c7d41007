"""Evaluate: every family's int8 artifact on speech it never trained on — real recordings and a
held-out TTS engine first (transfer_evaluation) — and the DS-CNN artifact clip by clip and as a
streaming wake-word detector (evaluation: FRR at a false-accepts-per-hour operating point)."""

import json
import time
from typing import cast

import dagster as dg
import numpy as np
import polars as pl

from kws_assets.core.corpus.real_sources import RealClips, load_real_source
from kws_assets.core.dataset import engine_voices, synthesis
from kws_assets.core.evaluation import plots
from kws_assets.core.evaluation.evaluation import build_material, evaluate_family
from kws_assets.core.evaluation.plots import png_markdown
from kws_assets.core.evaluation.real_speech import score_families, transfer_rows
from kws_assets.core.families import load_classifier
from kws_assets.core.features.loader import collect_splits
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.parallel import chunks
from kws_assets.core.ship.export import (
    OPERATING_POINT_FILE,
    ClipClassifier,
    FloatMfccClassifier,
    KwsClassifier,
    write_operating_point,
)
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.core.tables import is_augmented
from kws_assets.lib.metadata import metadata_table
from kws_assets.lib.resources import ClipStoreResource, KwsSettings
from kws_assets.settings import KwsConfig, ModelSettings

REPORT_FILE = "evaluation.json"
TEST_AUDIO_BATCH_CLIPS = 256
"""Test clips read and classified together by the audio families (the rest stay on disk)."""


FAMILY_FOLDERS = {"mfcc": "mfcc", "speech_embedding": "speech_embedding"}
"""Sub-folder of the report per family; each holds that family's operating_point.json."""


@dg.asset(
    group_name="ship",
    kinds={"onnx", "matplotlib"},
    io_manager_key="artifact_io_manager",
    code_version="2",
    owners=["team:kws-ml"],
    description="Both families' int8 artifacts (DS-CNN quantized_model, speech_embedding "
    "embedding_artifact) evaluated from their real outputs: test-split accuracy, "
    "per-class precision/recall and confusion matrix; accuracy on held-out espeak-ng "
    "voices; an operating point (threshold x smoothing x refractory, from the "
    "evaluation grids) selected on validation-split streams for "
    "evaluation.target_fa_per_hour, then the FA/h and FRR at it on test streams (a long "
    "keyword-free recording and test keywords embedded in one; DET curve); latency per "
    "1-s window; synthetic-vs-real feature distance per keyword. The report folder "
    "(evaluation.json, the plots, <family>/operating_point.json for kws detect "
    "--operating-point) is stored beside the tables.",
)
def evaluation(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    quantized_model: ArtifactFolder,
    embedding_artifact: ArtifactFolder,
    mfcc_table: pl.LazyFrame,
    validated_set: pl.DataFrame,
) -> dg.Output[ArtifactFolder]:
    cfg = settings.config
    test = collect_splits(mfcc_table, ["test"]).filter(~is_augmented())
    if test.is_empty():
        raise dg.Failure("evaluation needs test-split rows in mfcc_table")
    store = clip_store.store

    def read(uri: str) -> np.ndarray:
        return store.read(uri, target_sr=cfg.audio.sample_rate).samples

    test_clips = validated_set.filter(pl.col("split") == "test").sort("clip_id")
    val_clips = validated_set.filter(pl.col("split") == "val")
    started = time.perf_counter()
    try:
        material = build_material(cfg, test_clips, val_clips, read, mfcc_table, context.log.info)
    except ValueError as err:
        raise dg.Failure(f"evaluation cannot build its streams: {err}") from err
    material_s = time.perf_counter() - started
    # the test clips' audio a batch at a time: memory does not grow with the test split
    test_audio = (
        np.stack([read(uri) for uri in batch])
        for batch in chunks(test_clips["uri"].to_list(), TEST_AUDIO_BATCH_CLIPS)
    )
    results = {
        "mfcc": evaluate_family(
            KwsClassifier.load_mfcc(quantized_model.path),
            cfg,
            material,
            test["label"].to_list(),
            test_features=test["mfcc"].to_numpy(),
            family="mfcc",
            progress=context.log.info,
        ),
        "speech_embedding": evaluate_family(
            load_classifier(embedding_artifact.path),
            cfg,
            material,
            test_clips["label"].to_list(),
            test_audio=test_audio,
            family="speech_embedding",
            progress=context.log.info,
        ),
    }
    result = results["mfcc"]  # the DS-CNN keeps the top-level keys the demo and tests read

    report = ArtifactFolder.staging(prefix="kws-evaluation-")
    for family, family_result in results.items():
        suffix = "" if family == "mfcc" else f"_{family}"
        for name, png in family_result.pictures.items():
            report.file(f"{name}{suffix}.png").write_bytes(png)
        selected = family_result.stream.selected()
        write_operating_point(
            report.path / FAMILY_FOLDERS[family],
            selected.detector,
            {
                "family": family,
                "on": "validation streams",
                "target_fa_per_hour": cfg.evaluation.target_fa_per_hour,
                "validation": selected.validation.as_dict(),
                "meets_target_on_validation": selected.meets_target,
                "test": family_result.stream.operating_point.as_dict(),
            },
        )
    report.file(REPORT_FILE).write_text(
        json.dumps(
            {
                **result.as_dict(),
                "families": {
                    f: {k: v for k, v in r.as_dict().items() if k != "synthetic_vs_real"}
                    for f, r in results.items()
                },
            },
            indent=2,
        )
    )
    per_class = pl.DataFrame(
        [{"label": label, **vars(m)} for label, m in result.test.per_class.items()]
    )
    family_table = pl.DataFrame(
        [
            {
                "family": f,
                **{k: r.summary()[k] for k in FAMILY_COLUMNS},
                "stream_scoring_s": round(r.stream_seconds, 2),
            }
            for f, r in results.items()
        ]
    )
    point = result.stream.selected().detector
    embedding = results["speech_embedding"].summary()
    return dg.Output(
        report,
        metadata={
            **result.summary(),
            **{f"speech_embedding_{k}": v for k, v in embedding.items()},
            "families": metadata_table(family_table),
            "evaluation_seconds": dg.MetadataValue.json(  # wall time: metadata only, not the report
                {
                    "streams_and_voices": round(material_s, 2),
                    **{
                        f"{f}_stream_scoring": round(r.stream_seconds, 2)
                        for f, r in results.items()
                    },
                }
            ),
            "per_class_test": metadata_table(per_class),
            "confusion_matrix_test": dg.MetadataValue.md(
                png_markdown(result.pictures["confusion_test"], "test confusion matrix")
            ),
            "det_curve": dg.MetadataValue.md(
                png_markdown(result.pictures["det_curve"], "DET curve")
            ),
            "det_curve_speech_embedding": dg.MetadataValue.md(
                png_markdown(
                    results["speech_embedding"].pictures["det_curve"], "DET curve, speech_embedding"
                )
            ),
            "synthetic_vs_real": metadata_table(result.synthetic_real),
            "notes": dg.MetadataValue.json(result.notes),
            "detect_command": dg.MetadataValue.text(
                f"kws detect --model <quantized_model folder> --operating-point "
                f"<evaluation folder>/mfcc/{OPERATING_POINT_FILE} long.wav   (= --threshold "
                f"{point.threshold:.6g} --smooth {point.smoothing_windows} --refractory-s "
                f"{point.refractory_s:g} --hop-ms {point.hop_ms:g})"
            ),
        },
    )


FAMILY_COLUMNS = (
    "test_accuracy",
    "unseen_voice_accuracy",
    "threshold_at_target",
    "smoothing_at_target",
    "refractory_s_at_target",
    "val_fa_per_hour_at_target",
    "val_frr_at_target",
    "fa_per_hour_at_target",
    "frr_at_target",
    "window_latency_ms",
)


TRANSFER_REPORT_FILE = "transfer.json"
STUDENT = "mfcc_student (float)"  # the distilled DS-CNN's row in the transfer table
IN_DISTRIBUTION_MAX_CLIPS = 3000
"""Test clips the transfer table's in-distribution row scores at most (a uniform sample by clip
id beyond that: the row is a yardstick, and its audio is held in memory)."""
HELD_OUT_UNKNOWN_PER_KEYWORD = 2  # _unknown_ words per keyword the held-out engine speaks


def _real_sets(cfg: KwsConfig, log) -> list[RealClips]:  # noqa: ANN001 - a logger method
    sets = []
    for source in cfg.evaluation.real_sources:
        clips = load_real_source(source, cfg.keywords, cfg.audio, alignment=cfg.alignment)
        if clips.rejections:
            log(
                f"real source {source.name}: {len(clips.rejections)} row(s) rejected, e.g. "
                f"{[(r.row, r.reason) for r in clips.rejections[:3]]}"
            )
        sets.append(clips)
    return sets


def _held_out_engine_set(cfg: KwsConfig) -> tuple[RealClips | None, dict[str, str]]:
    engine = cfg.evaluation.held_out_engine
    if not engine:
        return None, {}
    unknown = [
        w
        for k in cfg.keywords
        for w in synthesis.negative_words(k, cfg.keywords, cfg.negatives, cfg.language)[
            :HELD_OUT_UNKNOWN_PER_KEYWORD
        ]
    ]
    spoken = engine_voices.held_out_engine_set(
        engine,
        cfg.keywords,
        unknown,
        cfg.evaluation.held_out_engine_renders,
        cfg.language,
        cfg.audio,
    )
    if not spoken.samples:
        return None, spoken.skipped
    return RealClips(
        f"held-out engine: {engine}",
        cfg.audio.sample_rate,
        np.stack(spoken.samples),
        spoken.labels,
        spoken.speakers,
        spoken.names,
        spoken.labels,
    ), spoken.skipped


def _test_split_set(
    cfg: KwsConfig, clip_store: ClipStoreResource, validated_set: pl.DataFrame
) -> RealClips:
    # clip ids are content hashes: the first ones in id order are a uniform sample of the split
    test = (
        validated_set.filter(pl.col("split") == "test")
        .sort("clip_id")
        .head(IN_DISTRIBUTION_MAX_CLIPS)
    )
    store = clip_store.store
    samples = np.zeros((test.height, cfg.audio.clip_samples), np.float32)
    for i, uri in enumerate(test["uri"].to_list()):
        samples[i] = store.read(uri, target_sr=cfg.audio.sample_rate).samples
    return RealClips(
        "synthetic test split (in-distribution)",
        cfg.audio.sample_rate,
        samples,
        test["label"].to_list(),
        test["speaker"].to_list(),
        test["clip_id"].to_list(),
        test["label"].to_list(),
    )


@dg.asset(
    group_name="ship",
    kinds={"onnx"},
    io_manager_key="artifact_io_manager",
    code_version="1",
    owners=["team:kws-ml"],
    description="Every model family's int8 artifact on speech it never trained on, through the "
    "artifact's own front end: each real source (evaluation.real_sources: recordings "
    "of people), the held-out TTS engine (evaluation.held_out_engine: a transfer "
    "proxy), and the synthetic test split last (in-distribution: it flatters); the "
    "distilled DS-CNN student beside them (float weights). "
    "Accuracy on all clips and on keyword clips, the always-_unknown_ baseline, "
    "per-class recall and confusion matrices; the report folder holds transfer.json.",
)
def transfer_evaluation(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    quantized_model: ArtifactFolder,
    embedding_artifact: ArtifactFolder,
    student_model: ModelCheckpoint,
    validated_set: pl.DataFrame,
) -> dg.Output[ArtifactFolder]:
    cfg = settings.config
    classifiers: dict[str, ClipClassifier] = {
        "speech_embedding": load_classifier(embedding_artifact.path),
        "mfcc": load_classifier(quantized_model.path),
    }
    if cfg.distill.enabled:  # the DS-CNN distilled from the embedding teacher (float weights)
        student = DSCNN(
            len(student_model.labels), ModelSettings.model_validate(student_model.network)
        )
        student.load_state_dict(student_model.state_dict)
        classifiers[STUDENT] = FloatMfccClassifier(
            student, student_model.labels, FeatureSpec.model_validate(student_model.front_end)
        )
    held_out, skipped = _held_out_engine_set(cfg)
    for what, reason in list(skipped.items())[:5]:
        context.log.warning(f"held-out engine: {what}: {reason}")
    sets = [
        *_real_sets(cfg, context.log.info),
        *([held_out] if held_out is not None else []),
        _test_split_set(cfg, clip_store, validated_set),
    ]
    scores = score_families(classifiers, sets)
    rows = transfer_rows(scores)
    report = ArtifactFolder.staging(prefix="kws-transfer-")
    report.file(TRANSFER_REPORT_FILE).write_text(
        json.dumps(
            {
                "default_family": cfg.model.family,
                "table": rows,
                "sets": {
                    family: {name: r.as_dict() for name, r in by_set.items()}
                    for family, by_set in scores.items()
                },
                "notes": [f"held-out engine: {k}: {v}" for k, v in skipped.items()],
            },
            indent=2,
        )
    )
    pictures = {}
    for family, by_set in scores.items():
        for i, (name, r) in enumerate(by_set.items()):
            png = plots.confusion_matrix_png(
                r.report.labels, r.report.confusion, f"{family}: {name}"
            )
            report.file(f"confusion_{family}_{i}.png").write_bytes(png)
            pictures[f"confusion {family}: {name}"] = png
    table = pl.DataFrame(rows)
    return dg.Output(
        report,
        metadata={
            "transfer": metadata_table(table),
            "default_family": cfg.model.family,
            **{f"{r['family']}: {r['set']}": cast("float", r["accuracy"]) for r in rows},
            **{
                f"plot: {name}": dg.MetadataValue.md(png_markdown(png, name))
                for name, png in list(pictures.items())[:6]
            },
        },
    )
