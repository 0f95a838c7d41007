"""A corpus with more than twenty kinds of broken file, mixed with good and unusual-but-good
recordings, goes through the real graph (ingest_batch, keyword_clips, curate_dataset with its
blocking checks, and the data card) on a temporary Dagster instance.

Proves: no run fails; every broken file is named in ``quarantined_clips`` with an expected reason
and stage; every good recording yields validated clips and none of its clips is quarantined;
unusual formats are kept with their original format recorded; re-ingesting changes nothing and
reads nothing; stricter thresholds quarantine clips and relaxing them brings the same clips back;
the data card states the tables' real counts.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from kws_assets.core.text_safety import escape_markdown
from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import CURATE_JOB, INGEST_JOB, KEYWORD_JOB
from kws_assets.lib.in_process import failed_steps
from kws_assets.lib.partitions import CORPUS_BATCHES, KEYWORDS, register_config_partitions
from kws_assets_tests.corpus_files import build_bad_input_corpus

pytestmark = pytest.mark.slow

KEYWORDS_UNDER_TEST = ["yes", "no"]
MIN_BROKEN_KINDS = 15
CONFIG = """\
keywords: [yes, no]
sources:
  - {{kind: manifest, name: field, root: {root}, manifest: manifest.csv, license: CC-BY-4.0}}
tts:
  voices: [en-us+m1, en-us+f2, en+m2, en-gb-scotland+m4, en-029+m6, en-us-nyc+m7]
  rates: [150]
  pitches: [50]
  sampled_speakers: 0
  engines: []
