"""The Parquet, checkpoint and artifact-folder IO managers on a local folder and on S3, the
step retries of transient storage errors, and the per-deployment resource wiring."""

import io

import dagster as dg
import polars as pl
import pytest
import torch
from dagster_aws.s3 import S3Resource

from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.storage.artifact_store import INDEX_FILE, ArtifactFolder
from kws_assets.core.storage.object_store import STAGING_DIR, StorageError
from kws_assets.lib.io_managers import (
    ArtifactIOManager,
    PolarsParquetIOManager,
    S3ArtifactIOManager,
    S3PolarsParquetIOManager,
    S3TorchCheckpointIOManager,
    TorchCheckpointIOManager,
    TorchCheckpointUPathIOManager,
)
from kws_assets.lib.resources import (
    LocalClipStoreResource,
    S3ClipStoreResource,
    storage_resources,
)
from kws_assets.lib.retries import (
    STEP_MAX_RETRIES,
    FailFastObjectStore,
    fail_fast_on_permanent_errors,
)
from kws_assets.settings import KwsConfig, StorageSettings

LETTERS = dg.StaticPartitionsDefinition(["a", "b"])


@dg.asset
def numbers() -> pl.DataFrame:
    return pl.DataFrame({"n": [1, 2, 3], "name": ["one", "two", "three"]})


@dg.asset
def doubled(numbers: pl.DataFrame) -> pl.DataFrame:
    return numbers.with_columns(pl.col("n") * 2)


@dg.asset
def big_numbers(numbers: pl.LazyFrame) -> pl.DataFrame:
    # an input annotated pl.LazyFrame is scanned: only the rows asked for are read
    assert isinstance(numbers, pl.LazyFrame)
    return numbers.filter(pl.col("n") >= 2).select("name").collect()


@dg.asset(partitions_def=LETTERS)
def per_letter(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"letter": [context.partition_key] * 2, "i": [0, 1]})


@dg.asset
def all_letters(per_letter: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([per_letter[k] for k in sorted(per_letter)])


@dg.asset(io_manager_key="model_io_manager")
def checkpoint() -> ModelCheckpoint:
    torch.manual_seed(0)
    return ModelCheckpoint(
        family="test",
        labels=["x", "y"],
        state_dict=torch.nn.Linear(4, 2).state_dict(),
        network={"width": 4},
        front_end={},
    )


@dg.asset(io_manager_key="artifact_io_manager")
def report() -> ArtifactFolder:
    folder = ArtifactFolder.staging()
    folder.file("report.json").write_text('{"accuracy": 0.5}')
    (folder.path / "plots").mkdir()
    folder.file("plots/curve.png").write_bytes(b"\x89PNG fake")
    return folder


@dg.asset
def report_size(report: ArtifactFolder) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "bytes": [
                report.file("report.json").stat().st_size,
                report.file("plots/curve.png").stat().st_size,
            ]
        }
    )


@dg.asset
def unlucky() -> pl.DataFrame:
    return pl.DataFrame({"n": [1]})


def _materialize(assets, resources, instance, **kw) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets, resources=resources, instance=instance, raise_on_error=False, **kw
    )


def _run_all(resources) -> dict:
    with dg.instance_for_test() as instance:
        first = _materialize(
            [numbers, doubled, big_numbers, checkpoint, report, report_size], resources, instance
        )
        assert first.success
        for key in ("a", "b"):
            assert _materialize([per_letter], resources, instance, partition_key=key).success
        fan_in = _materialize(
            [per_letter, all_letters], resources, instance, selection=[all_letters]
        )
        assert fan_in.success
        defs = dg.Definitions(
            assets=[numbers, doubled, per_letter, all_letters, checkpoint, report, report_size],
            resources=resources,
        )
        return {
            "report": defs.load_asset_value("report", instance=instance),
            "report_size": defs.load_asset_value("report_size", instance=instance),
            "doubled": defs.load_asset_value("doubled", instance=instance),
            "big_numbers": first.output_for_node("big_numbers"),
            "all_letters": defs.load_asset_value("all_letters", instance=instance),
            "checkpoint": defs.load_asset_value("checkpoint", instance=instance),
            "stored": _stored(resources["model_io_manager"]),
            "metadata": first.asset_materializations_for_node("doubled")[0].metadata,
        }


def _stored(factory: dg.ConfigurableIOManagerFactory) -> ModelCheckpoint:
    """What a re-run of ``checkpoint`` warm-starts from: the object its IO manager stored (read
    without an input context); a key never materialized is a FileNotFoundError."""
    store = factory.create_io_manager(dg.build_init_resource_context())
    assert isinstance(store, TorchCheckpointUPathIOManager)
    with pytest.raises(FileNotFoundError):
        store.stored(dg.AssetKey("never_materialized"))
    return store.stored(dg.AssetKey("checkpoint"))


