"""One end-to-end materialization of the whole graph on the tiny config, through a real
(temporary, persistent) Dagster instance, asserting properties of what it produced.

The graph is partitioned, so "the whole graph" is what ``make demo`` runs: every corpus batch
(``ingest_batch``), every keyword (``keyword_clips``), then ``kws_pipeline``."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from kws_assets import demo
from kws_assets.config import load_config
from kws_assets.core.audio.io import cut_centered, resample, write_wav
from kws_assets.core.families import families, load_classifier
from kws_assets.core.ship.micro_wake_word import ESPHOME_DIR
from kws_assets.core.ship.micro_wake_word import read_manifest as read_micro_manifest
from kws_assets.core.speech import tts
from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import INGEST_JOB, KEYWORD_JOB
from kws_assets_tests.pipeline_runs import job_assets, load_asset

pytestmark = pytest.mark.slow

# Voices that the tiny config uses neither for the corpus nor for the synthetic grid (their
# variants are outside tts.variants, so no sampled speaker has them either).
HELD_OUT_VOICES = ["en-us+steph3", "en+michel", "en-gb-x-gbcwmd+Hugo"]
FAMILIES = tuple(f.name for f in families())


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from kws_assets_tests.conftest import FIXTURES

    root = tmp_path_factory.mktemp("e2e")
    config_file = root / "kws.yaml"
    config_file.write_text((FIXTURES / "tiny.yaml").read_text())
    home = root / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        # The graph is materialized the way ``make demo`` does it, and the terminal it would
        # have shown is kept for test_the_demo_terminal_shows_progress_and_summary_only.
        with terminal_output(root / "terminal.txt"), demo.quiet_console():
            defs = build_definitions(config_file)
            graph = demo.run_demo(defs, instance, home)
        yield {
            "defs": defs,
            "instance": instance,
            "graph": graph,
            "cfg": load_config(config_file),
            "root": root,
            "home": home,
            "terminal": (root / "terminal.txt").read_text(),
        }


@contextmanager
def terminal_output(path: Path) -> Iterator[None]:
    """Everything written to stdout and stderr in the block, at the Python and the file
    descriptor level (C libraries, handlers bound to the streams), into ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("w") as sink, redirect_stdout(sink), redirect_stderr(sink):
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sink.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


DAGSTER_LOG_LINE = re.compile(r" - dagster - |\bDEBUG\b|BetaWarning|PreviewWarning")
RUN_STARTED = re.compile(r"^run (\d+)/(\d+) (\S+)(?: \[(\S+)\])? …$")
RUN_FINISHED = re.compile(r"^run (\d+)/(\d+) (\S+)(?: \[(\S+)\])? done in \d+\.\d s$")
STEP_LINE = re.compile(r"^    (\w+)(?: …|: .+| done in \d+\.\d s)$")


def test_the_demo_terminal_shows_progress_and_summary_only(pipeline):
    """``make demo``'s terminal: a line when each run starts and ends, the steps of each run in
    between (start, their latest message, wall time: a training epoch with its validation
    accuracy), then the summary; Dagster's log lines are in the instance's event log (the UI),
    not on the terminal."""
    terminal, cfg = pipeline["terminal"], pipeline["cfg"]
    assert not DAGSTER_LOG_LINE.findall(terminal), terminal[:3000]
    runs = [("ingest_batch", "source-demo")] + [("keyword_clips", k) for k in cfg.keywords]
    runs.append(("kws_pipeline", None))
    lines = terminal.splitlines()
    for pattern in (RUN_STARTED, RUN_FINISHED):
        seen = [m.groups() for m in map(pattern.match, lines) if m]
        assert [(job, partition) for _, _, job, partition in seen] == runs, terminal[:3000]
        assert [(int(i), int(n)) for i, n, _, _ in seen] == [
            (i, len(runs)) for i in range(1, len(runs) + 1)
        ]
    last_run = max(i for i, line in enumerate(lines) if RUN_FINISHED.match(line))
    progress = lines[: last_run + 1]
    others = [
        line
        for line in progress
        if not (RUN_STARTED.match(line) or RUN_FINISHED.match(line) or STEP_LINE.match(line))
    ]
    assert not others, others[:5]  # nothing but progress until the last run ends
    steps = [m.group(1) for m in map(STEP_LINE.match, progress) if m]
    assert {"synthetic_clips", "validated_set", "kws_model", "evaluation"} <= set(steps)
    training = [line for line in progress if line.startswith("    kws_model: ")]
    assert any(re.search(r"epoch \d+/\d+: .*val loss [\d.]+ acc [\d.]+", t) for t in training)
    assert any(line.startswith("    kws_model done in ") for line in progress)
    assert "materialized the graph in" in terminal and "quarantined:" in terminal
    assert re.search(
        r"^review queue: (empty|\d+ clips \(.*\); hear and decide: kws review)", terminal, re.M
    )
    # ... while the event log holds every run's Dagster log lines, DEBUG ones included
    instance = pipeline["instance"]
    run_id = pipeline["graph"].results[-1][2].run_id
    levels = {logging.getLevelName(e.level) for e in instance.all_logs(run_id)}
    assert {"DEBUG", "INFO"} <= levels