negatives: {{neighbours_per_keyword: 0, other_words: 0, speech_windows: 40}}
dataset_guard: {{min_unknown_share: 0.0, min_test_clips_per_label: 0}}
evaluation: {{held_out_engine: ""}}
noise: {{silence_clips: 8, noisy_copies_per_clip: 0}}
splits: {{val_percent: 25.0, test_percent: 25.0}}
quality: {{min_rms_dbfs: {min_rms_dbfs}}}
ingest: {{max_file_mb: 1}}
storage: {{root: {storage}}}
"""
DEFAULT_MIN_RMS_DBFS = -55.0
STRICT_MIN_RMS_DBFS = -24.0


def write_config(path, corpus, storage, min_rms_dbfs: float = DEFAULT_MIN_RMS_DBFS):
    path.write_text(CONFIG.format(root=corpus.root, storage=storage, min_rms_dbfs=min_rms_dbfs))
    return path


def run(defs: dg.Definitions, instance: dg.DagsterInstance, job: str, partition: str | None = None):
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=False
    )
    assert result.success, f"{job} [{partition}] failed: {failed_steps(result)}"
    return result


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad_input")
    corpus = build_bad_input_corpus(base)
    config_file = write_config(base / "kws.yaml", corpus, base / "data")
    home = base / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(config_file)
        partitions = register_config_partitions(instance, defs.resources["settings"].config)
        assert partitions[KEYWORDS.name] == KEYWORDS_UNDER_TEST
        (batch,) = partitions[CORPUS_BATCHES.name]
        runs = {"ingest": run(defs, instance, INGEST_JOB, batch)}
        for keyword in KEYWORDS_UNDER_TEST:
            runs[keyword] = run(defs, instance, KEYWORD_JOB, keyword)
        runs["curate"] = run(defs, instance, CURATE_JOB)
        load = lambda key, **kw: defs.load_asset_value(key, instance=instance, **kw)  # noqa: E731 - a one-line local helper
        yield {
            "base": base,
            "corpus": corpus,
            "config_file": config_file,
            "defs": defs,
            "instance": instance,
            "runs": runs,
            "batch": batch,
            "raw": load("raw_corpus", partition_key=batch),
            "validated": load("validated_set"),
            "quarantined": load("quarantined_clips"),
        }


def test_the_corpus_has_enough_distinct_kinds_of_broken_file(graph):
    kinds = {e.kind for e in graph["corpus"].broken}
    assert len(kinds) >= MIN_BROKEN_KINDS, sorted(kinds)


def test_no_run_failed_and_blocking_checks_passed(graph):
    evaluations = graph["runs"]["curate"].get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations if e.check_name != "quarantine_rate")
    materialized = {
        e.asset_key.to_user_string()
        for e in graph["runs"]["curate"].get_asset_materialization_events()
    }
    assert materialized == {"validated_set", "quarantined_clips", "data_card"}


def test_every_broken_file_is_quarantined_by_name_with_a_reason(graph):
    quarantined = graph["quarantined"]
    named = quarantined.with_columns(pl.coalesce("original_path", "uri").alias("name"))
    missing = []
    for expected in graph["corpus"].broken:
        rows = named.filter(
            (pl.col("name") == expected.name) & pl.col("reason").is_in(list(expected.reasons))
        )
        if rows.is_empty():
            missing.append((expected.kind, expected.name, sorted(expected.reasons)))
            continue
        row = rows.row(0, named=True)
        assert row["detail"], expected.kind
        assert row["stage"] in {"ingest", "alignment"}, (expected.kind, row["stage"])
    assert not missing, (
        "broken files not quarantined as expected: "
        f"{missing}\n{named.select('name', 'stage', 'reason')}"
    )
    stages = dict(
        zip(
            *quarantined.group_by("stage").len().sort("stage").to_dict(as_series=False).values(),
            strict=True,
        )
    )
    assert stages.get("ingest", 0) >= MIN_BROKEN_KINDS and stages.get("alignment", 0) >= 1


def test_every_good_recording_is_kept_and_none_of_its_clips_is_quarantined(graph):
    raw, validated, quarantined = graph["raw"], graph["validated"], graph["quarantined"]
    good_ids = {}
    for expected in graph["corpus"].good:
        usable = raw.filter(
            (pl.col("original_path") == expected.name) & pl.col("reject_reason").is_null()
        )
        assert usable.height == 1, expected.kind
        good_ids[usable["utterance_id"][0]] = expected
    kept = validated.filter(pl.col("origin_id").is_in(list(good_ids)))
    for utterance_id, expected in good_ids.items():
        clips = kept.filter(pl.col("origin_id") == utterance_id)
        keyword = next(w for w in expected.transcript.split() if w in KEYWORDS_UNDER_TEST)
        assert keyword in clips["label"].to_list(), (expected.kind, clips.select("label", "word"))
    lost = quarantined.filter(pl.col("origin_id").is_in(list(good_ids)))
    assert lost.is_empty(), lost.select("original_path", "stage", "reason", "detail")


def test_unusual_formats_are_kept_with_the_original_format_recorded(graph):
    validated = graph["validated"]
    formats = {
        path: (rate, bits)
        for path, rate, bits in validated.select(
            "original_path", "original_sample_rate", "original_bit_depth"
        )
        .unique()
        .iter_rows()
    }
    assert formats["odd/stereo_44k.wav"] == (44100, 16)
    assert formats["odd/rate_11025.wav"] == (11025, 16)
    assert formats["odd/pcm24.wav"] == (16000, 24)
    assert formats["odd/float32.wav"] == (16000, 32)
    raw = graph["raw"].filter(pl.col("original_path") == "odd/stereo_44k.wav").row(0, named=True)
    assert raw["channels"] == 2
    assert set(validated["sample_rate"]) == {16000} and set(validated["num_samples"]) == {16000}
    assert set(validated.filter(pl.col("source") == "field")["license"]) == {"CC-BY-4.0"}


def test_reingesting_the_unchanged_corpus_reads_nothing_and_keeps_the_data_version(graph):
    def latest(run_result):
        (event,) = [
            e
            for e in run_result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "raw_corpus"
        ]
        materialization = event.step_materialization_data.materialization
        return materialization.tags["dagster/data_version"], materialization.metadata

    first_version, first_metadata = latest(graph["runs"]["ingest"])
    again = run(graph["defs"], graph["instance"], INGEST_JOB, graph["batch"])
    version, metadata = latest(again)
    assert version == first_version
    assert first_metadata["files_read"].value > 0
    assert metadata["files_read"].value == 0
    assert metadata["files_from_cache"].value == first_metadata["files_read"].value


def test_stricter_thresholds_quarantine_clips_and_relaxing_brings_them_back(graph):
    base, corpus, instance = graph["base"], graph["corpus"], graph["instance"]
    validated = graph["validated"]
    strict_file = write_config(base / "strict.yaml", corpus, base / "data", STRICT_MIN_RMS_DBFS)
    strict_defs = build_definitions(strict_file)
    run(strict_defs, instance, CURATE_JOB)
    strict_validated = strict_defs.load_asset_value("validated_set", instance=instance)
    strict_quarantined = strict_defs.load_asset_value("quarantined_clips", instance=instance)
    moved = set(validated["clip_id"]) - set(strict_validated["clip_id"])
    assert moved, "the strict threshold should quarantine some quiet clips"
    moved_rows = strict_quarantined.filter(pl.col("clip_id").is_in(list(moved)))
    assert moved_rows.height == len(moved) and set(moved_rows["reason"]) <= {"too_quiet", "outlier"}
    assert (
        moved_rows.filter(pl.col("reason") == "too_quiet")["rms_dbfs"] < STRICT_MIN_RMS_DBFS
    ).all()

    run(graph["defs"], instance, CURATE_JOB)  # the original thresholds again
    back = graph["defs"].load_asset_value("validated_set", instance=instance)
    assert set(back["clip_id"]) == set(validated["clip_id"])
    splits = dict(zip(validated["clip_id"], validated["split"], strict=True))
    assert all(splits[c] == s for c, s in zip(back["clip_id"], back["split"], strict=True))


def test_data_card_states_the_real_counts(graph):
    instance, defs = graph["instance"], graph["defs"]
    validated = defs.load_asset_value("validated_set", instance=instance)
    quarantined = defs.load_asset_value("quarantined_clips", instance=instance)
    event = instance.get_latest_materialization_event(dg.AssetKey("data_card"))
    metadata = event.asset_materialization.metadata
    card = metadata["card"].value
    assert metadata["clips"].value == validated.height
    assert metadata["quarantined"].value == quarantined.height
    assert f"**{validated.height} clips**" in card
    assert f"**{quarantined.height} quarantined**" in card
    # corpus text reaches the card escaped (core/text_safety.py): compare with the escaped form
    assert escape_markdown("path_outside_root") in card and escape_markdown("CC-BY-4.0") in card
    assert "## Synthetic vs recorded speech" in card  # measured from the clips' features
    corpus_event = instance.get_latest_materialization_event(dg.AssetKey("raw_corpus"))
    corpus_version = corpus_event.asset_materialization.tags["dagster/data_version"]
    assert f"| data: raw\\_corpus | {corpus_version} |" in card
    stored = Path(metadata["path"].value) / "DATA_CARD.md"  # the data_card artifact folder
    assert stored.read_text(encoding="utf-8") == card