def _check_values(values: dict) -> None:
    assert values["doubled"]["n"].to_list() == [2, 4, 6]
    assert values["big_numbers"]["name"].to_list() == ["two", "three"]
    assert values["all_letters"]["letter"].to_list() == ["a", "a", "b", "b"]
    torch.manual_seed(0)
    expected = torch.nn.Linear(4, 2).state_dict()
    assert isinstance(values["checkpoint"], ModelCheckpoint) and values["checkpoint"].labels == [
        "x",
        "y",
    ]
    assert all(torch.equal(values["checkpoint"].state_dict[k], v) for k, v in expected.items())
    assert values["stored"].labels == ["x", "y"]
    assert all(torch.equal(values["stored"].state_dict[k], v) for k, v in expected.items())
    assert values["metadata"]["dagster/row_count"].value == 3
    assert values["report"].file("report.json").read_text() == '{"accuracy": 0.5}'
    assert values["report"].file("plots/curve.png").read_bytes() == b"\x89PNG fake"
    assert values["report_size"]["bytes"].to_list() == [17, 9]


@pytest.mark.slow
def test_local_tables_partitions_and_checkpoints(tmp_path):
    resources = {
        "io_manager": PolarsParquetIOManager(base_path=str(tmp_path / "tables")),
        "model_io_manager": TorchCheckpointIOManager(base_path=str(tmp_path / "models")),
        "artifact_io_manager": ArtifactIOManager(base_path=str(tmp_path / "artifacts")),
    }
    values = _run_all(resources)
    _check_values(values)
    tables = tmp_path / "tables"
    assert sorted(p.relative_to(tables).as_posix() for p in tables.rglob("*.parquet")) == [
        "all_letters.parquet",
        "big_numbers.parquet",
        "doubled.parquet",
        "numbers.parquet",
        "per_letter/a.parquet",
        "per_letter/b.parquet",
        "report_size.parquet",
    ]
    assert values["metadata"]["path"].value == str(tables / "doubled.parquet")
    assert (tmp_path / "models" / "checkpoint.pt").is_file()
    # A local artifact is a real folder a user can open, with its index.
    assert values["report"].path == tmp_path / "artifacts" / "report"
    assert (tmp_path / "artifacts" / "report" / INDEX_FILE).is_file()
    assert not list((tables / STAGING_DIR).iterdir())  # every staged write was renamed


@pytest.mark.slow
def test_s3_tables_partitions_checkpoints_and_artifacts(s3_server, tmp_path):
    s3 = S3Resource(endpoint_url=s3_server.endpoint_url, max_attempts=2)
    resources = {
        "io_manager": S3PolarsParquetIOManager(s3=s3, bucket=s3_server.bucket, prefix="kws/tables"),
        "model_io_manager": S3TorchCheckpointIOManager(
            s3=s3, bucket=s3_server.bucket, prefix="kws/models"
        ),
        "artifact_io_manager": S3ArtifactIOManager(
            s3=s3,
            bucket=s3_server.bucket,
            prefix="kws/artifacts",
            cache_root=str(tmp_path / "cache"),
        ),
    }
    values = _run_all(resources)
    _check_values(values)
    # Read back through the local cache of this "machine": a folder verified against the index.
    assert values["report"].path.is_relative_to(tmp_path / "cache")
    assert s3_server.keys() == [
        "kws/artifacts/report/artifact.json",
        "kws/artifacts/report/plots/curve.png",
        "kws/artifacts/report/report.json",
        "kws/models/checkpoint.pt",
        "kws/tables/all_letters.parquet",
        "kws/tables/big_numbers.parquet",
        "kws/tables/doubled.parquet",
        "kws/tables/numbers.parquet",
        "kws/tables/per_letter/a.parquet",
        "kws/tables/per_letter/b.parquet",
        "kws/tables/report_size.parquet",
    ]
    assert values["metadata"]["path"].value == f"s3://{s3_server.bucket}/kws/tables/doubled.parquet"
    body = s3_server.client().get_object(Bucket=s3_server.bucket, Key="kws/tables/doubled.parquet")
    assert pl.read_parquet(io.BytesIO(body["Body"].read()))["n"].to_list() == [2, 4, 6]


def test_missing_upstream_object_is_a_clear_file_not_found(tmp_path, s3_server):
    s3 = S3Resource(endpoint_url=s3_server.endpoint_url, max_attempts=2)
    for io_manager, where in (
        (PolarsParquetIOManager(base_path=str(tmp_path)), str(tmp_path / "numbers.parquet")),
        (
            S3PolarsParquetIOManager(s3=s3, bucket=s3_server.bucket, prefix="t"),
            f"s3://{s3_server.bucket}/t/numbers.parquet",
        ),
    ):
        with dg.instance_for_test() as instance:
            result = _materialize(
                [numbers, doubled], {"io_manager": io_manager}, instance, selection=[doubled]
            )
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
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"], (
        "a permanent error is not retried"
    )


