"""``make demo``: materialize the whole graph through a persistent Dagster instance, then summarize.

The graph is partitioned (per corpus batch, per keyword), so the demo registers the partitions
the config names and runs them in order, as a backfill would: ``ingest_batch`` per batch,
``keyword_clips`` per keyword, then ``kws_pipeline`` (see ``kws_assets.lib.in_process``).
The runs are recorded in ``$DAGSTER_HOME`` (SQLite), so ``make ui`` afterwards shows the
partitions, materializations, their metadata and the lineage.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import cast

import dagster as dg
import polars as pl

from kws_assets.core.dataset.data_card import engine_counts
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.definitions import build_definitions
from kws_assets.defs.assets.data_card import CARD_FILE
from kws_assets.defs.assets.evaluate import REPORT_FILE, TRANSFER_REPORT_FILE
from kws_assets.lib.in_process import failed_steps, materialize_graph
from kws_assets.lib.resources import settings_resource

FAMILY_ARTIFACTS = {"speech_embedding": "embedding_artifact", "mfcc": "quantized_model"}


def transfer_lines(report: ArtifactFolder | None, default_family: str) -> list[str]:
    """Accuracy of every family on speech it never trained on: real sources first, then the
    held-out engine, the synthetic test split last (in-distribution, it flatters)."""
    if report is None or not report.file(TRANSFER_REPORT_FILE).is_file():
        return []
    table = json.loads(report.file(TRANSFER_REPORT_FILE).read_text())["table"]
    out = [
        "accuracy on speech the models never trained on (all clips | keyword clips | "
        "always-_unknown_ would score):"
    ]
    for row in table:
        mark = "*" if row["family"] == default_family else " "
        keyword = (
            f"{row['keyword_accuracy']:.3f} of {row['keyword_clips']}"
            if row["keyword_clips"]
            else "no keyword clips"
        )
        out.append(
            f" {mark} {row['family']:<17} {row['set']:<42} {row['accuracy']:.3f} of "
            f"{row['clips']:<5} | {keyword:<16} | {row['always_unknown']:.3f}"
        )
    out.append("   (* = model.family, the default; the synthetic test split is in-distribution)")
    return out


def summarize(defs: dg.Definitions, instance: dg.DagsterInstance) -> str:
    cfg = settings_resource(defs).config
    # load_asset_value is typed object: the IO managers return these types
    validated = cast("pl.DataFrame", defs.load_asset_value("validated_set", instance=instance))
    quarantined = cast(
        "pl.DataFrame", defs.load_asset_value("quarantined_clips", instance=instance)
    )
    default = _artifact(defs, instance, FAMILY_ARTIFACTS[cfg.model.family]).path
    artifact = _artifact(defs, instance, "quantized_model").path
    metrics = json.loads((artifact / "metrics.json").read_text())
    counts = (
        validated.group_by("label", "source")
        .len()
        .pivot(on="source", index="label", values="len")
        .fill_null(0)
        .sort("label")
    )
    reasons = (
        quarantined.group_by("reason").len().sort("len", descending=True)
        if quarantined.height
        else None
    )
    out = transfer_lines(_stored(defs, instance, "transfer_evaluation"), cfg.model.family)
    out.append(
        f"\nthe model ({cfg.model.family}): .venv/bin/kws classify --model {default} some.wav"
    )
    device = _stored(defs, instance, "device_model")
    if device is not None:
        manifest = json.loads(device.file("manifest.json").read_text())
        out.append(
            f"the small-device model (int8 TFLite, {manifest['sizes']['int8_weight_bytes']} B of "
            f"int8 weights, tensor arena {manifest['sizes']['tensor_arena_bytes']} B; C array, "
            f"manifest.json, MODEL_CARD.md): {device.path}"
        )
    out.append("\nclips per keyword (rows) and source (columns), after the quality gate:")
    with pl.Config(tbl_rows=100, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        out.append(str(counts))
    split_sizes = dict(validated.group_by("split").len().iter_rows())
    out.append(f"splits (speaker-disjoint): {split_sizes}")
    reason_text = (
        ", ".join(f"{r}={n}" for r, n in reasons.iter_rows()) if reasons is not None else "-"
    )
    out.append(f"quarantined: {quarantined.height} ({reason_text})")
    out.append(f"clips by engine: {engine_counts(validated)}")
    out.append(
        f"DS-CNN (mfcc) int8 artifact: {metrics['int8_size_kb']} KB (float "
        f"{metrics['float_size_kb']} KB) at {artifact}; synthetic test split (in-distribution) "
        f"{metrics['int8_test_accuracy']} on {metrics['test_rows']} clips"
    )
    out += evaluation_lines(_stored(defs, instance, "evaluation"), artifact)
    card = _stored(defs, instance, "data_card")
    if card is not None:
        out.append(f"data card: {card.file(CARD_FILE)} (also on the data_card asset in the UI)")
    return "\n".join(out)


def _stored(
    defs: dg.Definitions, instance: dg.DagsterInstance, asset: str
) -> ArtifactFolder | None:
    """An artifact asset's stored folder, or None when it has not been materialized."""
    if instance.get_latest_materialization_event(dg.AssetKey(asset)) is None:
        return None
    return _artifact(defs, instance, asset)


