"""A Spanish end-to-end run (issue 8): keywords in their own script, a Spanish demo corpus
aligned by the TTS+DTW aligner, Spanish synthetic voices, a model and its int8 artifact — and
the keyword clips re-aligned to check they are centred on the keyword.  It trains the default
``families`` (no DS-CNN on MFCC: tiny_es.yaml names none), so it is also the end-to-end run of
the graph without the DS-CNN's assets, through to the demo's summary."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import polars as pl
import pytest

from kws_assets.config import load_config
from kws_assets.core.audio.io import read_audio
from kws_assets.core.evaluation.report import REPORT_FILE
from kws_assets.core.evaluation.transfer import TRANSFER_REPORT_FILE
from kws_assets.core.speech import tts
from kws_assets.core.speech.dtw_aligner import DtwAligner
from kws_assets.core.speech.fillers import FILLER_WORDS
from kws_assets.definitions import build_definitions
from kws_assets.demo import summarize
from kws_assets.lib.in_process import materialize_graph
from kws_assets_tests.pipeline_runs import load_asset

pytestmark = pytest.mark.slow

CENTRE_TOLERANCE_S = 0.1
START_TOLERANCE_S = 0.1
MIN_SHARE_WITHIN = 0.9


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from kws_assets_tests.conftest import FIXTURES

    root = tmp_path_factory.mktemp("e2e_es")
    config_file = root / "kws.yaml"
    config_file.write_text(
        (FIXTURES / "tiny_es.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    home = root / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(config_file)
        graph = materialize_graph(defs, instance)
        yield {"defs": defs, "instance": instance, "graph": graph, "cfg": load_config(config_file)}


def _keyword_clips(pipeline) -> pl.DataFrame:
    aligned = load_asset(pipeline, "aligned_keywords")
    if "reject_reason" in aligned.columns:
        aligned = aligned.filter(pl.col("reject_reason").is_null())
    return aligned


def test_the_run_succeeds_with_spanish_keyword_partitions(pipeline):
    graph, cfg = pipeline["graph"], pipeline["cfg"]
    assert graph.success, graph.failed
    assert cfg.keywords == ["sí", "no", "arriba"] and cfg.language == "es"
    materialized = graph.materialized()
    assert {p for k, p in materialized if k == "aligned_keywords"} == set(cfg.keywords)
    assert ("embedding_artifact", None) in materialized


def test_the_default_families_train_and_the_dscnn_is_not_in_the_graph(pipeline):
    defs, cfg = pipeline["defs"], pipeline["cfg"]
    assert cfg.families == ["speech_embedding", "micro_wake_word"]
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    dscnn = {"kws_model", "quantized_model", "student_model", "device_model", "mfcc_release"}
    assert not keys & dscnn
    assert {"embedding_model", "micro_model", "evaluation", "transfer_evaluation"} <= keys
    report = json.loads(load_asset(pipeline, "evaluation").file(REPORT_FILE).read_text())
    assert set(report["families"]) == {"speech_embedding", "micro_wake_word"}
    transfer = json.loads(
        load_asset(pipeline, "transfer_evaluation").file(TRANSFER_REPORT_FILE).read_text()
    )
    assert {row["family"] for row in transfer["table"]} == set(cfg.families)


def test_the_demo_summary_leaves_the_dscnn_out(pipeline):
    text = summarize(pipeline["defs"], pipeline["instance"])
    assert text.startswith("the model (speech_embedding): ")
    assert "DS-CNN" not in text and "small-device model" not in text


def test_the_demo_corpus_is_spanish(pipeline):
    corpus = load_asset(pipeline, "raw_corpus")
    assert corpus.height == 4 * 2 * 3  # voices x sentences per keyword x keywords
    assert set(corpus["language"]) == {"es"}
    assert all(s.startswith("tts:es") for s in corpus["speaker"])
    for transcript in corpus["transcript"]:
        words = transcript.split()
        assert set(words) - {"sí", "no", "arriba"} <= set(FILLER_WORDS["es"]), transcript


def test_keyword_clips_were_aligned_by_tts_dtw(pipeline):
    cfg = pipeline["cfg"]
    clips = _keyword_clips(pipeline)
    corpus = load_asset(pipeline, "raw_corpus")
    assert set(clips["aligner"]) == {"tts_dtw"}
    for keyword in cfg.keywords:
        mentions = corpus.filter(pl.col("transcript").str.split(" ").list.contains(keyword)).height
        assert clips.filter(pl.col("label") == keyword).height >= 0.75 * mentions, keyword
    assert clips["confidence"].is_between(0.0, 1.0).all()
    unknown = load_asset(pipeline, "unknown_clips")
    words = set(unknown.filter(pl.col("label") == "_unknown_")["word"].drop_nulls())
    assert words and words <= set(FILLER_WORDS["es"])


def test_keyword_clips_are_centred_on_the_keyword(pipeline):
    """Re-align every 1-s keyword clip against its keyword: the word's centre is near 0.5 s."""
    cfg = pipeline["cfg"]
    aligner = DtwAligner(cfg.language)
    clips = _keyword_clips(pipeline)
    offsets = []
    for row in clips.iter_rows(named=True):
        audio = read_audio(row["uri"], target_sr=cfg.audio.sample_rate)
        result = aligner.align(audio.samples, audio.sample_rate, row["label"])
        assert result.ok, (row["uri"], result.error)
        (word,) = result.words
        offsets.append(abs((word.start_s + word.end_s) / 2 - cfg.audio.clip_seconds / 2))
    within = float(np.mean(np.array(offsets) <= CENTRE_TOLERANCE_S))
    print(
        f"\n{len(offsets)} Spanish keyword clips: {within:.0%} centred within 100 ms "
        f"(median offset {np.median(offsets) * 1000:.0f} ms)"
    )
    assert within >= MIN_SHARE_WITHIN


def test_aligned_starts_match_espeaks_own_word_timing(pipeline):
    """The demo recordings are espeak-ng speech, so its word events are the truth: the aligned
    keyword start (voice other than the alignment voice) lies near the event."""
    cfg = pipeline["cfg"]
    clips = _keyword_clips(pipeline)
    corpus = load_asset(pipeline, "raw_corpus").select("utterance_id", "transcript", "speaker")
    errors = []
    for row in clips.join(corpus, left_on="origin_id", right_on="utterance_id").iter_rows(
        named=True
    ):
        voice = row["speaker"].removeprefix("tts:")
        spoken = tts.synthesize(row["transcript"], voice=voice, rate=cfg.sources[0].rate)
        (event,) = [w for w in spoken.words if w.text == row["label"]]
        errors.append(abs(row["start_s"] - event.start_s))
    assert errors
    within = float(np.mean(np.array(errors) <= START_TOLERANCE_S))
    print(
        f"\nSpanish keyword starts vs espeak-ng word events: {within:.0%} within 100 ms "
        f"(median {np.median(errors) * 1000:.0f} ms)"
    )
    assert within >= MIN_SHARE_WITHIN


def test_a_model_and_its_int8_artifact(pipeline):
    cfg = pipeline["cfg"]
    artifact = load_asset(pipeline, "embedding_artifact").path
    assert json.loads((artifact / "labels.json").read_text(encoding="utf-8")) == cfg.labels
    assert (artifact / "model.int8.onnx").stat().st_size > 1000
    metrics = json.loads((artifact / "metrics.json").read_text())
    assert metrics["int8_test_accuracy"] > 1 / len(cfg.labels)
    validated = load_asset(pipeline, "validated_set")
    assert set(validated["label"]) == set(cfg.labels)
    assert set(validated["language"].drop_nulls()) == {"es"}
