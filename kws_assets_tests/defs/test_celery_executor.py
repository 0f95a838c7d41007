"""The whole graph on Dagster's Celery executor: two workers, a Redis broker, PostgreSQL, S3.

What README's "Scaling out" tells an operator to run, all on 127.0.0.1 and stopped at the end:
``redis-server`` (broker and result backend), a PostgreSQL instance (``dagster.yaml``), moto's S3
for clips, tables, checkpoints and the artifact, and two ``dagster-celery worker start`` workers.
This process only orchestrates: it launches each run of the graph (ingest batch, keyword clips
per keyword, then curate-to-ship) with ``KWS_EXECUTOR=celery``, and every step is a Celery task
that one of the workers takes from Redis.  The test checks that both workers ran steps, and that
the outputs equal those of an in-process run of the same config in one child process.

The workers replace their pool process after each task (``--max-tasks-per-child=1``): espeak-ng's
output depends on what its process synthesised before (``core/speech/tts.py``), so a step in a
recycled pool process would render clips that depend on which steps that worker happened to get.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg2
import pytest
from polars.testing import assert_frame_equal

from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import INGEST_JOB, KEYWORD_JOB, PIPELINE_JOB
from kws_assets.lib.executors import CELERY_BACKEND_ENV, CELERY_BROKER_ENV, EXECUTOR_ENV
from kws_assets.lib.partitions import CORPUS_BATCHES, KEYWORDS, register_config_partitions
from kws_assets_tests.conftest import FIXTURES
from kws_assets_tests.multiprocess_job import reconstructable_job
from kws_assets_tests.pipeline_runs import run_graph
from kws_assets_tests.servers import (
    CELERY_WORKER_YAML,
    POSTGRES_DAGSTER_YAML,
    CeleryWorker,
    PostgresServer,
    RedisServer,
)

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKER_NAMES = ("kws-worker-1", "kws-worker-2")
CELERY_WORKER_KEY = "Celery worker"  # dagster-celery's engine event metadata: the worker's name
REFERENCE_DB = "reference"


def _deployment(folder: Path, storage_yaml: str, db_name: str | None = None) -> tuple[Path, Path]:
    """A kws.yaml (the micro config on S3) and a DAGSTER_HOME with the PostgreSQL dagster.yaml."""
    folder.mkdir()
    config = folder / "kws.yaml"
    config.write_text((FIXTURES / "micro.yaml").read_text().replace("storage: {root: data}\n", "")
                      + storage_yaml)
    home = folder / "home"
    home.mkdir()
    instance_yaml = POSTGRES_DAGSTER_YAML
    if db_name:
        instance_yaml = instance_yaml.replace("{env: DAGSTER_PG_DB}", db_name)
    (home / "dagster.yaml").write_text(instance_yaml)
    return config, home


def _celery_graph_runs(config: Path, instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Ingest every batch, make every keyword's clips, then curate to ship: each run launched
    with the code location's executor (``$KWS_EXECUTOR``), in the order ``lib/in_process.py``
    uses."""
    partitions = register_config_partitions(instance, build_definitions(config)
                                            .resources["settings"].config)
    plan = ([(INGEST_JOB, k) for k in partitions[CORPUS_BATCHES.name]]
            + [(KEYWORD_JOB, k) for k in partitions[KEYWORDS.name]] + [(PIPELINE_JOB, None)])
    runs = []
    for job, partition in plan:
        tags = {"dagster/partition": partition} if partition else None
        with dg.execute_job(reconstructable_job(job), instance, tags=tags,
                            raise_on_error=False) as result:
            failures = [f"{e.step_key}: {e.step_failure_data.error.to_string()}"
                        for e in result.all_events if e.is_step_failure]
            assert result.success, f"{job} [{partition}] failed: {failures}"
            runs.append(result.dagster_run)
    return runs