def _artifact(defs: dg.Definitions, instance: dg.DagsterInstance, asset: str) -> ArtifactFolder:
    """An artifact asset's stored folder (the artifact IO manager loads an ArtifactFolder)."""
    return cast("ArtifactFolder", defs.load_asset_value(asset, instance=instance))


def evaluation_lines(report: ArtifactFolder | None, artifact: Path) -> list[str]:
    """The evaluation asset's headline numbers (nothing if it has not run)."""
    if report is None or not report.file(REPORT_FILE).is_file():
        return []
    report_path = report.file(REPORT_FILE)
    s = json.loads(report_path.read_text())["summary"]
    return [
        f"DS-CNN evaluation (int8): {s['unseen_voice_accuracy']} on {s['unseen_voice_clips']} "
        "clips "
        f"of held-out espeak-ng voices; synthetic test split (in-distribution) "
        f"{s['test_accuracy']} on {s['test_clips']} clips",
        f"  streaming: FRR {s['frr_at_target']:.1%} at {s['fa_per_hour_at_target']} FA/h "
        f"(target {s['target_fa_per_hour']} FA/h, {s['negative_hours']:.2f} h of negatives, "
        f"{s['positives']} keywords, threshold {s['threshold_at_target']}); "
        f"{s['window_latency_ms']} ms per 1-s window"
        + (
            ""
            if s["fa_per_hour_at_target"] <= s["target_fa_per_hour"]
            else f"\n  target MISSED: even the highest threshold swept keeps "
            f"{s['fa_per_hour_at_target']} FA/h"
        ),
        f"  report and plots: {report_path.parent}",
        f"spot keywords: .venv/bin/kws detect --model {artifact} "
        f"--threshold {s['threshold_at_target']} long.wav",
    ]


INSTANCE_YAML = "telemetry:\n  enabled: false\n"
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``./.dagster_home``) with a dagster.yaml: SQLite, no telemetry."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists():
        instance_yaml.write_text(INSTANCE_YAML)
    return home


def quiet_dagster_console() -> None:
    """Dagster's own log lines stay in the instance (the UI shows them); the terminal gets the
    demo's progress and summary. Warnings of the libraries underneath are silenced the same way."""
    logging.getLogger("dagster").setLevel(logging.ERROR)
    logging.getLogger().setLevel(
        logging.ERROR
    )  # onnxruntime's quantizer warns per LayerNorm weight
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def main() -> int:
    quiet_dagster_console()
    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    defs = build_definitions()
    settings = settings_resource(defs)
    print(
        f"kws_assets demo: config {settings.config_path or '(embedded default)'}, "
        f"DAGSTER_HOME {os.environ['DAGSTER_HOME']}",
        flush=True,
    )
    started = time.monotonic()
    graph = materialize_graph(
        defs,
        instance,
        run_config=RUN_CONFIG,
        log=lambda step: print(f"[{time.monotonic() - started:6.1f} s] {step}", flush=True),
    )
    elapsed = time.monotonic() - started
    if graph.failed is not None:
        job_name, partition, result = graph.failed
        where = f"{job_name} [{partition}]" if partition else job_name
        print(f"run {result.run_id} ({where}) failed after {elapsed:.1f} s:", file=sys.stderr)
        for line in failed_steps(result):
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"\nmaterialized the graph in {elapsed:.1f} s ({len(graph.results)} runs)")
    print(summarize(defs, instance))
    print("\nsee it in the UI: make ui  (http://127.0.0.1:3000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