def test_run_succeeds_and_materializes_every_asset(pipeline):
    graph, cfg = pipeline["graph"], pipeline["cfg"]
    assert graph.success
    materialized = graph.materialized()
    defs = pipeline["defs"]
    every = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {key for key, _ in materialized} == every
    for key in job_assets(defs, KEYWORD_JOB):
        assert {p for k, p in materialized if k == key} == set(cfg.keywords), key
    for key in job_assets(defs, INGEST_JOB):
        assert {p for k, p in materialized if k == key} == {"source-demo"}, key
    records = pipeline["instance"].fetch_materializations(dg.AssetKey("quantized_model"), limit=1)
    assert records.records, "the persistent instance recorded the artifact's materialization"


def test_blocking_checks_ran_and_passed(pipeline):
    evaluations = pipeline["graph"].check_evaluations()
    by_name = {e.check_name: e for e in evaluations}
    for name in (
        "validated_set_schema",
        "validated_set_speaker_disjoint",
        "validated_set_label_coverage",
        "validated_set_unknown_and_test_size",
        "mfcc_table_schema",
    ):
        assert by_name[name].passed, name


def test_clip_counts_per_label(pipeline):
    cfg = pipeline["cfg"]
    synthetic = load_asset(pipeline, "synthetic_clips")
    grid = len(cfg.tts.voices) * len(cfg.tts.rates) * len(cfg.tts.pitches)
    sampled = cfg.tts.sampled_speakers * cfg.tts.renders_per_speaker
    # the other engines: every configured voice renders each keyword renders_per_voice times
    engine_renders = sum(len(e.voices) * e.renders_per_voice for e in cfg.tts.engines)
    expected_per_kw = grid * (1 + cfg.noise.noisy_copies_per_clip) + sampled + engine_renders
    synthetic_counts = dict(synthetic.group_by("label").len().iter_rows())
    assert {k: synthetic_counts[k] for k in cfg.keywords} == dict.fromkeys(
        cfg.keywords, expected_per_kw
    )
    # synthetic _unknown_: unknown_ratio x the clean renders of each keyword, plus the windows of
    # running speech (espeak-ng's, and half a window per other-engine keyword render)
    assert synthetic_counts["_unknown_"] == len(cfg.keywords) * (
        round(cfg.negatives.unknown_ratio * (grid + sampled))
        + cfg.negatives.speech_windows
        + round(cfg.negatives.unknown_ratio * engine_renders)
        + round(0.5 * engine_renders)
    )

    aligned = load_asset(pipeline, "aligned_keywords")
    corpus = load_asset(pipeline, "raw_corpus")
    per_kw_utterances = len(cfg.sources[0].voices) * cfg.sources[0].sentences_per_keyword
    assert corpus.height == per_kw_utterances * len(cfg.keywords)
    aligned_counts = dict(aligned.group_by("label").len().iter_rows())
    for keyword in cfg.keywords:  # the aligner finds most keyword occurrences in the corpus
        assert aligned_counts.get(keyword, 0) >= 0.75 * per_kw_utterances, aligned_counts
    unknown = load_asset(pipeline, "unknown_clips")
    assert set(aligned["label"]) == set(cfg.keywords)  # _unknown_ words live per batch
    assert unknown.filter(pl.col("label") == "_unknown_").height >= 0.75 * corpus.height

    validated = load_asset(pipeline, "validated_set")
    quarantined = load_asset(pipeline, "quarantined_clips")
    assert set(validated["label"].unique()) == set(cfg.labels)
    assert (
        validated.filter(pl.col("label") == "_silence_").height
        + quarantined.filter(pl.col("label") == "_silence_").height
        == cfg.noise.silence_clips
    )
    # Nothing lost: every candidate is either validated or quarantined, never both.
    assert validated.height + quarantined.height == (
        synthetic.height + aligned.height + unknown.height + cfg.noise.silence_clips
    )
    assert not set(validated["clip_id"]) & set(quarantined["clip_id"])


