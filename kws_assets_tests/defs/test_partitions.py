"""Partitioning of the graph: keyword and corpus-batch partition sets, backfill policies, fan-in,
jobs cut where the partitioning changes, and single partitions materialized on their own."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from kws_assets.config import landing_zone, load_config
from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import CURATE_JOB, INGEST_JOB, KEYWORD_JOB, PIPELINE_JOB, RETRAIN_JOB
from kws_assets.lib.in_process import failed_steps
from kws_assets.lib.partitions import CORPUS_BATCHES, KEYWORDS, register_config_partitions
from kws_assets.settings import UNKNOWN_LABEL
from kws_assets_tests.defs.landing_batches import write_landing_batch

PER_KEYWORD = ("synthetic_clips", "aligned_keywords")
PER_BATCH = ("raw_corpus", "unknown_clips")
FAN_IN = (
    "validated_set",
    "quarantined_clips",
    "mfcc_table",
    "embedding_model",
    "embedding_artifact",
)
EAGER = ("aligned_keywords", "unknown_clips", "validated_set", "quarantined_clips")

# Two voices, one rate, one pitch, one noisy copy, no sampled speakers: 4 keyword clips each.
CONFIG = """
keywords: [yes, no, up]
sources:
  - {kind: demo_tts, name: demo, voices: [en-us+m2, en-us+f1], sentences_per_keyword: 1}
tts: {voices: [en-us+m1, en-us+f2], rates: [150], pitches: [50], sampled_speakers: 0, engines: []}
dataset_guard: {min_unknown_share: 0.0, min_test_clips_per_label: 0}
negatives: {speech_windows: 40}  # the value these tests were written for (the demo uses 120)
noise: {silence_clips: 8, noisy_copies_per_clip: 1}
storage: {root: data}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("partitions")
    config_file = root / "kws.yaml"
    config_file.write_text(CONFIG)
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        yield {
            "defs": build_definitions(config_file),
            "instance": instance,
            "cfg": load_config(config_file),
            "root": root,
        }


def _node(defs, key: str):
    return defs.resolve_asset_graph().get(dg.AssetKey(key))


def test_partition_sets_and_backfill_policies(setup):
    defs = setup["defs"]
    for key in PER_KEYWORD:
        assert _node(defs, key).partitions_def == KEYWORDS, key
    for key in PER_BATCH:
        assert _node(defs, key).partitions_def == CORPUS_BATCHES, key
    for key in (*PER_KEYWORD, *PER_BATCH):
        policy = _node(defs, key).backfill_policy
        assert policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=1), key
    for key in FAN_IN:
        assert _node(defs, key).partitions_def is None, key


def test_fan_in_reads_every_partition(setup):
    graph = setup["defs"].resolve_asset_graph()
    edges = [
        ("raw_corpus", "aligned_keywords"),
        ("synthetic_clips", "validated_set"),
        ("aligned_keywords", "validated_set"),
        ("unknown_clips", "validated_set"),
    ]
    for parent, child in edges:
        mapping = graph.get_partition_mapping(dg.AssetKey(child), dg.AssetKey(parent))
        assert isinstance(mapping, dg.AllPartitionMapping), (parent, child)
    # a batch's unknown clips come from that batch only
    same = graph.get_partition_mapping(dg.AssetKey("unknown_clips"), dg.AssetKey("raw_corpus"))
    assert isinstance(same, dg.IdentityPartitionMapping)


def test_automation_conditions_where_they_fit(setup):
    defs = setup["defs"]
    for key in EAGER:
        assert _node(defs, key).automation_condition is not None, key
    for key in ("raw_corpus", "synthetic_clips", "mfcc_table", "embedding_model", "micro_artifact"):
        assert _node(defs, key).automation_condition is None, key  # sensors / jobs own these


def test_jobs_cut_the_graph_where_partitioning_changes(setup):
    defs = setup["defs"]
    selected = {
        name: {
            k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.selected_asset_keys
        }
        for name in (INGEST_JOB, KEYWORD_JOB, CURATE_JOB, RETRAIN_JOB, PIPELINE_JOB)
    }
    graph = defs.resolve_asset_graph()
    everything = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert selected[INGEST_JOB] == set(PER_BATCH)
    assert selected[KEYWORD_JOB] == set(PER_KEYWORD)
    # every asset is in a job; the unpartitioned pipeline is exactly curate + retrain
    assert selected[INGEST_JOB] | selected[KEYWORD_JOB] | selected[PIPELINE_JOB] == everything
    assert not selected[PIPELINE_JOB] & {*PER_BATCH, *PER_KEYWORD}
    assert selected[CURATE_JOB] | selected[RETRAIN_JOB] == selected[PIPELINE_JOB]
    assert {"validated_set", "quarantined_clips"} <= selected[CURATE_JOB]
    assert "validated_set" not in selected[RETRAIN_JOB]  # retraining never re-curates
    # ...and retrains everything that depends on the features (nothing downstream left stale)
    downstream = dg.AssetSelection.assets("mfcc_table").downstream().resolve(graph)
    assert {k.to_user_string() for k in downstream} <= selected[RETRAIN_JOB]
    assert defs.resolve_job_def(INGEST_JOB).partitions_def == CORPUS_BATCHES
    assert defs.resolve_job_def(KEYWORD_JOB).partitions_def == KEYWORDS
    (schedule,) = defs.schedules
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == PIPELINE_JOB


