"""Everything on S3 through the one S3 configuration (``storage.s3_*``): a corpus root and a
landing zone on the bucket as well as clips, tables, checkpoints and artifacts.

``AWS_ENDPOINT_URL`` is removed from the environment here, so the only way any library can find
the (moto) server is the endpoint in the config: a call site that bypassed the configuration
would try real AWS and fail.  The end-to-end test then re-runs ``evaluation`` and the int8
checks in a fresh process whose local storage root is an empty folder — only the bucket is
shared, so every input is read back from S3.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import s3fs

import kws_assets
from kws_assets.config import landing_zone, load_config
from kws_assets.core.corpus.landing import configured_batches, landed_batches, landing_scan
from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import CURATE_JOB, INGEST_JOB, KEYWORD_JOB, RETRAIN_JOB
from kws_assets.lib.in_process import failed_steps
from kws_assets.lib.partitions import CORPUS_BATCHES, KEYWORDS
from kws_assets_tests.conftest import FIXTURES
from kws_assets_tests.defs.landing_batches import write_landing_batch
from kws_assets_tests.pipeline_runs import secrets_found
from kws_assets_tests.servers import FaultProxy

CLIENT_RETRIES = 1  # storage.s3_retries: 2 attempts per request
CHECKS = {"int8_accuracy_drop", "int8_artifact_size"}

# The second process: a fresh (ephemeral) instance and an empty local storage root; it runs
# evaluation and the int8 checks of quantized_model, every input coming from the bucket.
RECHECK = r"""
import json, sys
import dagster as dg
from kws_assets.definitions import build_definitions
from kws_assets.lib.in_process import failed_steps

defs = build_definitions()
result = dg.materialize(
    [*defs.assets, *defs.asset_checks], resources=defs.resources,
    instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
    selection=dg.AssetSelection.assets("evaluation")
    | dg.AssetSelection.checks_for_assets("quantized_model"))