def test_splits_are_speaker_disjoint(pipeline):
    validated = load_asset(pipeline, "validated_set")
    splits_per_speaker = validated.group_by("speaker").agg(pl.col("split").n_unique())
    assert splits_per_speaker["split"].max() == 1
    assert set(validated["split"].unique()) == {"train", "val", "test"}


def test_mfcc_shape_and_finiteness(pipeline):
    table = load_asset(pipeline, "mfcc_table")
    validated = load_asset(pipeline, "validated_set")
    augmented = load_asset(pipeline, "augmented_clips")
    assert table.height == validated.height + augmented.height
    assert set(augmented["origin_id"]) <= set(
        validated.filter(pl.col("split") == "train")["clip_id"]
    )
    values = table["mfcc"].to_numpy()
    assert values.shape == (table.height, 49, 10)
    assert np.isfinite(values).all()
    assert float(values.std()) > 0


def test_int8_artifact_classifies_held_out_voices(pipeline, tmp_path):
    cfg = pipeline["cfg"]
    artifact = load_asset(pipeline, "quantized_model").path
    assert json.loads((artifact / "labels.json").read_text()) == cfg.labels
    classifier = load_classifier(artifact)
    paths, truth = [], []
    for voice in HELD_OUT_VOICES:
        assert voice not in cfg.tts.voices and voice not in cfg.sources[0].voices
        assert voice.split("+")[1] not in cfg.tts.variants
        for keyword in cfg.keywords:
            synthesis = tts.synthesize(keyword, voice=voice, rate=160)
            samples = resample(synthesis.samples, synthesis.sample_rate, cfg.audio.sample_rate)
            spoken, offset = tts.trim_silence(samples, cfg.audio.sample_rate)
            clip = cut_centered(
                samples,
                cfg.audio.sample_rate,
                (offset + len(spoken) / 2) / cfg.audio.sample_rate,
                cfg.audio.clip_samples,
                cfg.audio.fade_ms,
            )
            path = tmp_path / f"{voice.replace('+', '_')}_{keyword}.wav"
            write_wav(path, clip, cfg.audio.sample_rate)
            paths.append(path)
            truth.append(keyword)
    predictions = classifier.classify_files(paths)
    correct = sum(p["label"] == t for p, t in zip(predictions, truth, strict=True))
    chance = 1 / len(cfg.labels)
    assert correct / len(truth) > 2 * chance, predictions
    metrics = json.loads((artifact / "metrics.json").read_text())
    assert metrics["int8_test_accuracy"] > chance
    assert 10 < metrics["int8_size_kb"] < 200


def test_evaluation_reports_streaming_and_unseen_voice_numbers(pipeline):
    from kws_assets.core.evaluation.report import REPORT_FILE

    cfg = pipeline["cfg"]
    by_name = {e.check_name: e for e in pipeline["graph"].check_evaluations()}
    assert by_name["int8_artifact_size"].passed
    assert "int8_accuracy_drop" in by_name  # the quantization gate ran (its verdict is the model's)
    report = json.loads(load_asset(pipeline, "evaluation").file(REPORT_FILE).read_text())
    summary = report["summary"]
    chance = 1 / len(cfg.labels)
    assert summary["unseen_voice_clips"] > 0 and summary["unseen_voice_accuracy"] > chance
    assert 0.0 <= summary["frr_at_target"] <= 1.0
    assert summary["negative_hours"] == pytest.approx(
        cfg.evaluation.negative_minutes / 60, rel=1e-3
    )
    assert summary["positives"] > 0


