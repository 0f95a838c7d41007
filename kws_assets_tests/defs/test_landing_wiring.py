"""The landing zone's race guards wired into Dagster: the landing sensor defers (and logs) a
batch whose manifest has not settled for ``automation.landing_settle_s``, and ``raw_corpus``
refuses to ingest a landed batch whose manifest changed or vanished after the sensor scanned it
(before or while it is loaded)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from kws_assets.config import landing_zone, load_config
from kws_assets.core.corpus import ingest as corpus
from kws_assets.core.corpus.landing import (
    BATCH_DELETED,
    MANIFEST_CHANGED,
    MANIFEST_SETTLING,
    landing_scan,
)
from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import INGEST_JOB
from kws_assets.defs.sensors import LANDING_SENSOR, MANIFEST_FINGERPRINT_TAG
from kws_assets.lib.partitions import CORPUS_BATCHES
from kws_assets.lib.resources import KwsSettings
from kws_assets.settings import AutomationSettings
from kws_assets_tests.conftest import FIXTURES

CSV = "path,transcript,speaker\naudio/a.wav,say yes now,alice\n"
SETTLE_S = 30.0


@pytest.fixture
def config_file(tmp_path) -> Path:
    target = tmp_path / "kws.yaml"
    shutil.copy(FIXTURES / "tiny.yaml", target)
    target.write_text(target.read_text() + f"automation: {{landing_settle_s: {SETTLE_S}}}\n")
    return target


@pytest.fixture
def instance(tmp_path):
    # In tmp_path (kept until the session ends), not a folder deleted on exit: Dagster leaves
    # the instance's defs-state storage current after runs executed in it, and a later test
    # loading definitions outside any instance would open a deleted database.
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as inst:
        yield inst


def _land(config_file: Path, name: str, text: str = CSV, age_s: float = 0.0) -> Path:
    folder = Path(landing_zone(load_config(config_file)).root) / name
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    manifest.write_text(text)
    if age_s:
        then = time.time() - age_s
        os.utime(manifest, (then, then))
    return folder


def _tick(config_file: Path, instance, cursor: str | None = None):
    defs = build_definitions(config_file)
    context = dg.build_sensor_context(
        instance_ref=instance.get_ref(),
        cursor=cursor,
        definitions=defs,
        resources={"settings": KwsSettings(config_path=str(config_file))},
    )
    return defs.get_sensor_def(LANDING_SENSOR).evaluate_tick(context)


def test_landing_settle_setting_has_a_default_and_a_description():
    field = AutomationSettings.model_fields["landing_settle_s"]
    assert AutomationSettings().landing_settle_s == 10.0 and field.description
    with pytest.raises(ValueError):
        AutomationSettings(landing_settle_s=-1)


def test_sensor_defers_an_unsettled_batch_and_logs_it(config_file, instance, capfd):
    _land(config_file, "old", age_s=2 * SETTLE_S)
    fresh = _land(config_file, "fresh")
    scan = landing_scan(landing_zone(load_config(config_file)))
    assert [b.key for b in scan.batches] == ["landing-old"]
    assert [(d.folder, d.reason) for d in scan.deferred] == [(str(fresh), MANIFEST_SETTLING)]

    first = _tick(config_file, instance)
    requested = {(r.job_name, r.partition_key) for r in first.run_requests}
    assert requested == {(INGEST_JOB, "source-demo"), (INGEST_JOB, "landing-old")}
    old = next(r for r in first.run_requests if r.partition_key == "landing-old")
    assert old.tags[MANIFEST_FINGERPRINT_TAG] == scan.batches[0].fingerprint
    assert (
        MANIFEST_FINGERPRINT_TAG
        not in next(r for r in first.run_requests if r.partition_key == "source-demo").tags
    )
    logged = capfd.readouterr().err  # the sensor's log (Dagster's console handler)
    assert "deferred" in logged and str(fresh) in logged and MANIFEST_SETTLING in logged

    # Once its manifest has been quiet long enough, the next tick requests it.
    then = time.time() - 2 * SETTLE_S
    os.utime(fresh / "manifest.csv", (then, then))
    second = _tick(config_file, instance, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["landing-fresh"]


def _ingest(config_file: Path, instance, key: str, tags: dict[str, str] | None = None):
    defs = build_definitions(config_file)
    instance.add_dynamic_partitions(CORPUS_BATCHES.name, [key])
    return dg.materialize(
        [defs.get_assets_def("raw_corpus")],
        resources=defs.resources,
        instance=instance,
        partition_key=key,
        tags=tags or {},
        raise_on_error=False,
    )


def _failure(result: dg.ExecuteInProcessResult):
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    return failures[0].step_failure_data


def test_raw_corpus_ingests_the_manifest_the_sensor_scanned(config_file, instance):
    _land(config_file, "b1", age_s=2 * SETTLE_S)
    first = _tick(config_file, instance)
    tags = next(r.tags for r in first.run_requests if r.partition_key == "landing-b1")
    result = _ingest(config_file, instance, "landing-b1", tags)
    assert result.success
    table = result.output_for_node("raw_corpus")
    assert table["original_path"].to_list() == ["audio/a.wav"]  # rejected (no audio), but read


def test_raw_corpus_refuses_a_manifest_replaced_after_the_scan(config_file, instance):
    folder = _land(config_file, "b1", age_s=2 * SETTLE_S)
    tags = next(
        r.tags for r in _tick(config_file, instance).run_requests if r.partition_key == "landing-b1"
    )
    (folder / "manifest.csv").write_text(CSV + "audio/b.wav,no thanks,bob\n")
    failure = _failure(_ingest(config_file, instance, "landing-b1", tags))
    assert failure.user_failure_data.metadata["reason"].value == MANIFEST_CHANGED
    assert "landing-b1 not ingested" in failure.error.message
    assert "replaced after the scan" in failure.error.message


def test_raw_corpus_fails_when_the_batch_vanishes_while_it_is_loaded(
    config_file, instance, monkeypatch
):
    folder = _land(config_file, "b1", age_s=2 * SETTLE_S)
    real_load = corpus.load_corpus

    def load_then_delete(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        shutil.rmtree(folder)  # the producer deletes the batch while it is being ingested
        return loaded

    monkeypatch.setattr(corpus, "load_corpus", load_then_delete)
    failure = _failure(_ingest(config_file, instance, "landing-b1"))  # started by hand: no tag
    assert failure.user_failure_data.metadata["reason"].value == BATCH_DELETED
    assert "manifest.csv is gone" in failure.error.message


def test_raw_corpus_fails_clearly_for_a_batch_deleted_before_the_run(config_file, instance):
    folder = _land(config_file, "b1", age_s=2 * SETTLE_S)
    shutil.rmtree(folder)
    failure = _failure(_ingest(config_file, instance, "landing-b1"))
    assert failure.user_failure_data.metadata["reason"].value == BATCH_DELETED
    assert "landing-b1" in failure.error.message
