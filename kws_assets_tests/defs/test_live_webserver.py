"""Operate the graph the way a Dagster user does, on a live ``dagster dev`` (webserver + daemon),
through the webserver's GraphQL API:

1. the code location lists the jobs, the schedule and the sensors (all stopped by default);
2. keywords are registered as partitions, and the landing-zone and retrain sensors are started;
3. a corpus batch dropped into the landing zone is registered by the landing-zone sensor and
   ingested by the run it requests (with the configured demo source, also a batch);
4. a backfill over the keyword partitions (``launchPartitionBackfill``) completes;
5. a materialization launched directly (``launchRun`` of ``curate_dataset``) succeeds, and the
   retrain sensor answers the new validated set with a retrain run that succeeds.

The tests run in this order and build on each other (one server for the session).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kws_assets.config import landing_zone, load_config
from kws_assets.defs.jobs import CURATE_JOB, INGEST_JOB, KEYWORD_JOB, RETRAIN_JOB
from kws_assets.defs.sensors import (
    AUTOMATION_SENSOR,
    KEYWORD_SENSOR,
    LANDING_SENSOR,
    RETRAIN_SENSOR,
    REVIEW_SENSOR,
)
from kws_assets.lib.partitions import KEYWORDS
from kws_assets_tests.defs.conftest import DagsterDev, wait_for
from kws_assets_tests.defs.landing_batches import write_landing_batch

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 240.0
BACKFILL_TIMEOUT_S = 300.0
SENSOR_TIMEOUT_S = 90.0
KEYWORDS_LIVE = ["yes", "no", "up"]
LANDED = "landing-b1"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

REPOSITORY_QUERY = """
query ($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      jobs { name }
      schedules { name scheduleState { status } }
      sensors { name sensorState { status } }
      assetNodes { assetKey { path } groupName isPartitioned }
    }
  }
}
"""

ADD_PARTITION = """
mutation ($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on AddDynamicPartitionSuccess { partitionKey }
    ... on DuplicateDynamicPartitionError { partitionName }
    ... on PythonError { message }
  }
}
"""

START_SENSOR = """
mutation ($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { name sensorState { status } }
    ... on PythonError { message }
  }
}
"""

PARTITIONS_QUERY = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { partitionKeys }
  }
}
"""

RUNS_QUERY = """
query ($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}
"""

LAUNCH_RUN = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

RUN_STATUS = """
query ($runId: ID!) {
  runOrError(runId: $runId) { ... on Run { status jobName } }
}
"""

LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
  }
}
"""

BACKFILL_STATUS = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill {
      status numPartitions runs(limit: 50) { runId status tags { key value } }
    }
  }
}
"""