def test_the_default_family_ships_with_its_evaluated_operating_point(pipeline):
    """The folder the demo tells a user to run holds the operating point the evaluation chose
    for that family, so ``kws detect --model <folder>`` runs what was measured."""
    from kws_assets.core.families import get_family
    from kws_assets.core.ship.export import OPERATING_POINT_FILE, read_operating_point
    from kws_assets.lib.family_assets import release_key

    family = get_family(pipeline["cfg"].model.family)
    release = load_asset(pipeline, release_key(family))
    chosen = load_asset(pipeline, "evaluation").path / family.name / OPERATING_POINT_FILE
    assert release.file(OPERATING_POINT_FILE).read_bytes() == chosen.read_bytes()
    assert read_operating_point(release.path) == read_operating_point(chosen)
    assert f"kws detect --model {release.path} long.wav" in pipeline["terminal"]
    if family.name == "speech_embedding":  # its release also runs in openWakeWord
        from kws_assets.core.model.detect import keyword_columns
        from kws_assets.core.ship.openwakeword_format import FOLDER, model_name

        labels = pipeline["cfg"].labels
        models = release.path / FOLDER
        expected = {model_name(labels[c]) for c in keyword_columns(labels)}
        assert {p.stem for p in models.glob("*.onnx")} == expected
        assert {p.stem for p in models.glob("*.tflite")} == expected
        assert f"openWakeWord models: {models}" in pipeline["terminal"]


def test_other_engines_speak_and_the_held_out_engine_never_trains(pipeline):
    validated = load_asset(pipeline, "validated_set")
    speakers = set(validated["speaker"].unique())
    flite = {s for s in speakers if s.startswith("flite:")}
    assert flite == {"flite:slt", "flite:kal"}  # the configured voices, each one speaker
    assert not any(s.startswith("piper:") for s in speakers)  # held out: evaluation only
    by_voice = validated.filter(pl.col("speaker").is_in(list(flite)))
    assert {"yes", "no", "up", "_unknown_"} <= set(by_voice["label"])
    # each voice stays in one split; its perturbed renders are recorded in the origin id
    assert by_voice.group_by("speaker").agg(pl.col("split").n_unique())["split"].max() == 1
    assert by_voice["origin_id"].str.contains("|w").all()


def test_both_families_are_scored_on_the_held_out_engine(pipeline):
    report = json.loads(
        load_asset(pipeline, "transfer_evaluation").file("transfer.json").read_text()
    )
    rows = {(r["family"], r["set"]): r for r in report["table"]}
    for family in FAMILIES:
        held_out = rows[(family, "held-out engine: piper")]
        assert held_out["clips"] >= 3 * 2  # every keyword and unknown word by the Piper voice
        assert 0.0 <= held_out["accuracy"] <= 1.0
        assert (family, "synthetic test split (in-distribution)") in rows
    assert report["default_family"] == pipeline["cfg"].model.family
    # ... and as a stream of those renders, at the operating point the evaluation shipped
    streams = {(r["family"], r["set"]): r for r in report["streams"]}
    assert {f for f, _ in streams} == set(FAMILIES)  # the student ships no point
    for family in FAMILIES:
        row = streams[(family, "held-out engine: piper")]
        assert row["keywords"] >= 3 and 0 <= row["hits"] <= row["keywords"]
        assert row["frr"] == round(1 - row["hits"] / row["keywords"], 4)
        assert row["frr_lower"] <= row["frr"] <= row["frr_upper"]
        assert row["fa_per_hour_lower"] <= row["fa_per_hour"] <= row["fa_per_hour_upper"]
        chosen = load_asset(pipeline, "evaluation").path / family / "operating_point.json"
        assert row["threshold"] == json.loads(chosen.read_text())["threshold"]


def test_the_esphome_models_ship_with_the_evaluated_cutoff(pipeline):
    """The micro_wake_word release: per keyword a .tflite + v2 JSON whose cutoff is the point the
    evaluation selected, small enough for an ESP32-S3, and `kws` runs the folder."""
    release = load_asset(pipeline, "micro_wake_word_release").path
    chosen = json.loads((release / "operating_point.json").read_text())
    manifests = sorted((release / ESPHOME_DIR).glob("*.json"))
    assert [read_micro_manifest(p)["wake_word"] for p in manifests] == sorted(
        pipeline["cfg"].keywords
    )
    for path in manifests:
        micro = read_micro_manifest(path)["micro"]
        assert micro["probability_cutoff"] == round(min(max(chosen["threshold"], 0.01), 0.99), 4)
        assert micro["tensor_arena_size"] <= 40 * 1024
        assert (path.with_suffix(".tflite")).stat().st_size <= 64 * 1024
    classifier = load_classifier(release / ESPHOME_DIR)
    assert sorted(classifier.labels) == sorted([*pipeline["cfg"].keywords, "_unknown_"])


