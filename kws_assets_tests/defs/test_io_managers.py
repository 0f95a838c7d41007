"""The Parquet and checkpoint IO managers on a local folder and on S3, and the per-deployment
resource wiring."""

import io

import dagster as dg
import polars as pl
import pytest
import torch
from dagster_aws.s3 import S3Resource

from kws_assets.settings import KwsConfig, StorageSettings
from kws_assets.core.storage.object_store import STAGING_DIR
from kws_assets.defs.io_managers import (
    PolarsParquetIOManager,
    S3PolarsParquetIOManager,
    S3TorchCheckpointIOManager,
    TorchCheckpointIOManager,
)
from kws_assets.defs.resources import (
    LocalClipStoreResource,
    S3ClipStoreResource,
    storage_resources,
)
from kws_assets.defs.retries import STORAGE_RETRY_POLICY

LETTERS = dg.StaticPartitionsDefinition(["a", "b"])


@dg.asset
def numbers() -> pl.DataFrame:
    return pl.DataFrame({"n": [1, 2, 3], "name": ["one", "two", "three"]})


@dg.asset
def doubled(numbers: pl.DataFrame) -> pl.DataFrame:
    return numbers.with_columns(pl.col("n") * 2)


@dg.asset(partitions_def=LETTERS)
def per_letter(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"letter": [context.partition_key] * 2, "i": [0, 1]})


@dg.asset
def all_letters(per_letter: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([per_letter[k] for k in sorted(per_letter)])


@dg.asset(io_manager_key="model_io_manager")
def checkpoint() -> dict:
    torch.manual_seed(0)
    return {"state_dict": torch.nn.Linear(4, 2).state_dict(), "labels": ["x", "y"]}


@dg.asset(retry_policy=STORAGE_RETRY_POLICY)
def unlucky() -> pl.DataFrame:
    return pl.DataFrame({"n": [1]})


def _materialize(assets, resources, instance, **kw) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, resources=resources, instance=instance, raise_on_error=False, **kw)


def _run_all(resources) -> dict:
    with dg.instance_for_test() as instance:
        first = _materialize([numbers, doubled, checkpoint], resources, instance)
        assert first.success
        for key in ("a", "b"):
            assert _materialize([per_letter], resources, instance, partition_key=key).success
        fan_in = _materialize([per_letter, all_letters], resources, instance,
                              selection=[all_letters])
        assert fan_in.success
        defs = dg.Definitions(assets=[numbers, doubled, per_letter, all_letters, checkpoint],
                              resources=resources)
        return {
            "doubled": defs.load_asset_value("doubled", instance=instance),
            "all_letters": defs.load_asset_value("all_letters", instance=instance),
            "checkpoint": defs.load_asset_value("checkpoint", instance=instance),
            "metadata": first.asset_materializations_for_node("doubled")[0].metadata,
        }


def _check_values(values: dict) -> None:
    assert values["doubled"]["n"].to_list() == [2, 4, 6]
    assert values["all_letters"]["letter"].to_list() == ["a", "a", "b", "b"]
    torch.manual_seed(0)
    expected = torch.nn.Linear(4, 2).state_dict()
    assert all(torch.equal(values["checkpoint"]["state_dict"][k], v) for k, v in expected.items())
    assert values["metadata"]["dagster/row_count"].value == 3


@pytest.mark.slow
def test_local_tables_partitions_and_checkpoints(tmp_path):
    resources = {"io_manager": PolarsParquetIOManager(base_path=str(tmp_path / "tables")),
                 "model_io_manager": TorchCheckpointIOManager(base_path=str(tmp_path / "models"))}
    values = _run_all(resources)
    _check_values(values)
    tables = tmp_path / "tables"
    assert sorted(p.relative_to(tables).as_posix() for p in tables.rglob("*.parquet")) == [
        "all_letters.parquet", "doubled.parquet", "numbers.parquet",
        "per_letter/a.parquet", "per_letter/b.parquet"]
    assert values["metadata"]["path"].value == str(tables / "doubled.parquet")
    assert (tmp_path / "models" / "checkpoint.pt").is_file()
    assert not list((tables / STAGING_DIR).iterdir())  # every staged write was renamed


