"""The whole graph on Dagster's Celery executor: two workers, a Redis broker, PostgreSQL, S3.

What README's "Scaling out" tells an operator to run, all on 127.0.0.1 and stopped at the end:
``redis-server`` (broker and result backend), a PostgreSQL instance (``dagster.yaml``), moto's S3
for clips, tables, checkpoints and the artifact, and two ``dagster-celery worker start`` workers.
This process only orchestrates: it launches each run of the graph (ingest batch, keyword clips
per keyword, then curate-to-ship) with ``KWS_EXECUTOR=celery``, and every step is a Celery task
that one of the workers takes from Redis.  The test checks that both workers ran steps, and that
the outputs equal those of the same runs with the in-process executor.

espeak-ng's output depends on what its process synthesised before (``core/speech/tts.py``): the
workers therefore replace their pool process after each task (``--max-tasks-per-child=1``), or a
step's clips would depend on which steps its worker happened to take, and the reference runs
each run in a fresh process, as a daemon's run launcher does.  (One process for all the runs, as
``make demo`` does, renders the second keyword's clips after the first's: a few peak levels in
validated_set then differ by up to a few tenths of a dB.)
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
from kws_assets_tests.pipeline_runs import run_graph_one_process_per_run
from kws_assets_tests.servers import (
    CELERY_WORKER_YAML,
    POSTGRES_DAGSTER_YAML,
    CeleryWorker,
    PostgresServer,
    RedisServer,
    process_group_alive,
)

pytestmark = [
    pytest.mark.slow,
    # dagster-celery registers its execute_plan task again for every step it submits
    pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered"),
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKER_NAMES = ("kws-worker-1", "kws-worker-2")
CELERY_WORKER_KEY = "Celery worker"  # dagster-celery's engine event metadata: the worker's name
REFERENCE_DB = "reference"


def _deployment(folder: Path, storage_yaml: str, db_name: str | None = None) -> tuple[Path, Path]:
    """A kws.yaml (the micro config on S3) and a DAGSTER_HOME with the PostgreSQL dagster.yaml."""
    folder.mkdir()
    config = folder / "kws.yaml"
    config.write_text(
        (FIXTURES / "micro.yaml").read_text().replace("storage: {root: data}\n", "") + storage_yaml
    )
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
    partitions = register_config_partitions(
        instance, build_definitions(config).resources["settings"].config
    )
    plan = (
        [(INGEST_JOB, k) for k in partitions[CORPUS_BATCHES.name]]
        + [(KEYWORD_JOB, k) for k in partitions[KEYWORDS.name]]
        + [(PIPELINE_JOB, None)]
    )
    runs = []
    for job, partition in plan:
        tags = {"dagster/partition": partition} if partition else None
        with dg.execute_job(
            reconstructable_job(job), instance, tags=tags, raise_on_error=False
        ) as result:
            failures = [
                f"{e.step_key}: {e.step_failure_data.error.to_string()}"
                for e in result.all_events
                if e.is_step_failure
            ]
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
    return {
        f"{run_id}/{e.step_key}": e.dagster_event.pid
        for run_id in run_ids
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
    }


def _step_seconds(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[str, float]:
    """Where the Celery run's time went, summed over steps: ``queue`` from submission to the
    worker's pickup, ``start`` from pickup to the step's start (fresh pool process, job and
    resources), ``work`` the steps themselves (start to success)."""
    totals = {"queue": 0.0, "start": 0.0, "work": 0.0}
    for run_id in run_ids:
        times: dict[tuple[str, str], float] = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or entry.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.ENGINE_EVENT:
                if (event.message or "").startswith("Submitting celery task"):
                    times[(entry.step_key, "submitted")] = entry.timestamp
                elif CELERY_WORKER_KEY in event.engine_event_data.metadata:
                    times[(entry.step_key, "picked")] = entry.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_START:
                times[(entry.step_key, "started")] = entry.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                times[(entry.step_key, "done")] = entry.timestamp
        for step in {key for key, _ in times}:
            submitted, picked, started, done = (
                times.get((step, k)) for k in ("submitted", "picked", "started", "done")
            )
            if None not in (submitted, picked, started, done):
                totals["queue"] += picked - submitted
                totals["start"] += started - picked
                totals["work"] += done - started
    return totals


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
        conn = psycopg2.connect(
            host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password, dbname=pg.db_name
        )
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{REFERENCE_DB}"')
        finally:
            conn.close()

        # The reference: the same config and runs with the in-process executor, each run in a
        # fresh process (not one process for them all: see the module's docstring).
        ref_config, ref_home = _deployment(
            tmp_path / "reference", s3_server.storage_yaml(prefix="reference"), REFERENCE_DB
        )
        started = time.monotonic()
        ref_runs = run_graph_one_process_per_run(
            ref_config,
            ref_home,
            tmp_path / "reference.log",
            env={EXECUTOR_ENV: "in_process", "PYTHONPATH": str(PROJECT_ROOT)},
        )
        in_process_s = time.monotonic() - started

        # The Celery deployment: workers and this orchestrating process share the environment
        # an operator sets on every machine (instance, storage, broker).
        config, home = _deployment(tmp_path / "celery", s3_server.storage_yaml(prefix="celery"))
        for name, value in {
            "KWS_CONFIG": str(config),
            "DAGSTER_HOME": str(home),
            EXECUTOR_ENV: "celery",
            CELERY_BROKER_ENV: redis.url(0),
            CELERY_BACKEND_ENV: redis.url(1),
            "PYTHONPATH": str(PROJECT_ROOT),
        }.items():
            monkeypatch.setenv(name, value)
        worker_yaml = tmp_path / "celery" / "celery.yaml"
        worker_yaml.write_text(CELERY_WORKER_YAML)
        started = time.monotonic()
        workers = [
            CeleryWorker(
                name, worker_yaml, dict(os.environ), tmp_path / f"{name}.log", cwd=PROJECT_ROOT
            )
            for name in WORKER_NAMES
        ]
        for worker in workers:  # both start at once; each is stopped however the test ends
            stack.callback(worker.stop)
            worker.launch()
        for worker in workers:
            worker.wait_ready()
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

        spent = _step_seconds(instance, run_ids)
        print(
            f"\nin-process graph ({ref_runs} runs, a process each): {in_process_s:.1f} s; "
            f"celery graph (2 workers): {celery_s:.1f} s after {workers_ready_s:.1f} s of "
            f"worker start-up; steps per worker: "
            f"{ {w: len(s) for w, s in sorted(by_worker.items())} }; summed over steps: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in spent.items())
        )

        # The same outputs as the in-process run.
        ref_instance = stack.enter_context(dg.DagsterInstance.from_config(str(ref_home)))
        expected = _outputs(
            ref_config,
            ref_instance,
            {f"s3://{bucket}/reference/": "s3://B/", str(ref_config.parent): "ROOT"},
        )
        got = _outputs(
            config, instance, {f"s3://{bucket}/celery/": "s3://B/", str(config.parent): "ROOT"}
        )
        assert got["validated_set"]["uri"].str.starts_with("s3://B/clips/").all()
        for table in ("validated_set", "mfcc_table"):
            assert got[table].height > 0
            assert_frame_equal(got[table], expected[table])
        assert got["labels"] == expected["labels"]
        assert got["metrics"] == expected["metrics"]


def test_servers_leave_nothing_running(tmp_path):
    """What the test above starts is gone after it: the worker's whole process group (the
    dagster-celery command, the Celery main process and its pool) and redis-server."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("")  # a local instance is enough to start
    worker_yaml = tmp_path / "celery.yaml"
    worker_yaml.write_text(CELERY_WORKER_YAML)
    with RedisServer() as redis:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(tmp_path / "home"),
            CELERY_BROKER_ENV: redis.url(0),
            CELERY_BACKEND_ENV: redis.url(1),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        with CeleryWorker(
            "kws-worker-t", worker_yaml, env, tmp_path / "worker.log", cwd=PROJECT_ROOT
        ) as worker:
            assert process_group_alive(worker.proc.pid)
            assert "kws-worker-t@" in worker.log_file.read_text()
        assert not process_group_alive(worker.proc.pid)
        redis_proc = redis.proc
    assert redis_proc.poll() is not None and not redis._ready()
    assert not redis.folder.exists()