class _Flaky(FailFastObjectStore):
    """Raises a transient error on the first ``failures`` writes, then behaves."""

    def __init__(self, inner, failures: int):
        super().__init__(inner)
        self.failures = failures

    def put_bytes(self, key: str, data: bytes) -> str:
        if self.failures > 0:
            self.failures -= 1
            with fail_fast_on_permanent_errors():
                raise StorageError(f"mem://{key}", "SlowDown", "injected", transient=True)
        return super().put_bytes(key, data)


def test_a_transient_storage_error_is_retried_by_the_step(tmp_path, monkeypatch):
    import kws_assets.lib.io_managers as io_managers

    flaky = {"store": None}

    def objects(base_path: str):
        flaky["store"] = flaky["store"] or _Flaky(
            io_managers.LocalObjectStore.at(base_path), failures=1
        )
        return flaky["store"]

    monkeypatch.setattr(io_managers, "_local_objects", objects)
    monkeypatch.setattr("kws_assets.lib.retries.STEP_RETRY_DELAY_S", 0.01)
    with dg.instance_for_test() as instance:
        result = _materialize(
            [unlucky], {"io_manager": PolarsParquetIOManager(base_path=str(tmp_path))}, instance
        )
    assert result.success
    assert len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 1
    assert (tmp_path / "unlucky.parquet").is_file()


def test_an_outage_longer_than_the_step_retries_fails_with_its_reason(tmp_path, monkeypatch):
    import kws_assets.lib.io_managers as io_managers

    store = {"s": None}

    def objects(base_path: str):
        store["s"] = store["s"] or _Flaky(io_managers.LocalObjectStore.at(base_path), failures=99)
        return store["s"]

    monkeypatch.setattr(io_managers, "_local_objects", objects)
    monkeypatch.setattr("kws_assets.lib.retries.STEP_RETRY_DELAY_S", 0.01)
    with dg.instance_for_test() as instance:
        result = _materialize(
            [unlucky], {"io_manager": PolarsParquetIOManager(base_path=str(tmp_path))}, instance
        )
    assert not result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == STEP_MAX_RETRIES


@dg.asset
def always_wrong() -> pl.DataFrame:
    raise ValueError("a bug: deterministic")


def test_a_deterministic_failure_runs_once(tmp_path):
    with dg.instance_for_test() as instance:
        result = _materialize(
            [always_wrong],
            {"io_manager": PolarsParquetIOManager(base_path=str(tmp_path))},
            instance,
        )
    assert not result.success
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    assert len([e for e in result.all_events if e.event_type_value == "STEP_START"]) == 1


def test_storage_resources_follow_the_deployment(tmp_path):
    local = storage_resources(KwsConfig(storage=StorageSettings(root=str(tmp_path))))
    assert set(local) == {"clip_store", "io_manager", "model_io_manager", "artifact_io_manager"}
    assert isinstance(local["clip_store"], LocalClipStoreResource)
    assert local["clip_store"].store.root_uri == str(tmp_path.resolve() / "clips")

    s3_cfg = KwsConfig(
        storage=StorageSettings(
            root=str(tmp_path),
            deployment="s3",
            s3_bucket="my-kws-data",
            s3_prefix="team/kws",
            s3_endpoint_url="http://127.0.0.1:9",
            s3_retries=7,
        )
    )
    s3 = storage_resources(s3_cfg)
    assert set(s3) == {"s3", "clip_store", "io_manager", "model_io_manager", "artifact_io_manager"}
    assert isinstance(s3["clip_store"], S3ClipStoreResource)
    assert (
        s3["clip_store"].prefix == "team/kws/clips" and s3["io_manager"].prefix == "team/kws/tables"
    )
    assert s3["s3"].max_attempts == 7 and s3["s3"].endpoint_url == "http://127.0.0.1:9"
    # No credential fields are set: boto3 takes them from the environment.
    assert s3["s3"].aws_access_key_id is None and s3["s3"].aws_secret_access_key is None


@pytest.mark.parametrize(
    "bad",
    [
        {"deployment": "s3"},
        {"deployment": "s3", "s3_bucket": "Bad_Name"},
        {"deployment": "s3", "s3_bucket": "ok-bucket", "s3_prefix": "a/../b"},
        {"deployment": "gcs"},
        {"aws_secret_access_key": "x"},
    ],
)
def test_storage_settings_reject_bad_values(bad):
    with pytest.raises(ValueError):
        StorageSettings(**bad)
