"""One end-to-end materialization of the whole graph on the tiny config, through a real
(temporary, persistent) Dagster instance, asserting properties of what it produced."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import polars as pl
import pytest

from kws_assets.config import load_config
from kws_assets.core import tts
from kws_assets.core.audio import cut_centered, resample, write_wav
from kws_assets.core.export import KwsClassifier
from kws_assets.defs import PIPELINE_JOB, build_definitions
from kws_assets.defs.assets.ship import ARTIFACT_DIR

pytestmark = pytest.mark.slow

ALL_ASSETS = {"raw_corpus", "synthetic_clips", "aligned_keywords", "validated_set",
              "quarantined_clips", "mfcc_table", "kws_model", "quantized_model"}
# Voices that the tiny config uses neither for the corpus nor for the synthetic grid.
HELD_OUT_VOICES = ["en-us+f3", "en+m7", "en-gb-x-gbcwmd+f4"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from kws_assets_tests.conftest import FIXTURES

    root = tmp_path_factory.mktemp("e2e")
    config_file = root / "kws.yaml"
    config_file.write_text((FIXTURES / "tiny.yaml").read_text())
    home = root / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(config_file)
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance,
                                                                       raise_on_error=False)
        yield {"defs": defs, "instance": instance, "result": result,
               "cfg": load_config(config_file), "root": root}


def _load(pipeline, key: str):
    return pipeline["defs"].load_asset_value(key, instance=pipeline["instance"])


def test_run_succeeds_and_materializes_every_asset(pipeline):
    result = pipeline["result"]
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == ALL_ASSETS
    records = pipeline["instance"].fetch_materializations(dg.AssetKey("quantized_model"), limit=1)
    assert records.records, "the persistent instance recorded the artifact's materialization"


def test_blocking_checks_ran_and_passed(pipeline):
    evaluations = pipeline["result"].get_asset_check_evaluations()
    by_name = {e.check_name: e for e in evaluations}
    for name in ("validated_set_schema", "validated_set_speaker_disjoint",
                 "validated_set_label_coverage", "mfcc_table_schema"):
        assert by_name[name].passed, name


def test_clip_counts_per_label(pipeline):
    cfg = pipeline["cfg"]
    synthetic = _load(pipeline, "synthetic_clips")
    grid = len(cfg.tts.voices) * len(cfg.tts.rates) * len(cfg.tts.pitches)
    expected_per_kw = grid * (1 + cfg.noise.noisy_copies_per_clip)
    assert dict(synthetic.group_by("label").len().iter_rows()) == {
        k: expected_per_kw for k in cfg.keywords}

    aligned = _load(pipeline, "aligned_keywords")
    corpus = _load(pipeline, "raw_corpus")
    per_kw_utterances = len(cfg.sources[0].voices) * cfg.sources[0].sentences_per_keyword
    assert corpus.height == per_kw_utterances * len(cfg.keywords)
    aligned_counts = dict(aligned.group_by("label").len().iter_rows())
    for keyword in cfg.keywords:  # the aligner finds most keyword occurrences in the corpus
        assert aligned_counts.get(keyword, 0) >= 0.75 * per_kw_utterances, aligned_counts
    assert aligned_counts.get("_unknown_", 0) >= 0.75 * corpus.height

    validated = _load(pipeline, "validated_set")
    quarantined = _load(pipeline, "quarantined_clips")
    assert set(validated["label"].unique()) == set(cfg.labels)
    assert validated.filter(pl.col("label") == "_silence_").height + quarantined.filter(
        pl.col("label") == "_silence_").height == cfg.noise.silence_clips
    # Nothing lost: every candidate is either validated or quarantined, never both.
    assert validated.height + quarantined.height == synthetic.height + aligned.height + cfg.noise.silence_clips
    assert not set(validated["clip_id"]) & set(quarantined["clip_id"])


def test_splits_are_speaker_disjoint(pipeline):
    validated = _load(pipeline, "validated_set")
    splits_per_speaker = validated.group_by("speaker").agg(pl.col("split").n_unique())
    assert splits_per_speaker["split"].max() == 1
    assert set(validated["split"].unique()) == {"train", "val", "test"}


def test_mfcc_shape_and_finiteness(pipeline):
    table = _load(pipeline, "mfcc_table")
    validated = _load(pipeline, "validated_set")
    assert table.height == validated.height
    values = table["mfcc"].to_numpy()
    assert values.shape == (table.height, 49, 10)
    assert np.isfinite(values).all()
    assert float(values.std()) > 0


def test_int8_artifact_classifies_held_out_voices(pipeline, tmp_path):
    cfg = pipeline["cfg"]
    artifact = cfg.storage_path(*ARTIFACT_DIR)
    assert json.loads((artifact / "labels.json").read_text()) == cfg.labels
    classifier = KwsClassifier.load(artifact)
    paths, truth = [], []
    for voice in HELD_OUT_VOICES:
        assert voice not in cfg.tts.voices and voice not in cfg.sources[0].voices
        for keyword in cfg.keywords:
            synthesis = tts.synthesize(keyword, voice=voice, rate=160)
            samples = resample(synthesis.samples, synthesis.sample_rate, cfg.audio.sample_rate)
            spoken, offset = tts.trim_silence(samples, cfg.audio.sample_rate)
            clip = cut_centered(samples, cfg.audio.sample_rate,
                                (offset + len(spoken) / 2) / cfg.audio.sample_rate,
                                cfg.audio.clip_samples, cfg.audio.fade_ms)
            path = tmp_path / f"{voice.replace('+', '_')}_{keyword}.wav"
            write_wav(path, clip, cfg.audio.sample_rate)
            paths.append(path)
            truth.append(keyword)
    predictions = classifier.classify_files(paths)
    correct = sum(p["label"] == t for p, t in zip(predictions, truth))
    chance = 1 / len(cfg.labels)
    assert correct / len(truth) > 2 * chance, predictions
    metrics = json.loads((artifact / "metrics.json").read_text())
    assert metrics["int8_test_accuracy"] > chance
    assert 10 < metrics["int8_size_kb"] < 200