def _steps_by_worker(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[str, set[str]]:
    """Worker name -> ``run/step`` keys, from the engine event each worker writes when it
    starts a step ("Executing steps ... in celery worker")."""
    workers: dict[str, set[str]] = {}
    for run_id in run_ids:
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            data = entry.dagster_event.engine_event_data
            if data is not None and CELERY_WORKER_KEY in data.metadata:
                worker = data.metadata[CELERY_WORKER_KEY].value
                workers.setdefault(worker, set()).add(f"{run_id}/{entry.step_key}")
    return workers


def _succeeded_steps(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[str, int]:
    """``run/step`` -> pid of the process whose step succeeded."""
    return {f"{run_id}/{e.step_key}": e.pid
            for run_id in run_ids
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)}


def _outputs(config: Path, instance: dg.DagsterInstance, replace: dict[str, str]) -> dict:
    """validated_set, mfcc_table and the artifact's labels and metrics of one deployment, every
    deployment-specific string (S3 prefix, storage root) replaced by a neutral name."""
    defs = build_definitions(config)

    def neutral(frame: pl.DataFrame) -> pl.DataFrame:
        texts = [c for c, t in frame.schema.items() if t == pl.String]
        for old, new in replace.items():
            frame = frame.with_columns(pl.col(texts).str.replace_all(old, new, literal=True))
        return frame

    artifact = defs.load_asset_value("quantized_model", instance=instance)
    return {
        "validated_set": neutral(defs.load_asset_value("validated_set", instance=instance)),
        "mfcc_table": neutral(defs.load_asset_value("mfcc_table", instance=instance)),
        "labels": json.loads((artifact.path / "labels.json").read_text()),
        "metrics": json.loads((artifact.path / "metrics.json").read_text()),
    }


def test_graph_on_two_celery_workers_matches_in_process(tmp_path, s3_server, monkeypatch):
    bucket = s3_server.bucket
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(PostgresServer())
        redis = stack.enter_context(RedisServer())
        for name, value in pg.environment.items():
            monkeypatch.setenv(name, value)
        with psycopg2.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password,
                              dbname=pg.db_name) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{REFERENCE_DB}"')
        conn.close()

        # The reference: the same config, in-process, one child process for the whole graph.
        ref_config, ref_home = _deployment(tmp_path / "reference",
                                           s3_server.storage_yaml(prefix="reference"), REFERENCE_DB)
        started = time.monotonic()
        run_graph(ref_config, ref_home, tmp_path / "reference.log", env={EXECUTOR_ENV: "in_process"})
        in_process_s = time.monotonic() - started

        # The Celery deployment: workers and this orchestrating process share the environment
        # an operator sets on every machine (instance, storage, broker).
        config, home = _deployment(tmp_path / "celery", s3_server.storage_yaml(prefix="celery"))
        for name, value in {"KWS_CONFIG": str(config), "DAGSTER_HOME": str(home),
                            EXECUTOR_ENV: "celery", CELERY_BROKER_ENV: redis.url(0),
                            CELERY_BACKEND_ENV: redis.url(1),
                            "PYTHONPATH": str(PROJECT_ROOT)}.items():
            monkeypatch.setenv(name, value)
        worker_yaml = tmp_path / "celery" / "celery.yaml"
        worker_yaml.write_text(CELERY_WORKER_YAML)
        started = time.monotonic()
        workers = [stack.enter_context(CeleryWorker(name, worker_yaml, dict(os.environ),
                                                    tmp_path / f"{name}.log", cwd=PROJECT_ROOT))
                   for name in WORKER_NAMES]
        workers_ready_s = time.monotonic() - started

        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        started = time.monotonic()
        runs = _celery_graph_runs(config, instance)
        celery_s = time.monotonic() - started
        run_ids = [r.run_id for r in runs]

        # Every step ran in a worker, and both workers ran steps.
        by_worker = _steps_by_worker(instance, run_ids)
        succeeded = _succeeded_steps(instance, run_ids)
        assert set(by_worker) == {w.node_name for w in workers}, by_worker
        assert set(succeeded) == set().union(*by_worker.values())
        assert os.getpid() not in succeeded.values()
        for worker in workers:
            log = worker.log_file.read_text(errors="replace")
            assert "Task execute_plan[" in log and " succeeded in " in log, log[-3000:]

        # The same outputs as the in-process run.
        ref_instance = stack.enter_context(dg.DagsterInstance.from_config(str(ref_home)))
        expected = _outputs(ref_config, ref_instance,
                            {f"s3://{bucket}/reference/": "s3://B/", str(ref_config.parent): "ROOT"})
        got = _outputs(config, instance,
                       {f"s3://{bucket}/celery/": "s3://B/", str(config.parent): "ROOT"})
        assert got["validated_set"]["uri"].str.starts_with("s3://B/clips/").all()
        for table in ("validated_set", "mfcc_table"):
            assert got[table].height > 0
            assert_frame_equal(got[table], expected[table])
        assert got["labels"] == expected["labels"]
        assert got["metrics"] == expected["metrics"]

        print(f"\nin-process graph (one child process): {in_process_s:.1f} s; "
              f"celery graph (2 workers): {celery_s:.1f} s after {workers_ready_s:.1f} s of "
              f"worker start-up; steps per worker: "
              f"{ {w: len(s) for w, s in sorted(by_worker.items())} }")