def test_the_embedding_artifact_classifies_from_its_folder_alone(pipeline, tmp_path):
    import shutil

    cfg = pipeline["cfg"]
    folder = tmp_path / "copied_artifact"
    shutil.copytree(load_asset(pipeline, "embedding_artifact").path, folder)
    classifier = load_classifier(folder)
    assert classifier.labels == cfg.labels
    clips, truth = [], []
    for voice in ("en-us+steph3", "en+michel"):  # held-out voices: never trained on
        for keyword in cfg.keywords:
            synthesis = tts.synthesize(keyword, voice=voice, rate=160)
            samples = resample(synthesis.samples, synthesis.sample_rate, cfg.audio.sample_rate)
            spoken, offset = tts.trim_silence(samples, cfg.audio.sample_rate)
            clips.append(
                cut_centered(
                    samples,
                    cfg.audio.sample_rate,
                    (offset + len(spoken) / 2) / cfg.audio.sample_rate,
                    cfg.audio.clip_samples,
                    cfg.audio.fade_ms,
                )
            )
            truth.append(keyword)
    predicted = [cfg.labels[i] for i in classifier.classify_clips(np.stack(clips)).argmax(axis=1)]
    assert sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth) > 2 / len(
        cfg.labels
    )


def _latest_metadata(pipeline, key: str) -> dict:
    records = pipeline["instance"].fetch_materializations(dg.AssetKey(key), limit=1).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_the_student_is_distilled_from_the_teacher_and_shipped(pipeline):
    import torch

    cfg = pipeline["cfg"]
    student, kws = load_asset(pipeline, "student_model"), load_asset(pipeline, "kws_model")
    assert student.family == "mfcc" and student.labels == kws.labels
    assert (
        student.network == kws.network and student.front_end == kws.front_end
    )  # same shape, same features
    assert any(not torch.equal(student.state_dict[k], kws.state_dict[k]) for k in kws.state_dict)
    meta = _latest_metadata(pipeline, "student_model")
    chance = 1 / len(cfg.labels)
    assert meta["distilled"] is True and meta["temperature"] == cfg.distill.temperature
    assert (
        meta["accuracy_test"] > chance and meta["kws_model_accuracy_test"] == kws.accuracy["test"]
    )
    assert meta["teacher_agreement"]["test"] > chance
    assert meta["train_rows_without_teacher"] == 0  # both tables cover the same clips
    device = _latest_metadata(pipeline, "device_model")
    assert device["shipped"] == "student_model"
    card = device["model_card"]
    assert "distilled from speech" in card and "kws\\_model: " in card  # markdown-escaped
    # the shipped operating point states its measured FA/h and FRR with their intervals
    assert "FRR " in card and "95% interval" in card and "keyword-free audio" in card


def test_reviewed_clips_reach_the_next_validated_set(pipeline):
    """The pipeline ranked a review queue; two decisions taken through the review page's session
    (what `kws review` serves: a relabel and a reject) reach the next curate run and its data
    card.  Runs last: it re-curates."""
    from kws_assets.core.review.apply import REVIEW_REJECTED
    from kws_assets.defs.jobs import CURATE_JOB
    from kws_assets.review_page import load_session

    cfg = pipeline["cfg"]
    queue = load_asset(pipeline, "review_queue")
    print(
        "review queue on the tiny config:",
        queue.height,
        "clips;",
        dict(queue.group_by("reason").len().sort("reason").iter_rows()),
    )
    assert 0 < queue.height <= cfg.review.queue_size
    assert queue["rank"].to_list() == list(range(1, queue.height + 1))
    assert queue["score"].is_sorted(descending=True)
    session, host, _ = load_session(str(pipeline["root"] / "kws.yaml"))
    assert host == "127.0.0.1" and session.queue.equals(queue)
    first, second = queue.filter(pl.col("in_set") == "validated").head(2).iter_rows(named=True)
    new_label = next(label for label in cfg.labels if label != first["label"])
    session.decide(
        {
            "clip_id": first["clip_id"],
            "action": "relabel",
            "new_label": new_label,
            "reviewer": "e2e",
        }
    )
    session.decide({"clip_id": second["clip_id"], "action": "reject", "reviewer": "e2e"})

    result = (
        pipeline["defs"]
        .resolve_job_def(CURATE_JOB)
        .execute_in_process(instance=pipeline["instance"])
    )
    assert result.success
    validated = load_asset(pipeline, "validated_set")
    relabelled = validated.filter(pl.col("clip_id") == first["clip_id"]).row(0, named=True)
    assert (relabelled["label"], relabelled["label_before_review"]) == (new_label, first["label"])
    assert second["clip_id"] not in validated["clip_id"].to_list()
    quarantined = load_asset(pipeline, "quarantined_clips")
    rejected = quarantined.filter(pl.col("clip_id") == second["clip_id"]).row(0, named=True)
    assert rejected["reason"] == REVIEW_REJECTED
    assert _latest_metadata(pipeline, "validated_set")["review_decisions_applied"] == 2
    assert (
        "**2 clip(s) reviewed** by a person; 1 label(s) changed"
        in _latest_metadata(pipeline, "data_card")["card"]
    )


