"""PostgreSQL as the Dagster instance storage, with clips, tables and checkpoints on S3.

The configuration README's "Scaling out" section shows: a ``dagster.yaml`` pointing run,
event-log and schedule storage at PostgreSQL (dagster-postgres, every connection setting from
the environment) and a ``kws.yaml`` with ``storage.deployment: s3``.  The whole graph is
materialized by a child process; this process then reads the runs and materializations back from
PostgreSQL and the asset values back from S3 — nothing passes between them but the two servers.
Then one keyword's clips run again with the multiprocess executor (a process per step, as the
Kubernetes and Celery executors have a pod or worker per step).
"""

from __future__ import annotations

import os

import dagster as dg
import psycopg2
import pytest

from kws_assets.definitions import build_definitions
from kws_assets_tests.conftest import FIXTURES
from kws_assets_tests.multiprocess_job import keyword_clips_multiprocess
from kws_assets_tests.pipeline_runs import run_graph, secrets_found
from kws_assets_tests.servers import POSTGRES_DAGSTER_YAML, PostgresServer

pytestmark = pytest.mark.slow


def test_postgres_instance_with_s3_storage(tmp_path, s3_server, monkeypatch):
    with PostgresServer() as pg:
        for name, value in pg.environment.items():
            monkeypatch.setenv(name, value)
        home = tmp_path / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text(POSTGRES_DAGSTER_YAML)
        config = tmp_path / "kws.yaml"
        config.write_text(
            (FIXTURES / "micro.yaml").read_text().replace("storage: {root: data}\n", "")
            + s3_server.storage_yaml()
        )

        run_graph(config, home, tmp_path / "run.log")

        instance = dg.DagsterInstance.from_config(str(home))
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            runs = instance.get_runs()
            assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)

            record = instance.fetch_materializations(
                dg.AssetKey("quantized_model"), limit=1
            ).records
            assert record, "the artifact's materialization was read back from PostgreSQL"
            assert record[0].asset_materialization.metadata["int8_size_kb"].value > 0

            defs = build_definitions(config)
            validated = defs.load_asset_value("validated_set", instance=instance)
            clips_prefix = f"s3://{s3_server.bucket}/kws/clips/"
            assert validated.height > 0 and all(
                u.startswith(clips_prefix) for u in validated["uri"]
            )
            stored = set(s3_server.keys())
            assert {u[len(f"s3://{s3_server.bucket}/") :] for u in validated["uri"]} <= stored
            assert {
                "kws/tables/validated_set.parquet",
                "kws/tables/mfcc_table.parquet",
                "kws/models/kws_model.pt",
            } <= stored
            assert not any((tmp_path / "data" / d).exists() for d in ("clips", "tables", "models"))

            # The same deployment with each step in its own process (what the Kubernetes and
            # Celery executors do per pod / worker): steps share nothing but PostgreSQL and S3.
            monkeypatch.setenv("KWS_CONFIG", str(config))
            monkeypatch.setenv("DAGSTER_HOME", str(home))
            keyword = validated["label"].filter(~validated["label"].str.starts_with("_"))[0]
            with dg.execute_job(
                dg.reconstructable(keyword_clips_multiprocess),
                instance,
                tags={"dagster/partition": keyword},
            ) as result:
                assert result.success
                step_pids = {e.pid for e in result.all_events if e.is_step_success}
            assert len(step_pids) == 2 and os.getpid() not in step_pids
            runs = instance.get_runs()

            leaks = secrets_found(
                instance,
                [r.run_id for r in runs],
                [s3_server.secret_access_key, s3_server.access_key_id, pg.password],
                log_paths=(home, tmp_path / "run.log"),
            )
            assert leaks == []
        finally:
            instance.dispose()

        # The records really are in PostgreSQL, not in a local SQLite file beside them.
        with (
            psycopg2.connect(
                host="127.0.0.1",
                port=pg.port,
                user=pg.user,
                password=pg.password,
                dbname=pg.db_name,
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
            )
            assert cur.fetchone()[0] >= len(validated["label"].unique())
            cur.execute("SELECT count(*) FROM runs")
            assert cur.fetchone()[0] == len(runs)
        conn.close()
        assert not list(home.rglob("*.db")), "no SQLite storage was created"
