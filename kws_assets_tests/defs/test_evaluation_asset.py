"""The ``evaluation`` asset and the quantization gates, materialized on their own: the inputs
(a real int8 artifact of the tone task, its clips, the feature table) are written where the
IO manager and the asset expect them."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from kws_assets.core.evaluation.report import REPORT_FILE
from kws_assets.core.families.mfcc_dscnn import table_front_end
from kws_assets.core.features.mfcc import FeatureSpec, MfccExtractor, normalize
from kws_assets.core.ship import export
from kws_assets.core.ship.export import read_operating_point
from kws_assets.core.storage.artifact_store import ArtifactFolder, store_artifact
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.core.storage.object_store import LocalObjectStore
from kws_assets.definitions import build_definitions
from kws_assets.defs.assets.evaluate import evaluation_asset
from kws_assets.defs.checks import dscnn_checks
from kws_assets.lib.resources import ARTIFACTS
from kws_assets_tests.tone_detector import (
    LABELS,
    SR,
    labelled_clips,
    tone_artifact,
    tone_embedding_artifact,
    tone_micro_artifact,
)

pytestmark = pytest.mark.slow  # a model, two materializations and an evaluation: ~30-60 s

CONFIG = """
keywords: [low_tone, high_tone]
sources: []
evaluation: {negative_minutes: 0.5, positives_per_keyword: 6, threshold_steps: 25,
             held_out_voices: [en+michel], target_fa_per_hour: 60.0}
quant_gate: {max_accuracy_drop_points: 1.0, max_artifact_kb: 256.0}
storage: {root: data}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("evaluation_asset")
    config_file = root / "kws.yaml"
    config_file.write_text(CONFIG)
    defs = build_definitions(config_file)
    cfg = defs.resources["settings"].config
    artifact = tone_artifact()
    # The tone model stands for quantized_model's output, stored as that asset's IO manager does.
    artifacts = LocalObjectStore.at(cfg.storage_path(ARTIFACTS))
    export_dir = Path(
        store_artifact(artifacts, "quantized_model", ArtifactFolder(Path(artifact.folder)))
    )
    store_artifact(artifacts, "embedding_artifact", ArtifactFolder(tone_embedding_artifact()))
    store_artifact(artifacts, "micro_artifact", ArtifactFolder(tone_micro_artifact()))
    store = ClipStore.at(cfg.storage_path("clips"))
    clips, y = labelled_clips(8, seed=40)
    rows = []
    for i, (clip, label_index) in enumerate(zip(clips, y, strict=True)):
        label = LABELS[label_index]
        clip_id = f"clip{i:03d}"
        uri = store.put(store.key_for("synthetic", label, clip_id), clip, SR)
        rows.append(
            {
                "clip_id": clip_id,
                "uri": uri,
                "label": label,
                "source": "synthetic",
                "speaker": f"tts:voice{i % 4}",
                "split": "test",
            }
        )
    val_clips, val_y = labelled_clips(4, seed=41)  # the operating point is selected on these
    val_rows = []
    for i, (clip, label_index) in enumerate(zip(val_clips, val_y, strict=True)):
        label = LABELS[label_index]
        clip_id = f"val{i:03d}"
        uri = store.put(store.key_for("synthetic", label, clip_id), clip, SR)
        val_rows.append(
            {
                "clip_id": clip_id,
                "uri": uri,
                "label": label,
                "source": "synthetic",
                "speaker": "tts:en-us+f2",
                "split": "val",
            }
        )
    validated = pl.DataFrame(rows)
    validated_all = pl.concat([validated, pl.DataFrame(val_rows)])
    spec = FeatureSpec.model_validate_json((export_dir / export.FEATURES_FILE).read_text())
    raw = MfccExtractor(spec)(clips)
    mfcc = validated.select("clip_id", "label", "split", "speaker", "source").with_columns(
        pl.Series("mfcc", raw, dtype=table_front_end(spec).dtype)
    )
    tables = cfg.storage_path("tables")
    tables.mkdir(parents=True)
    validated_all.write_parquet(tables / "validated_set.parquet")
    mfcc.write_parquet(tables / "mfcc_table.parquet")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [
                dg.SourceAsset("mfcc_table"),
                dg.SourceAsset("validated_set"),
                dg.SourceAsset("quantized_model", io_manager_key="artifact_io_manager"),
                dg.SourceAsset("embedding_artifact", io_manager_key="artifact_io_manager"),
                dg.SourceAsset("micro_artifact", io_manager_key="artifact_io_manager"),
                evaluation_asset(),
            ],
            resources=defs.resources,
            instance=instance,
            raise_on_error=False,
        )
    return {
        "cfg": cfg,
        "result": result,
        "raw": raw,
        "y": y,
        "export_dir": export_dir,
        "spec": spec,
        "defs": defs,
    }