print(json.dumps({
    "success": result.success,
    "failed": failed_steps(result),
    "materialized": sorted(e.asset_key.to_user_string()
                           for e in result.get_asset_materialization_events()),
    "checks": {e.check_name: e.passed for e in result.get_asset_check_evaluations()},
}))
"""


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The moto bucket; the environment names no endpoint (only the config does)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    s3fs.S3FileSystem.clear_instance_cache()
    yield s3_server
    s3fs.S3FileSystem.clear_instance_cache()


def _upload(s3, folder: Path, prefix: str) -> None:
    client = s3.client()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    # The manifest last, as a producer lands a batch.
    for path in sorted(files, key=lambda p: p.name.startswith("manifest")):
        client.put_object(
            Bucket=s3.bucket,
            Key=f"{prefix}/{path.relative_to(folder).as_posix()}",
            Body=path.read_bytes(),
        )


def _config(s3, folder: Path, root: Path, endpoint_url: str, corpus: str, landing: str) -> Path:
    """micro.yaml with its demo corpus replaced by a manifest corpus at ``corpus`` and
    everything stored on the bucket (endpoint only from here)."""
    text = (FIXTURES / "micro.yaml").read_text()
    sources = re.search(r"^sources:\n(?:  .*\n)+", text, flags=re.MULTILINE)
    assert sources and "storage: {root: data}\n" in text, "micro.yaml changed shape"
    text = text.replace(sources.group(0), "").replace("storage: {root: data}\n", "")
    path = folder / "kws.yaml"
    overrides = {
        "sources": [{"kind": "manifest", "name": "remote", "root": corpus}],
        "storage": {
            "root": str(root),
            "deployment": "s3",
            "s3_bucket": s3.bucket,
            "s3_prefix": "kws",
            "s3_endpoint_url": endpoint_url,
            "s3_region": s3.region,
            "s3_retries": CLIENT_RETRIES,
        },
        "automation": {"landing_root": landing, "landing_settle_s": 0},
    }
    # JSON is YAML's flow style: one top-level key per line.
    path.write_text(
        text + "".join(f"{key}: {json.dumps(value)}\n" for key, value in overrides.items())
    )
    return path


def _events(result: dg.ExecuteInProcessResult, event_type: str) -> list:
    return [e for e in result.all_events if e.event_type_value == event_type]


def test_corpus_root_outage_longer_than_client_retries_is_retried_by_the_step(s3, tmp_path):
    write_landing_batch(tmp_path / "corpus", ["say yes", "no thanks"])
    _upload(s3, tmp_path / "corpus", "corpus")
    with FaultProxy(s3.endpoint_url) as proxy:
        config = _config(
            s3,
            tmp_path,
            tmp_path / "data",
            proxy.endpoint_url,
            f"s3://{s3.bucket}/corpus",
            f"s3://{s3.bucket}/landing",
        )
        (tmp_path / "dagster_home").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
            defs = build_definitions(config)  # inside: loading definitions reads the instance
            instance.add_dynamic_partitions(CORPUS_BATCHES.name, ["source-remote"])
            # Every client attempt of the first corpus-root request fails: an outage the
            # client's retries cannot absorb.  The step must be retried, not the source rejected.
            outage = proxy.fail(
                CLIENT_RETRIES + 1,
                500,
                "InternalError",
                path_contains=f"/{s3.bucket}/corpus",
                methods=("HEAD", "GET"),
            )
            result = dg.materialize(
                [defs.get_assets_def("raw_corpus")],
                resources=defs.resources,
                instance=instance,
                partition_key="source-remote",
                raise_on_error=False,
            )
    assert result.success, failed_steps(result)
    assert outage.served == CLIENT_RETRIES + 1
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == 1
    table = result.output_for_node("raw_corpus")
    assert table.height == 2 and table["reject_reason"].is_null().all()
    assert "kws/tables/raw_corpus/source-remote.parquet" in s3.keys("kws/tables/")


@pytest.mark.slow
def test_s3_corpus_and_landing_zone_then_evaluation_in_a_fresh_process(s3, tmp_path):
    write_landing_batch(tmp_path / "corpus", ["yes I can", "no thank you"], voice="en-us+m3")
    write_landing_batch(
        tmp_path / "b1", ["say yes", "no more"], voice="en-us+f2", speaker="reader2"
    )
    _upload(s3, tmp_path / "corpus", "corpus")
    _upload(s3, tmp_path / "b1", "landing/b1")
    first = tmp_path / "first"
    first.mkdir()
    config = _config(
        s3,
        first,
        first / "data",
        s3.endpoint_url,
        f"s3://{s3.bucket}/corpus",
        f"s3://{s3.bucket}/landing",
    )

    # Ingest -> curate -> retrain, the partitioned jobs one by one (as lib/in_process does);
    # the batches are the ones the landing sensor would see.
    cfg = load_config(config)
    scan = landing_scan(landing_zone(cfg))
    batches = configured_batches(
        cfg.sources, cfg.keywords, cfg.language, cfg.audio.sample_rate
    ) + landed_batches(scan, cfg.keywords)
    assert [b.key for b in batches] == ["source-remote", "landing-b1"] and scan.problems == []
    run_ids = []
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        defs = build_definitions(config)  # inside: loading definitions reads the instance
        instance.add_dynamic_partitions(CORPUS_BATCHES.name, [b.key for b in batches])
        instance.add_dynamic_partitions(KEYWORDS.name, list(cfg.keywords))
        plan = (
            [(INGEST_JOB, b.key) for b in batches]
            + [(KEYWORD_JOB, k) for k in cfg.keywords]
            + [(CURATE_JOB, None), (RETRAIN_JOB, None)]
        )
        for job, partition in plan:
            result = defs.resolve_job_def(job).execute_in_process(
                instance=instance, partition_key=partition, raise_on_error=False
            )
            assert result.success, (job, partition, failed_steps(result))
            run_ids.append(result.run_id)
            if job == INGEST_JOB:
                table = result.output_for_node("raw_corpus")
                assert table.height == 2 and table["reject_reason"].is_null().all(), partition
        assert secrets_found(instance, run_ids, [s3.secret_access_key, s3.access_key_id]) == []
    keys = set(s3.keys("kws/"))
    for key in (
        "kws/tables/raw_corpus/landing-b1.parquet",
        "kws/tables/validated_set.parquet",
        "kws/models/kws_model.pt",
        "kws/artifacts/quantized_model/model.int8.onnx",
    ):
        assert key in keys, key
    assert any(k.startswith("kws/clips/") for k in keys)
    assert not (first / "data" / "tables").exists()  # tables went to S3, not to the local root

    # A fresh process, a fresh instance, an empty local root: only the bucket is shared.
    second = tmp_path / "second"
    (second / "data").mkdir(parents=True)
    config_b = _config(
        s3,
        second,
        second / "data",
        s3.endpoint_url,
        f"s3://{s3.bucket}/corpus",
        f"s3://{s3.bucket}/landing",
    )
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    # The child imports the same kws_assets as this test (a worktree, not another checkout).
    source_root = str(Path(kws_assets.__file__).resolve().parents[1])
    env.update(
        {
            "KWS_CONFIG": str(config_b),
            "DAGSTER_HOME": str(second / "dagster_home"),
            "PYTHONPATH": os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")])),
        }
    )
    (second / "dagster_home").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", RECHECK],
        env=env,
        cwd=second,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["success"], (report["failed"], proc.stderr[-4000:])
    assert report["materialized"] == ["evaluation"]
    assert report["checks"] == dict.fromkeys(CHECKS, True)
    assert s3.keys("kws/artifacts/evaluation/"), "the re-run evaluation is stored on the bucket"
    local = {p.relative_to(second / "data").parts[0] for p in (second / "data").rglob("*")}
    assert local <= {"artifact_cache", "cache", "ingest", "corpora"}, local  # caches only