MATERIALIZED_PARTITIONS = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions } }
    }
  }
}
"""


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def _runs(server: DagsterDev, job: str) -> list[dict]:
    data = server.graphql(RUNS_QUERY, filter={"pipelineName": job})
    return data["runsOrError"]["results"]


def _wait_run(server: DagsterDev, run_id: str) -> str:
    def finished():
        status = server.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]
        return status if status in FINISHED else None

    return wait_for(finished, RUN_TIMEOUT_S, f"run {run_id}", server.log_tail)


def _partition_keys(server: DagsterDev, asset: str) -> list[str]:
    node = server.graphql(PARTITIONS_QUERY, key={"path": [asset]})["assetNodeOrError"]
    return node.get("partitionKeys") or []


def _materialized(server: DagsterDev, asset: str) -> set[str]:
    node = server.graphql(MATERIALIZED_PARTITIONS, key={"path": [asset]})["assetNodeOrError"]
    return set(node["assetPartitionStatuses"]["materializedPartitions"])


def _start_sensor(server: DagsterDev, name: str) -> None:
    selector = {**server.graphql.repository_selector, "sensorName": name}
    result = server.graphql(START_SENSOR, selector=selector)["startSensor"]
    assert result["__typename"] == "Sensor", result
    assert result["sensorState"]["status"] == "RUNNING"


def test_code_location_lists_jobs_schedule_and_stopped_sensors(dagster_dev):
    data = dagster_dev.graphql(REPOSITORY_QUERY, selector=dagster_dev.graphql.repository_selector)
    repo = data["repositoryOrError"]
    assert repo["__typename"] == "Repository"
    assert {INGEST_JOB, KEYWORD_JOB, CURATE_JOB, RETRAIN_JOB} <= {j["name"] for j in repo["jobs"]}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
    assert schedules == {"nightly_retrain": "STOPPED"}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert sensors == dict.fromkeys(
        (LANDING_SENSOR, KEYWORD_SENSOR, RETRAIN_SENSOR, REVIEW_SENSOR, AUTOMATION_SENSOR),
        "STOPPED",
    )
    partitioned = {n["assetKey"]["path"][0] for n in repo["assetNodes"] if n["isPartitioned"]}
    assert partitioned == {"raw_corpus", "unknown_clips", "synthetic_clips", "aligned_keywords"}


def test_landing_zone_sensor_registers_and_ingests_a_new_batch(dagster_dev):
    selector = dagster_dev.graphql.repository_selector
    for keyword in KEYWORDS_LIVE:  # what "Add partition" in the UI does
        result = dagster_dev.graphql(
            ADD_PARTITION, selector=selector, name=KEYWORDS.name, key=keyword
        )
        assert result["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess", result
    assert _partition_keys(dagster_dev, "synthetic_clips") == KEYWORDS_LIVE
    assert _partition_keys(dagster_dev, "raw_corpus") == []

    _start_sensor(dagster_dev, RETRAIN_SENSOR)  # before any validated data exists
    cfg = load_config(dagster_dev.config_file)
    write_landing_batch(
        Path(landing_zone(cfg).root) / "b1",
        ["please say yes now", "the word is up again", "no maybe after dinner"],
    )
    _start_sensor(dagster_dev, LANDING_SENSOR)

    expected = {"source-demo", LANDED}
    wait_for(
        lambda: set(_partition_keys(dagster_dev, "raw_corpus")) >= expected,
        SENSOR_TIMEOUT_S,
        "the landing-zone sensor to register the batches",
        dagster_dev.log_tail,
    )

    def sensor_runs():
        runs = [
            r
            for r in _runs(dagster_dev, INGEST_JOB)
            if _tags(r).get("dagster/partition") in expected
        ]
        return runs if {_tags(r)["dagster/partition"] for r in runs} == expected else None

    runs = wait_for(
        sensor_runs, SENSOR_TIMEOUT_S, "the sensor's ingestion runs", dagster_dev.log_tail
    )
    assert len(runs) == len(expected)  # one run per batch, none twice
    for run in runs:
        assert _tags(run).get("dagster/sensor_name") == LANDING_SENSOR
        assert _wait_run(dagster_dev, run["runId"]) == "SUCCESS", dagster_dev.log_tail()
    assert _materialized(dagster_dev, "raw_corpus") == expected
    assert _materialized(dagster_dev, "unknown_clips") == expected


def test_backfill_over_keyword_partitions_completes(dagster_dev):
    params = {
        "partitionNames": KEYWORDS_LIVE,
        "title": "keywords yes/no/up",
        "assetSelection": [{"path": ["synthetic_clips"]}, {"path": ["aligned_keywords"]}],
    }
    launched = dagster_dev.graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def done():
        backfill = dagster_dev.graphql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
        return backfill if backfill["status"] not in {"REQUESTED", "CANCELING", "FAILING"} else None

    backfill = wait_for(done, BACKFILL_TIMEOUT_S, f"backfill {backfill_id}", dagster_dev.log_tail)
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, backfill
    assert backfill["numPartitions"] == len(KEYWORDS_LIVE)
    # multi-run backfill policy: one run per keyword, each holding both assets of that keyword
    runs = backfill["runs"]
    ranges = sorted(
        (
            _tags(r)["dagster/asset_partition_range_start"],
            _tags(r)["dagster/asset_partition_range_end"],
        )
        for r in runs
    )
    assert ranges == sorted((k, k) for k in KEYWORDS_LIVE)
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    for asset in ("synthetic_clips", "aligned_keywords"):
        assert _materialized(dagster_dev, asset) == set(KEYWORDS_LIVE)


def test_materialize_then_retrain_sensor_fires(dagster_dev):
    params = {"selector": {**dagster_dev.graphql.repository_selector, "jobName": CURATE_JOB}}
    launched = dagster_dev.graphql(LAUNCH_RUN, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    curate_run = launched["run"]["runId"]
    assert _wait_run(dagster_dev, curate_run) == "SUCCESS", dagster_dev.log_tail()

    retrain = wait_for(
        lambda: [
            r
            for r in _runs(dagster_dev, RETRAIN_JOB)
            if _tags(r).get("kws/validated_run") == curate_run
        ],
        SENSOR_TIMEOUT_S,
        "the retrain sensor's run",
        dagster_dev.log_tail,
    )
    (run,) = retrain
    assert _tags(run)["dagster/sensor_name"] == RETRAIN_SENSOR
    assert _wait_run(dagster_dev, run["runId"]) == "SUCCESS", dagster_dev.log_tail()
    cfg = load_config(dagster_dev.config_file)
    assert (cfg.storage_path("artifacts", "quantized_model") / "model.int8.onnx").is_file()