@pytest.mark.slow
def test_s3_tables_partitions_and_checkpoints(s3_server):
    s3 = S3Resource(endpoint_url=s3_server.endpoint_url, max_attempts=2)
    resources = {
        "io_manager": S3PolarsParquetIOManager(s3=s3, bucket=s3_server.bucket, prefix="kws/tables"),
        "model_io_manager": S3TorchCheckpointIOManager(s3=s3, bucket=s3_server.bucket,
                                                       prefix="kws/models"),
    }
    values = _run_all(resources)
    _check_values(values)
    assert s3_server.keys() == [
        "kws/models/checkpoint.pt", "kws/tables/all_letters.parquet", "kws/tables/doubled.parquet",
        "kws/tables/numbers.parquet", "kws/tables/per_letter/a.parquet",
        "kws/tables/per_letter/b.parquet"]
    assert values["metadata"]["path"].value == f"s3://{s3_server.bucket}/kws/tables/doubled.parquet"
    body = s3_server.client().get_object(Bucket=s3_server.bucket, Key="kws/tables/doubled.parquet")
    assert pl.read_parquet(io.BytesIO(body["Body"].read()))["n"].to_list() == [2, 4, 6]


def test_missing_upstream_object_is_a_clear_file_not_found(tmp_path, s3_server):
    s3 = S3Resource(endpoint_url=s3_server.endpoint_url, max_attempts=2)
    for io_manager, where in (
            (PolarsParquetIOManager(base_path=str(tmp_path)), str(tmp_path / "numbers.parquet")),
            (S3PolarsParquetIOManager(s3=s3, bucket=s3_server.bucket, prefix="t"),
             f"s3://{s3_server.bucket}/t/numbers.parquet")):
        with dg.instance_for_test() as instance:
            result = _materialize([numbers, doubled], {"io_manager": io_manager}, instance,
                                  selection=[doubled])
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        text = failure.step_failure_data.error.to_string()
        assert where in text and "missing" in text


def test_permanent_s3_error_fails_at_once_naming_the_object(s3_server):
    s3 = S3Resource(endpoint_url=s3_server.endpoint_url, max_attempts=2)
    io_manager = S3PolarsParquetIOManager(s3=s3, bucket="kws-bucket-that-is-not-there", prefix="t")
    with dg.instance_for_test() as instance:
        result = _materialize([unlucky], {"io_manager": io_manager}, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data
    assert "s3://kws-bucket-that-is-not-there/t/unlucky.parquet" in error.error.to_string()
    assert "NoSuchBucket" in error.error.to_string()
    assert error.user_failure_data.metadata["reason"].value == "NoSuchBucket"
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"], \
        "a permanent error must not wait through the retry policy"


def test_storage_resources_follow_the_deployment(tmp_path):
    local = storage_resources(KwsConfig(storage=StorageSettings(root=str(tmp_path))))
    assert set(local) == {"clip_store", "io_manager", "model_io_manager"}
    assert isinstance(local["clip_store"], LocalClipStoreResource)
    assert local["clip_store"].store.root_uri == str(tmp_path.resolve() / "clips")

    s3_cfg = KwsConfig(storage=StorageSettings(
        root=str(tmp_path), deployment="s3", s3_bucket="my-kws-data", s3_prefix="team/kws",
        s3_endpoint_url="http://127.0.0.1:9", s3_retries=7))
    s3 = storage_resources(s3_cfg)
    assert set(s3) == {"s3", "clip_store", "io_manager", "model_io_manager"}
    assert isinstance(s3["clip_store"], S3ClipStoreResource)
    assert s3["clip_store"].prefix == "team/kws/clips" and s3["io_manager"].prefix == "team/kws/tables"
    assert s3["s3"].max_attempts == 7 and s3["s3"].endpoint_url == "http://127.0.0.1:9"
    # No credential fields are set: boto3 takes them from the environment.
    assert s3["s3"].aws_access_key_id is None and s3["s3"].aws_secret_access_key is None


@pytest.mark.parametrize("bad", [{"deployment": "s3"}, {"deployment": "s3", "s3_bucket": "Bad_Name"},
                                 {"deployment": "s3", "s3_bucket": "ok-bucket", "s3_prefix": "a/../b"},
                                 {"deployment": "gcs"}, {"aws_secret_access_key": "x"}])
def test_storage_settings_reject_bad_values(bad):
    with pytest.raises(ValueError):
        StorageSettings(**bad)
