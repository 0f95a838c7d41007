"""The code location loads, and the layering rule holds: the core never imports Dagster."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import PIPELINE_JOB

PACKAGE = Path(__file__).resolve().parents[2] / "kws_assets"
GROUPS = {
    "raw_corpus": "ingest",
    "synthetic_clips": "keyword_clips",
    "aligned_keywords": "keyword_clips",
    "validated_set": "curate",
    "quarantined_clips": "curate",
    "mfcc_table": "features",
    "kws_model": "train",
    "quantized_model": "ship",
    "augmented_clips": "features",
    "negative_material": "features",
    "embedding_negatives": "features",
    "embedding_model": "train",
    "evaluation": "ship",
}


def test_core_never_imports_dagster():
    offenders = []
    for path in (PACKAGE / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "dagster" or n.startswith(("dagster.", "dagster_")) for n in names):
                offenders.append(str(path))
    assert not offenders


def test_assets_groups_lineage_and_job(tiny_config_file):
    defs = build_definitions(tiny_config_file)
    graph = defs.resolve_asset_graph()
    for key, group in GROUPS.items():
        node = graph.get(dg.AssetKey(key))
        assert node.group_name == group, key
        assert node.description, key
    parents = {
        k: {p.to_user_string() for p in graph.get(dg.AssetKey(k)).parent_keys} for k in GROUPS
    }
    assert parents["aligned_keywords"] >= {"raw_corpus"}
    assert parents["validated_set"] >= {"synthetic_clips", "aligned_keywords"}
    assert parents["mfcc_table"] >= {"validated_set"}
    assert parents["kws_model"] >= {"mfcc_table"}
    assert parents["negative_material"] == {"validated_set"}
    assert parents["embedding_negatives"] == {"negative_material", "validated_set"}
    assert parents["embedding_model"] == {"embedding_table", "embedding_negatives"}
    assert parents["quantized_model"] >= {"kws_model"}
    assert defs.resolve_job_def(PIPELINE_JOB) is not None


DSCNN_ASSETS = {"kws_model", "quantized_model", "student_model", "device_model", "mfcc_release"}
DSCNN_CHECKS = {"int8_accuracy_drop", "int8_artifact_size"}


def test_the_configs_families_decide_the_models_artifacts_and_evaluations(tiny_config_file):
    every = build_definitions(tiny_config_file).resolve_asset_graph()  # all three families
    default = build_definitions(PACKAGE.parent / "kws.yaml").resolve_asset_graph()
    keys = {k.to_user_string() for k in every.get_all_asset_keys()}
    kept = {k.to_user_string() for k in default.get_all_asset_keys()}
    assert keys >= DSCNN_ASSETS and keys - kept == DSCNN_ASSETS
    assert {"mfcc_table", "micro_model", "micro_wake_word_release"} <= kept  # tables stay
    assert {k.name for k in every.asset_check_keys} >= DSCNN_CHECKS
    assert not DSCNN_CHECKS & {k.name for k in default.asset_check_keys}

    def inputs(graph, key: str) -> set[str]:
        return {p.to_user_string() for p in graph.get(dg.AssetKey(key)).parent_keys}

    assert inputs(every, "transfer_evaluation") >= {"quantized_model", "student_model"}
    assert inputs(default, "transfer_evaluation") == {
        "embedding_artifact",
        "micro_artifact",
        "evaluation",
        "validated_set",
    }
    assert inputs(default, "evaluation") >= {"embedding_artifact", "micro_artifact"}
    assert "quantized_model" not in inputs(default, "evaluation")


def test_dg_check_defs_passes(tiny_config_file, tmp_path):
    root = Path(__file__).resolve().parents[2]
    home = tmp_path / "dagster_home"
    home.mkdir()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "check", "defs"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KWS_CONFIG": str(tiny_config_file), "DAGSTER_HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr
