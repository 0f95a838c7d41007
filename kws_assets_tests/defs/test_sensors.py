"""The sensors and automation conditions, evaluated tick by tick against a real (temporary)
Dagster instance — what the daemon does, without the daemon.  The live-webserver test runs the
same sensors under ``dagster dev``."""

from __future__ import annotations

import contextvars
import shutil
from pathlib import Path

import dagster as dg
import pytest

from kws_assets.config import landing_zone, load_config
from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import INGEST_JOB, KEYWORD_JOB, RETRAIN_JOB
from kws_assets.defs.sensors import (
    AUTOMATION_SENSOR,
    KEYWORD_SENSOR,
    LANDING_SENSOR,
    RETRAIN_SENSOR,
    REVIEW_SENSOR,
)
from kws_assets.lib.partitions import CORPUS_BATCHES, KEYWORDS
from kws_assets.lib.resources import KwsSettings
from kws_assets_tests.conftest import FIXTURES

CSV = "path,transcript,speaker\naudio/a.wav,say yes now,alice\n"


@pytest.fixture
def config_file(tmp_path) -> Path:
    target = tmp_path / "kws.yaml"
    shutil.copy(FIXTURES / "tiny.yaml", target)
    # Batches are taken as soon as their manifest lands (settling has its own test).
    target.write_text(target.read_text() + "automation: {landing_settle_s: 0}\n")
    return target


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _tick(config_file: Path, name: str, instance, cursor: str | None):
    """One evaluation of a sensor of the code location, as the daemon would run it.

    Run in a copy of the context: the instance Dagster builds from ``instance_ref`` sets itself
    as the current defs-state storage (a context variable) and is never disposed, so once it
    is garbage-collected the next tick would find a dead reference there — when depends on the
    garbage collector's timing, which made these tests fail by test order alone."""
    return contextvars.copy_context().run(_tick_here, config_file, name, instance, cursor)


def _tick_here(config_file: Path, name: str, instance, cursor: str | None):
    defs = build_definitions(config_file)
    # By reference, as the daemon does: run requests for partitions added in the same tick resolve.
    context = dg.build_sensor_context(
        instance_ref=instance.get_ref(),
        cursor=cursor,
        definitions=defs,
        resources={"settings": KwsSettings(config_path=str(config_file))},
    )
    return defs.get_sensor_def(name).evaluate_tick(context)


def _apply_partition_requests(instance, data) -> None:
    """What the daemon does with a tick's dynamic partition requests."""
    for request in data.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def _land(config_file: Path, name: str, text: str = CSV) -> Path:
    folder = Path(landing_zone(load_config(config_file)).root) / name
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    (folder / "manifest.csv").write_text(text)
    return folder


def _requested(data) -> list[tuple[str, str]]:
    return [(r.job_name, r.partition_key) for r in data.run_requests or []]


def test_all_sensors_start_stopped(config_file):
    defs = build_definitions(config_file)
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {
        LANDING_SENSOR,
        KEYWORD_SENSOR,
        RETRAIN_SENSOR,
        REVIEW_SENSOR,
        AUTOMATION_SENSOR,
    }
    for sensor in sensors.values():
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED, sensor.name
        assert (
            sensor.minimum_interval_seconds == load_config(config_file).automation.sensor_interval_s
        )


def test_landing_zone_sensor_registers_each_batch_once(config_file, instance):
    _land(config_file, "b1")
    _land(config_file, "b2")
    first = _tick(config_file, LANDING_SENSOR, instance, None)
    expected = ["source-demo", "landing-b1", "landing-b2"]
    assert _requested(first) == [(INGEST_JOB, key) for key in expected]
    (add,) = first.dynamic_partitions_requests
    assert add.partitions_def_name == CORPUS_BATCHES.name and list(add.partition_keys) == expected
    assert len({r.run_key for r in first.run_requests}) == 3
    _apply_partition_requests(instance, first)

    quiet = _tick(config_file, LANDING_SENSOR, instance, first.cursor)
    assert not quiet.run_requests and quiet.skip_message

    # Several batches land between two ticks (and one folder that cannot be a batch).
    for name in ("b3", "b4", "b5"):
        _land(config_file, name)
    _land(config_file, "bad name")
    staged = _land(config_file, "_incoming-b6")
    third = _tick(config_file, LANDING_SENSOR, instance, quiet.cursor)
    assert _requested(third) == [(INGEST_JOB, f"landing-b{i}") for i in (3, 4, 5)]
    _apply_partition_requests(instance, third)

    # A corrected manifest is requested again (the partition exists already); renaming a staged
    # folder into place makes it a batch.
    zone = Path(landing_zone(load_config(config_file)).root)
    (zone / "b1" / "manifest.csv").write_text(CSV + "audio/b.wav,no,bob\n")
    staged.rename(staged.with_name("b6"))
    fourth = _tick(config_file, LANDING_SENSOR, instance, third.cursor)
    assert _requested(fourth) == [(INGEST_JOB, "landing-b1"), (INGEST_JOB, "landing-b6")]
    (add,) = fourth.dynamic_partitions_requests
    assert list(add.partition_keys) == ["landing-b6"]
    previous_keys = {r.run_key for r in first.run_requests + third.run_requests}
    assert not previous_keys & {r.run_key for r in fourth.run_requests}


def test_landing_zone_sensor_requests_everything_again_when_keywords_change(config_file, instance):
    _land(config_file, "b1")
    first = _tick(config_file, LANDING_SENSOR, instance, None)
    _apply_partition_requests(instance, first)
    config_file.write_text(
        config_file.read_text().replace("keywords: [yes, no, up]", "keywords: [yes, no, up, go]")
    )
    again = _tick(config_file, LANDING_SENSOR, instance, first.cursor)
    assert _requested(again) == [(INGEST_JOB, "source-demo"), (INGEST_JOB, "landing-b1")]
    assert not again.dynamic_partitions_requests


def test_keyword_sensor_follows_the_config(config_file, instance):
    first = _tick(config_file, KEYWORD_SENSOR, instance, None)
    assert _requested(first) == [(KEYWORD_JOB, k) for k in ("yes", "no", "up")]
    _apply_partition_requests(instance, first)
    assert instance.get_dynamic_partitions(KEYWORDS.name) == ["yes", "no", "up"]
    assert not _tick(config_file, KEYWORD_SENSOR, instance, first.cursor).run_requests

    config_file.write_text(
        config_file.read_text().replace("keywords: [yes, no, up]", "keywords: [yes, up, go]")
    )
    changed = _tick(config_file, KEYWORD_SENSOR, instance, first.cursor)
    assert _requested(changed) == [(KEYWORD_JOB, "go")]
    _apply_partition_requests(instance, changed)
    assert sorted(instance.get_dynamic_partitions(KEYWORDS.name)) == ["go", "up", "yes"]


def _materialize(instance, key: str, partition: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def test_retrain_sensor_fires_once_per_new_validated_set(config_file, instance):
    assert _tick(config_file, RETRAIN_SENSOR, instance, None).skip_message  # nothing yet
    _materialize(instance, "validated_set")
    first = _tick(config_file, RETRAIN_SENSOR, instance, None)
    assert _requested(first) == [(RETRAIN_JOB, None)]
    assert not _tick(config_file, RETRAIN_SENSOR, instance, first.cursor).run_requests

    _materialize(instance, "embedding_model")  # the retrain run happened
    _materialize(instance, "validated_set")
    second = _tick(config_file, RETRAIN_SENSOR, instance, first.cursor)
    assert _requested(second) == [(RETRAIN_JOB, None)]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key

    # kws_pipeline curates and trains in one run: its model is newer than its validated set.
    _materialize(instance, "validated_set")
    _materialize(instance, "embedding_model")
    third = _tick(config_file, RETRAIN_SENSOR, instance, second.cursor)
    assert not third.run_requests and "trained after" in third.skip_message


def _requested_partitions(result, key: str) -> set[str | None]:
    if not result.get_num_requested(dg.AssetKey(key)):
        return set()
    partitions = result.get_requested_partitions(dg.AssetKey(key))
    return set(partitions) if partitions else {None}


def test_automation_conditions_carry_changes_to_the_validated_set(config_file, instance):
    defs = build_definitions(config_file)
    instance.add_dynamic_partitions(KEYWORDS.name, ["yes", "no", "up"])
    instance.add_dynamic_partitions(CORPUS_BATCHES.name, ["source-demo"])
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0  # nothing can run: no corpus ingested yet

    for key in ("raw_corpus", "unknown_clips"):
        _materialize(instance, key, "source-demo")
    for keyword in ("yes", "no", "up"):
        _materialize(instance, "synthetic_clips", keyword)
        _materialize(instance, "aligned_keywords", keyword)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    # every dependency of validated_set exists and changed: it (and its twin output) follows
    assert _requested_partitions(result, "validated_set") == {None}
    assert _requested_partitions(result, "quarantined_clips") == {None}
    assert not _requested_partitions(result, "kws_model")  # retraining is the sensor's job
    _materialize(instance, "validated_set")
    _materialize(instance, "quarantined_clips")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)

    # A new batch is ingested: every keyword is re-cut from the corpus, and the batch's
    # unknown clips follow; validated_set waits until they exist.
    instance.add_dynamic_partitions(CORPUS_BATCHES.name, ["landing-b1"])
    _materialize(instance, "raw_corpus", "landing-b1")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert _requested_partitions(result, "aligned_keywords") == {"yes", "no", "up"}
    assert _requested_partitions(result, "unknown_clips") == {"landing-b1"}
    assert not _requested_partitions(result, "validated_set")

    # A new keyword partition: its aligned clips are cut (its synthesis is the keyword sensor's).
    instance.add_dynamic_partitions(KEYWORDS.name, ["go"])
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert "go" in _requested_partitions(result, "aligned_keywords")
    assert not _requested_partitions(result, "synthetic_clips")


def test_review_sensor_requests_a_curate_run_per_batch_of_new_decisions(config_file, instance):
    from kws_assets.core.review.decisions import KEEP, Decision, record_decision
    from kws_assets.defs.jobs import CURATE_JOB
    from kws_assets.lib.resources import storage_resources

    clips = storage_resources(load_config(config_file))["clip_store"].open_objects()

    def decide(clip: str) -> None:
        record_decision(
            clips,
            Decision.make(
                clip_id=clip,
                data_version="v",
                action=KEEP,
                old_label="yes",
                reason="field_false_wake",
                reviewer="ana",
            ),
        )

    assert _tick(config_file, REVIEW_SENSOR, instance, None).skip_message
    decide("a")
    decide("b")
    first = _tick(config_file, REVIEW_SENSOR, instance, None)
    assert [r.job_name for r in first.run_requests] == [CURATE_JOB] and first.cursor == "2"
    assert _tick(config_file, REVIEW_SENSOR, instance, first.cursor).skip_message
    decide("c")
    second = _tick(config_file, REVIEW_SENSOR, instance, first.cursor)
    assert second.run_requests[0].run_key == "review_decisions@3"
