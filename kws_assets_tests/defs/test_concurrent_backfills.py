"""Two materializations over overlapping partitions at once, on one storage root and one
instance: every output afterwards is complete, valid and consistent, and both runs succeed."""

from __future__ import annotations

import shutil
import threading

import dagster as dg
import polars as pl
import pytest

from kws_assets.config import load_config
from kws_assets.core.families.mfcc_dscnn import write_artifact
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.lib.partitions import KEYWORDS, register_config_partitions
from kws_assets.settings import UNKNOWN_LABEL, AudioSettings, FeatureSettings
from kws_assets_tests.conftest import FIXTURES
from kws_assets_tests.pipeline_runs import (
    hidden_leftovers,
    staged_leftovers,
    start_graph_run,
    unreadable_outputs,
    visible_outputs,
    wait_for,
)

WRITERS = 3
WRITES_EACH = 25


def test_concurrent_artifact_writers_all_succeed_and_leave_one_whole_folder(tmp_path):
    """Two runs shipping at once both replace artifacts/quantized_model: no writer may fail."""
    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings()).with_stats(
        [0.0] * 10, [1.0] * 10
    )
    model = tmp_path / "model.int8.onnx"
    model.write_bytes(bytes(range(256)) * 8)
    artifact = tmp_path / "artifacts" / "quantized_model"
    errors: list[str] = []

    def writer(index: int) -> None:
        for i in range(WRITES_EACH):
            try:
                write_artifact(
                    artifact,
                    model,
                    ["_silence_", "_unknown_", "yes"],
                    spec,
                    {"writer": index, "write": i},
                )
            except Exception as exc:  # every failure is what this test reports
                errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in artifact.parent.iterdir()) == ["quantized_model"]
    assert {"model.int8.onnx", "labels.json", "feature_config.json", "metrics.json"} <= {
        p.name for p in artifact.iterdir()
    }


@pytest.mark.slow
def test_overlapping_runs_at_once_do_not_corrupt_each_other(tmp_path):
    config = tmp_path / "kws.yaml"
    shutil.copy(FIXTURES / "micro.yaml", config)
    cfg = load_config(config)
    root, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    # The partitions exist before the runs start, as they do when a user launches two backfills.
    instance = dg.DagsterInstance.from_config(str(home))
    register_config_partitions(instance, cfg)
    assert set(instance.get_dynamic_partitions(KEYWORDS.name)) == set(cfg.keywords)

    # Both runs materialize every keyword partition (in opposite orders) and everything after.
    orders = [",".join(cfg.keywords), ",".join(reversed(cfg.keywords))]
    logs = [tmp_path / f"run-{i}.log" for i in range(len(orders))]
    procs = [
        start_graph_run(config, home, log, env={"KWS_TEST_KEYWORD_ORDER": order})
        for order, log in zip(orders, logs, strict=True)
    ]
    for proc, log in zip(procs, logs, strict=True):
        wait_for(proc, log)

    assert unreadable_outputs(root) == []
    assert staged_leftovers(root) == [] and hidden_leftovers(root) == []

    validated = pl.read_parquet(root / "tables" / "validated_set.parquet")
    clip_files = {str(p) for p in visible_outputs(root) if p.suffix == ".wav"}
    assert validated.height > 0 and set(validated["uri"]) <= clip_files
    # The feature table covers exactly the validated clips and their augmented copies.
    featurized = set(validated["clip_id"])
    augmented_table = root / "tables" / "augmented_clips.parquet"
    if augmented_table.exists():
        augmented = pl.read_parquet(augmented_table)
        assert set(augmented["uri"]) <= clip_files
        featurized |= set(augmented["clip_id"])
    mfcc = pl.read_parquet(root / "tables" / "mfcc_table.parquet")
    assert mfcc["clip_id"].n_unique() == mfcc.height and set(mfcc["clip_id"]) == featurized
    for keyword in cfg.keywords:
        per_keyword = pl.read_parquet(root / "tables" / "synthetic_clips" / f"{keyword}.parquet")
        # a keyword's partition: its clips plus its phoneme-neighbour negatives (_unknown_)
        assert keyword in set(per_keyword["label"])
        assert set(per_keyword["label"]) <= {keyword, UNKNOWN_LABEL}
        assert set(per_keyword["uri"]) <= clip_files

    # Both runs recorded their materialization of every overlapping partition.
    for keyword in cfg.keywords:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("synthetic_clips"), asset_partitions=[keyword]
            ),
            limit=10,
        ).records
        assert len({r.run_id for r in records}) == len(orders), keyword
    instance.dispose()