def test_field_false_wakes_go_from_the_landing_zone_to_the_retrain_sensor(pipeline):
    """A device drops three false wakes in the landing zone: ingested, they wait at the top of
    the review queue (not in the validated set); a person keeps them; the review sensor asks for
    a curate run, after which they are hard ``_unknown_`` negatives, and the retrain sensor asks
    for a retrain.  (That the retrained model then fires less on such sounds is measured on the
    tone task: kws_assets_tests/core/review/test_field.py.)  Runs after the review test."""
    from kws_assets.config import landing_zone
    from kws_assets.core.audio.io import read_audio, write_wav
    from kws_assets.core.review.queue import FIELD_FALSE_WAKE
    from kws_assets.defs.jobs import CURATE_JOB, RETRAIN_JOB, REVIEW_JOB
    from kws_assets.defs.sensors import RETRAIN_SENSOR, REVIEW_SENSOR
    from kws_assets.lib.partitions import CORPUS_BATCHES
    from kws_assets.lib.resources import KwsSettings
    from kws_assets.review_page import load_session

    cfg, defs, instance = pipeline["cfg"], pipeline["defs"], pipeline["instance"]
    config_file = pipeline["root"] / "kws.yaml"
    heard = load_asset(pipeline, "validated_set").filter(pl.col("label") == "_unknown_").head(3)
    folder = Path(landing_zone(cfg).root) / "device-7"
    folder.mkdir(parents=True)
    for i, uri in enumerate(heard["uri"]):  # what the television said, as the device heard it
        info = read_audio(uri)
        write_wav(folder / f"wake{i}.wav", info.samples * 0.8, info.sample_rate)
    lines = "".join(f"wake{i}.wav,,kitchen,false_wake\n" for i in range(heard.height))
    (folder / "manifest.csv").write_text("path,transcript,speaker,tag\n" + lines)
    key = "landing-device-7"
    instance.add_dynamic_partitions(CORPUS_BATCHES.name, [key])
    for job, partition in ((INGEST_JOB, key), (CURATE_JOB, None), (REVIEW_JOB, None)):
        run = defs.resolve_job_def(job).execute_in_process(
            instance=instance, partition_key=partition
        )
        assert run.success, job
    assert load_asset(pipeline, "validated_set").filter(pl.col("source") == key).is_empty()
    queue = load_asset(pipeline, "review_queue")
    field = queue.filter(pl.col("reason") == FIELD_FALSE_WAKE)
    assert field.height == 3 and field["rank"].to_list() == [1, 2, 3]

    session, _, _ = load_session(str(config_file))
    for clip in field["clip_id"]:
        session.decide({"clip_id": clip, "action": "keep", "reviewer": "e2e"})

    def tick(name: str) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=instance,
            definitions=defs,
            resources={"settings": KwsSettings(config_path=str(config_file))},
        )
        return defs.resolve_sensor_def(name).evaluate_tick(context)

    (curate,) = tick(REVIEW_SENSOR).run_requests
    assert curate.job_name == CURATE_JOB
    assert defs.resolve_job_def(CURATE_JOB).execute_in_process(instance=instance).success
    negatives = load_asset(pipeline, "validated_set").filter(pl.col("source") == key)
    assert negatives.height == 3
    assert set(negatives["label"]) == {"_unknown_"} and set(negatives["field_tag"]) == {
        "false_wake"
    }
    (retrain,) = tick(RETRAIN_SENSOR).run_requests
    assert retrain.job_name == RETRAIN_JOB