def test_evaluation_materializes_with_its_report_and_pictures(project) -> None:
    result = project["result"]
    assert result.success
    folder = project["cfg"].storage_path(ARTIFACTS, "evaluation")
    for name in ("confusion_test.png", "det_curve.png", REPORT_FILE):
        assert (folder / name).is_file(), name
    assert (folder / "det_curve.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((folder / REPORT_FILE).read_text())
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["test_accuracy"].value == report["summary"]["test_accuracy"]
    point = report["streaming"]["operating_point"]
    assert metadata["frr_at_target"].value == pytest.approx(point["frr"], abs=1e-4)
    # selected on the validation streams (meeting the target there, or flagged), reported on test
    selection = report["streaming"]["selection"]
    assert (
        selection["validation"]["fa_per_hour"] <= 60.0
        or not selection["meets_target_on_validation"]
    )
    assert point["threshold"] == pytest.approx(selection["detector"]["threshold"], abs=1e-4)
    # the target is met by the FA/h upper bound, or the selection says why not; both points carry
    # their intervals (30 s of negatives: even 0 false accepts bound FA/h by 443 at 95%)
    bounds = report["streaming"]["operating_point_bounds"]
    assert bounds["fa_per_hour_lower"] <= point["fa_per_hour"] <= bounds["fa_per_hour_upper"]
    assert bounds["frr_lower"] <= point["frr"] <= bounds["frr_upper"]
    assert bounds["keywords"] == 2 * 6 and bounds["level"] == 0.95
    assert not selection["meets_target_on_validation"] and "would be needed" in selection["reason"]
    assert selection["usable"] == (selection["validation"]["frr"] <= 0.5)
    assert metadata["fa_per_hour_upper_at_target"].value == bounds["fa_per_hour_upper"]
    assert point in report["streaming"]["det_curve"]
    assert report["streaming"]["negative_hours"] == pytest.approx(0.5 / 60, rel=1e-3)
    assert report["streaming"]["positives"] == 2 * 6
    assert report["summary"]["window_latency_ms"] > 0
    # every family, each with its own shipped operating point
    assert set(report["families"]) == {"mfcc", "speech_embedding", "micro_wake_word"}
    for family, body in report["families"].items():
        shipped = read_operating_point(folder / family / export.OPERATING_POINT_FILE)
        assert shipped.as_dict() == body["streaming"]["selection"]["detector"]
        assert shipped.smoothing_windows in (1, 3, 5) and shipped.refractory_s in (0.5, 1.0)
        assert body["summary"]["test_clips"] == len(project["y"])
    assert report["families"]["speech_embedding"]["streaming"]["positives"] == 2 * 6
    assert report["families"]["micro_wake_word"]["streaming"]["positives"] == 2 * 6
    assert (
        metadata["speech_embedding_frr_at_target"].value
        == (report["families"]["speech_embedding"]["summary"]["frr_at_target"])
    )
    assert (folder / "det_curve_speech_embedding.png").read_bytes()[:4] == b"\x89PNG"


def test_accuracy_comes_from_the_int8_models_outputs(project) -> None:
    classifier = export.KwsClassifier.load_mfcc(project["export_dir"])
    probs = classifier.classify_features(normalize(project["raw"], project["spec"]))
    expected = float((probs.argmax(axis=1) == project["y"]).mean())
    folder = project["cfg"].storage_path(ARTIFACTS, "evaluation")
    report = json.loads((folder / REPORT_FILE).read_text())
    assert report["test"]["accuracy"] == pytest.approx(expected)
    confusion = np.array(report["test"]["confusion"])
    assert confusion.sum() == len(project["y"]) and np.trace(confusion) == round(
        expected * len(project["y"])
    )


def _run_gates(project, metrics: dict, max_kb: float | None = None):
    cfg = project["cfg"]
    prepared = ArtifactFolder.staging()
    for path in project["export_dir"].iterdir():
        (prepared.path / path.name).write_bytes(path.read_bytes())
    (prepared.path / export.METRICS_FILE).write_text(json.dumps(metrics))

    @dg.asset(name="quantized_model", io_manager_key="artifact_io_manager")
    def artifact_already_written() -> ArtifactFolder:
        """The artifact folder prepared by the test stands for quantized_model's output."""
        return prepared

    resources = dict(project["defs"].resources)
    if max_kb is not None:
        path = Path(cfg.storage.root).parent / "gate.yaml"
        path.write_text(
            CONFIG.replace("max_artifact_kb: 256.0", f"max_artifact_kb: {max_kb}").replace(
                "root: data", f"root: {cfg.storage.root}"
            )
        )
        resources["settings"] = type(resources["settings"])(config_path=str(path))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [artifact_already_written, *dscnn_checks()],
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_quantization_gates_pass_and_fail_on_the_configured_thresholds(project) -> None:
    passing = _run_gates(project, {"float_test_accuracy": 0.90, "int8_test_accuracy": 0.895})
    assert passing["int8_accuracy_drop"].passed and passing["int8_artifact_size"].passed
    failing = _run_gates(
        project, {"float_test_accuracy": 0.90, "int8_test_accuracy": 0.87}, max_kb=1.0
    )
    assert not failing["int8_accuracy_drop"].passed
    assert failing["int8_accuracy_drop"].metadata["value"].value == pytest.approx(3.0)
    assert not failing["int8_artifact_size"].passed