def test_register_config_partitions_is_idempotent(setup, tmp_path):
    instance = setup["instance"]
    first = register_config_partitions(instance, setup["cfg"])
    assert first == {KEYWORDS.name: ["yes", "no", "up"], CORPUS_BATCHES.name: ["source-demo"]}
    assert register_config_partitions(instance, setup["cfg"]) == first
    assert instance.get_dynamic_partitions(KEYWORDS.name) == ["yes", "no", "up"]


def test_one_keyword_partition_materializes_alone(setup):
    defs, instance, cfg = setup["defs"], setup["instance"], setup["cfg"]
    register_config_partitions(instance, cfg)
    result = defs.resolve_job_def(KEYWORD_JOB).execute_in_process(
        instance=instance, partition_key="no", raise_on_error=False
    )
    assert result.success, failed_steps(result)
    assert {
        (e.asset_key.to_user_string(), e.partition)
        for e in result.get_asset_materialization_events()
    } == {("synthetic_clips", "no"), ("aligned_keywords", "no")}
    clips = defs.load_asset_value("synthetic_clips", partition_key="no", instance=instance)
    grid = len(cfg.tts.voices) * len(cfg.tts.rates) * len(cfg.tts.pitches)
    assert clips.filter(pl.col("label") == "no").height == grid * (
        1 + cfg.noise.noisy_copies_per_clip
    )
    assert not set(clips["label"]) & {"yes", "up"}  # other keywords are their own partitions
    materialized = instance.get_materialized_partitions(dg.AssetKey("synthetic_clips"))
    assert materialized == {"no"}


def _failure_descriptions(result: dg.ExecuteInProcessResult) -> list[str]:
    """The descriptions of the ``dg.Failure``s raised by the run's failed steps."""
    return [
        e.step_failure_data.user_failure_data.description
        for e in result.all_events
        if e.is_step_failure and e.step_failure_data.user_failure_data
    ]


def test_fan_in_names_the_keyword_partitions_it_lacks(setup):
    defs, instance, cfg = setup["defs"], setup["instance"], setup["cfg"]
    register_config_partitions(instance, cfg)
    if not instance.get_latest_materialization_event(dg.AssetKey("synthetic_clips")):
        defs.resolve_job_def(KEYWORD_JOB).execute_in_process(instance=instance, partition_key="no")
    # only "no" is materialized: the dataset cannot be built, and the error says what to do
    result = defs.resolve_job_def(CURATE_JOB).execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    (description,) = _failure_descriptions(result)
    assert "synthetic_clips: keyword partitions ['yes', 'up'] are not materialized" in description


def test_unconfigured_keyword_partition_fails_clearly(setup):
    defs, instance = setup["defs"], setup["instance"]
    instance.add_dynamic_partitions(KEYWORDS.name, ["stop"])
    try:
        result = defs.resolve_job_def(KEYWORD_JOB).execute_in_process(
            instance=instance, partition_key="stop", raise_on_error=False
        )
    finally:
        instance.delete_dynamic_partition(KEYWORDS.name, "stop")
    assert not result.success
    failures = _failure_descriptions(result)
    assert len(failures) == 2 and all("'stop' is not in the config" in f for f in failures)


def test_a_landed_batch_is_ingested_on_its_own(setup):
    defs, instance, cfg = setup["defs"], setup["instance"], setup["cfg"]
    write_landing_batch(
        Path(landing_zone(cfg).root) / "b1",
        ["please say yes again", "the river is green"],
        missing=["audio/not-there.wav"],
    )
    partitions = register_config_partitions(instance, cfg)
    assert partitions[CORPUS_BATCHES.name] == ["source-demo", "landing-b1"]
    result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
        instance=instance, partition_key="landing-b1", raise_on_error=False
    )
    assert result.success, failed_steps(result)
    corpus = defs.load_asset_value("raw_corpus", partition_key="landing-b1", instance=instance)
    usable = corpus.filter(pl.col("reject_reason").is_null())
    assert usable.height == 2 and set(usable["source"]) == {"landing-b1"}
    assert set(usable["speaker"]) == {"landing-b1:reader1"}
    rejected = corpus.filter(pl.col("reject_reason").is_not_null())
    assert rejected["original_path"].to_list() == ["audio/not-there.wav"]
    unknown = defs.load_asset_value("unknown_clips", partition_key="landing-b1", instance=instance)
    candidates = unknown.filter(pl.col("reject_reason").is_null())
    assert set(candidates["label"]) == {UNKNOWN_LABEL}
    assert candidates.height == 2 * cfg.alignment.unknown_per_utterance
    assert not set(candidates["word"]) & set(cfg.keywords)
    # the batch's dead letter (the missing file) rides along for the quarantine table
    assert unknown.filter(pl.col("reject_reason").is_not_null()).height == 1
    # the other batch was not touched
    latest = instance.get_latest_materialization_event(dg.AssetKey("raw_corpus"))
    assert latest.asset_materialization.partition == "landing-b1"
