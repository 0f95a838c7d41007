"""Evaluate: the shipped int8 artifact on speakers and voices it never trained on, clip by clip
and as a streaming wake-word detector (FRR at a false-accepts-per-hour operating point)."""


import json

import dagster as dg
import polars as pl

from kws_assets.core.model.evaluation import evaluate_artifact
from kws_assets.core.model.export import KwsClassifier
from kws_assets.core.model.plots import png_markdown
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.core.tables import is_augmented
from kws_assets.lib.metadata import md_table
from kws_assets.lib.resources import ClipStoreResource, KwsSettings

REPORT_FILE = "evaluation.json"


@dg.asset(
    group_name="ship",
    kinds={"onnx", "matplotlib"},
    io_manager_key="artifact_io_manager",
    code_version="1",
    owners=["team:kws-ml"],
    description="The int8 artifact evaluated from its real outputs: test-split accuracy, "
                "per-class precision/recall and confusion matrix; accuracy on held-out espeak-ng "
                "voices; streaming detection over a long keyword-free recording and over test "
                "keywords embedded in one (DET curve, FRR at evaluation.target_fa_per_hour); "
                "latency per 1-s window; synthetic-vs-real feature distance per keyword. The report "
                "folder (evaluation.json and the plots) is stored beside the tables.",
)
def evaluation(context: dg.AssetExecutionContext, settings: KwsSettings,
               clip_store: ClipStoreResource, quantized_model: ArtifactFolder,
               mfcc_table: pl.DataFrame, validated_set: pl.DataFrame) -> dg.Output[ArtifactFolder]:
    cfg = settings.config
    classifier = KwsClassifier.load(quantized_model.path)
    test = mfcc_table.filter((pl.col("split") == "test") & ~is_augmented())
    if test.is_empty():
        raise dg.Failure("evaluation needs test-split rows in mfcc_table")
    store = clip_store.store
    result = evaluate_artifact(
        classifier, cfg, test["mfcc"].to_numpy(), test["label"].to_list(),
        validated_set.filter(pl.col("split") == "test"),
        lambda uri: store.read(uri, target_sr=cfg.audio.sample_rate).samples,
        mfcc_table, progress=context.log.info)

    report = ArtifactFolder.staging(prefix="kws-evaluation-")
    for name, png in result.pictures.items():
        report.file(f"{name}.png").write_bytes(png)
    report.file(REPORT_FILE).write_text(json.dumps(result.as_dict(), indent=2))
    per_class = pl.DataFrame([{"label": label, **vars(m)}
                              for label, m in result.test.per_class.items()])
    point = result.stream.operating_point
    return dg.Output(report, metadata={
        **result.summary(),
        "per_class_test": dg.MetadataValue.md(md_table(per_class)),
        "confusion_matrix_test": dg.MetadataValue.md(
            png_markdown(result.pictures["confusion_test"], "test confusion matrix")),
        "det_curve": dg.MetadataValue.md(png_markdown(result.pictures["det_curve"], "DET curve")),
        "synthetic_vs_real": dg.MetadataValue.md(md_table(result.synthetic_real)),
        "notes": dg.MetadataValue.json(result.notes),
        "detect_command": dg.MetadataValue.text(
            f"kws detect --model <quantized_model folder> --threshold {point.threshold:.6g} long.wav"),
    })
