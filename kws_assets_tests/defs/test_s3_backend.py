"""The S3 backend under faults: a proxy in front of the moto server injects HTTP 5xx, dropped
connections and 403s.  Transient faults are absorbed by the S3 client's retries, longer outages
by the step (dg.RetryRequested from the storage layer); permanent errors fail the step at once,
naming the object."""

import shutil

import dagster as dg
import numpy as np
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource

from kws_assets.core.storage.clip_store import ClipStore, clip_id_for
from kws_assets.core.storage.object_store import REASON_NO_CREDENTIALS, StorageError
from kws_assets.definitions import build_definitions
from kws_assets.lib.partitions import KEYWORDS
from kws_assets.settings import UNKNOWN_LABEL
from kws_assets_tests.conftest import FIXTURES
from kws_assets_tests.pipeline_runs import secrets_found
from kws_assets_tests.servers import DROP_CONNECTION, FaultProxy

SR = 16000
CLIENT_RETRIES = 1  # storage.s3_retries in the pipeline tests: 2 attempts per request


def _tone() -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)


def test_transient_faults_are_absorbed_by_client_retries(s3_server):
    with FaultProxy(s3_server.endpoint_url) as proxy:
        # max_attempts is botocore's retry count: 2 retries, 3 attempts per request.
        client = S3Resource(endpoint_url=proxy.endpoint_url, max_attempts=2).get_client()
        store = ClipStore.on_s3(client, s3_server.bucket, "clips")
        key = store.key_for("synthetic", "yes", clip_id_for("retry"))

        errors = proxy.fail(2, 500, "InternalError", methods=("PUT",))
        uri = store.put(key, _tone(), SR)
        assert errors.served == 2
        slow = proxy.fail(1, 503, "SlowDown", methods=("GET",))
        dropped = proxy.fail(1, DROP_CONNECTION, "", methods=("GET",))
        first, second = store.read(uri), store.read(uri)
        assert slow.served == 1 and dropped.served == 1
        assert np.array_equal(first.samples, second.samples)
        assert np.max(np.abs(first.samples - _tone())) < 2 / 32768

        outage = proxy.fail(None, 500, "InternalError", methods=("PUT",))
        with pytest.raises(StorageError) as err:
            store.put(key, _tone(), SR)
        assert err.value.transient and err.value.reason == "InternalError"
        assert uri in str(err.value) and "3 attempt(s)" in str(err.value)
        assert outage.served == 3
        # The failed overwrite left the stored clip as it was.
        assert np.array_equal(store.read(uri).samples, first.samples)


def test_missing_credentials_are_a_clear_permanent_error(s3_server, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    client = S3Resource(endpoint_url=s3_server.endpoint_url, max_attempts=0).get_client()
    store = ClipStore.on_s3(client, s3_server.bucket, "clips")
    with pytest.raises(StorageError) as err:
        store.put("demo/yes/a.wav", _tone(), SR)
    assert err.value.reason == REASON_NO_CREDENTIALS and not err.value.transient
    assert "AWS_ACCESS_KEY_ID" in str(
        err.value
    ) and f"s3://{s3_server.bucket}/clips/demo/yes/a.wav" in str(err.value)


def test_no_asset_or_check_carries_a_blanket_retry_policy():
    """Retries come from the storage layer (transient errors only), never from a policy that
    would re-run a deterministic failure."""
    defs = build_definitions(FIXTURES / "micro.yaml")
    nodes = {
        a.node_def.name: a.node_def.retry_policy
        for a in defs.resolve_asset_graph().assets_defs
        if a.is_executable
    }
    assert {"synthetic_clips", "validated_set", "mfcc_table", "kws_model"} <= set(nodes)
    assert {name: policy for name, policy in nodes.items() if policy is not None} == {}


@pytest.fixture
def s3_keyword_run(s3_server, tmp_path):
    """Materialize the real ``synthetic_clips`` asset for keyword 'yes', with S3 storage behind
    a fault proxy; yields (proxy, run function)."""
    with FaultProxy(s3_server.endpoint_url) as proxy:
        config = tmp_path / "kws.yaml"
        shutil.copy(FIXTURES / "micro.yaml", config)
        config.write_text(
            config.read_text().replace("storage: {root: data}\n", "")
            + s3_server.storage_yaml(endpoint_url=proxy.endpoint_url, retries=CLIENT_RETRIES)
        )
        defs = build_definitions(config)

        def run() -> tuple[dg.ExecuteInProcessResult, dg.DagsterInstance]:
            instance = dg.DagsterInstance.ephemeral()
            instance.add_dynamic_partitions(KEYWORDS.name, ["yes"])
            result = dg.materialize(
                [defs.get_assets_def("synthetic_clips")],
                resources=defs.resources,
                instance=instance,
                partition_key="yes",
                raise_on_error=False,
            )
            return result, instance

        yield proxy, run


def _events(result: dg.ExecuteInProcessResult, event_type: str) -> list:
    return [e for e in result.all_events if e.event_type_value == event_type]


@pytest.mark.slow
def test_outage_longer_than_client_retries_is_retried_by_the_step(s3_keyword_run, s3_server):
    proxy, run = s3_keyword_run
    # The table write fails on every client attempt once: the storage layer asks for a step retry.
    outage = proxy.fail(
        CLIENT_RETRIES + 1, 500, "InternalError", path_contains="/kws/tables/", methods=("PUT",)
    )
    result, instance = run()
    assert result.success
    assert outage.served == CLIENT_RETRIES + 1
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == 1
    table = result.output_for_node("synthetic_clips")
    assert "yes" in set(table["label"]) and set(table["label"]) <= {"yes", UNKNOWN_LABEL}
    keys = set(s3_server.keys())
    assert "kws/tables/synthetic_clips/yes.parquet" in keys
    prefix = f"s3://{s3_server.bucket}/"
    assert {u[len(prefix) :] for u in table["uri"]} <= keys
    stored = pl.read_parquet(
        s3_server.client()
        .get_object(Bucket=s3_server.bucket, Key="kws/tables/synthetic_clips/yes.parquet")["Body"]
        .read()
    )
    assert stored.equals(table)
    assert (
        secrets_found(
            instance, [result.run_id], [s3_server.secret_access_key, s3_server.access_key_id]
        )
        == []
    )


@pytest.mark.slow
def test_permanent_error_fails_at_once_naming_the_object(s3_keyword_run, s3_server):
    proxy, run = s3_keyword_run
    denied = proxy.fail(None, 403, "AccessDenied", path_contains="/kws/clips/", methods=("PUT",))
    result, _ = run()
    assert not result.success
    assert denied.served == 1, "a 403 is retried neither by the client nor by the step"
    assert _events(result, "STEP_UP_FOR_RETRY") == []
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
    message = failure.error.to_string()
    assert f"s3://{s3_server.bucket}/kws/clips/synthetic/yes/" in message
    assert "AccessDenied" in message and "not retried" in message
    assert failure.user_failure_data.metadata["reason"].value == "AccessDenied"
