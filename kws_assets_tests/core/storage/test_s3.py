"""The one S3 configuration (:class:`S3Connection`): built from ``storage``, it gives the boto3
client and the fsspec options every S3 access uses — corpus roots, the landing zone, clip reads
by URI and the IO managers' base paths reach the endpoint of the config, not of the environment
(``AWS_ENDPOINT_URL`` is removed in these tests), and s3fs errors map to StorageError."""

from __future__ import annotations

import errno
import hashlib
import io

import numpy as np
import pytest
import s3fs
import soundfile as sf
from botocore.exceptions import ClientError
from s3fs.errors import translate_boto_error

from kws_assets.config import corpus_reading
from kws_assets.core.audio.io import AudioReadError
from kws_assets.core.corpus import ingest as corpus
from kws_assets.core.corpus.connectors.base import corpus_root
from kws_assets.core.corpus.landing import check_batch_unchanged, scan_landing
from kws_assets.core.features.table import read_uri_bytes
from kws_assets.core.storage.object_store import ObjectNotFound, S3ObjectStore, StorageError
from kws_assets.core.storage.s3 import S3Connection, storage_error_of, transient_storage_error
from kws_assets.lib.io_managers import S3PolarsParquetIOManager, s3_connection_of
from kws_assets.lib.resources import s3_resource
from kws_assets.settings import KwsConfig, StorageSettings

SR = 16000
DEAD_ENDPOINT = "http://127.0.0.1:9"  # nothing listens on the discard port: connection refused


def _wav(seed: int) -> bytes:
    samples = (0.2 * np.random.default_rng(seed).standard_normal(SR)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, samples, SR, format="WAV")
    return buffer.getvalue()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The moto bucket, reachable only through a connection that names its endpoint."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    s3fs.S3FileSystem.clear_instance_cache()
    yield s3_server
    s3fs.S3FileSystem.clear_instance_cache()


def _connection(server, retries: int = 1) -> S3Connection:
    return S3Connection(server.endpoint_url, server.region, retries)


def test_connection_comes_from_the_storage_settings_and_holds_no_credentials(s3):
    storage = StorageSettings(s3_endpoint_url=s3.endpoint_url, s3_region="eu-west-3", s3_retries=6)
    connection = S3Connection.from_settings(storage)
    assert connection == S3Connection(s3.endpoint_url, "eu-west-3", 6)
    assert connection.fsspec_options() == {
        "endpoint_url": s3.endpoint_url,
        "client_kwargs": {"region_name": "eu-west-3"},
        "config_kwargs": {"retries": {"max_attempts": 6, "mode": "standard"}},
    }
    client = connection.boto3_client()
    assert client.meta.endpoint_url == s3.endpoint_url and client.meta.region_name == "eu-west-3"
    # botocore normalises "6 retries" to 7 attempts in all
    assert client.meta.config.retries == {"total_max_attempts": 7, "mode": "standard"}
    # The Dagster resource is built from the same connection, and gives it back.
    assert s3_connection_of(s3_resource(storage)) == connection
    text = repr(connection) + repr(connection.fsspec_options())
    assert s3.access_key_id not in text and s3.secret_access_key not in text
    assert S3Connection().fsspec_options() == {
        "config_kwargs": {"retries": {"max_attempts": 4, "mode": "standard"}}
    }
    with pytest.raises(ValueError, match="scheme"):
        S3Connection("minio:9000")


def test_upath_binds_s3_uris_and_leaves_local_paths_alone(tmp_path):
    connection = S3Connection(DEAD_ENDPOINT, "us-east-1", 0)
    remote = connection.upath("s3://bucket/corpus") / "audio" / "a.wav"
    assert str(remote) == "s3://bucket/corpus/audio/a.wav"
    assert remote.storage_options["endpoint_url"] == DEAD_ENDPOINT  # joined paths keep it
    local = connection.upath(tmp_path / "x")
    assert local.protocol in {"", "file"} and str(local) == str(tmp_path / "x")
    assert "endpoint_url" not in local.storage_options


def test_corpus_root_and_clip_reads_use_the_configured_endpoint(s3, tmp_path):
    client = s3.client()
    bodies = {f"corpus/audio/u{i}.wav": _wav(i) for i in range(2)}
    for key, body in bodies.items():
        client.put_object(Bucket=s3.bucket, Key=key, Body=body)
    client.put_object(
        Bucket=s3.bucket,
        Key="corpus/manifest.csv",
        Body=(b"path,transcript,speaker\naudio/u0.wav,say yes,alice\naudio/u1.wav,no way,bob\n"),
    )
    cfg = KwsConfig.model_validate(
        {
            "keywords": ["yes", "no"],
            "storage": {
                "root": str(tmp_path / "data"),
                "s3_endpoint_url": s3.endpoint_url,
                "s3_region": s3.region,
                "s3_retries": 1,
            },
            "sources": [{"kind": "manifest", "name": "remote", "root": f"s3://{s3.bucket}/corpus"}],
        }
    )
    table = corpus.load_corpus(cfg.sources, corpus_reading(cfg)).table
    assert corpus.rejected_rows(table).height == 0
    assert sorted(table["sha256"]) == sorted(hashlib.sha256(b).hexdigest() for b in bodies.values())

    root = corpus_root(f"s3://{s3.bucket}/corpus", S3Connection.from_settings(cfg.storage))
    assert (root / "manifest.csv").is_file()
    uri = f"s3://{s3.bucket}/corpus/audio/u1.wav"
    assert read_uri_bytes(uri, _connection(s3)) == bodies["corpus/audio/u1.wav"]
    with pytest.raises(AudioReadError, match=r"u9\.wav"):
        read_uri_bytes(f"s3://{s3.bucket}/corpus/audio/u9.wav", _connection(s3))


def test_an_unreachable_corpus_root_is_a_transient_error_not_a_rejected_source(s3, tmp_path):
    """Pointed at an endpoint that refuses connections, ingestion raises a transient
    StorageError naming the root (the step is retried) instead of rejecting the source."""
    cfg = KwsConfig.model_validate(
        {
            "keywords": ["yes"],
            "storage": {
                "root": str(tmp_path / "data"),
                "s3_endpoint_url": DEAD_ENDPOINT,
                "s3_retries": 0,
            },
            "sources": [{"kind": "manifest", "name": "remote", "root": f"s3://{s3.bucket}/corpus"}],
        }
    )
    with pytest.raises(StorageError) as err:
        corpus.load_corpus(cfg.sources, corpus_reading(cfg))
    assert err.value.transient and f"s3://{s3.bucket}/corpus" in str(err.value)


def test_landing_zone_on_s3_through_the_connection(s3):
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="landing/b1/audio/a.wav", Body=_wav(1))
    client.put_object(
        Bucket=s3.bucket,
        Key="landing/b1/manifest.csv",
        Body=b"path,transcript,speaker\naudio/a.wav,yes,alice\n",
    )
    connection = _connection(s3)
    scan = scan_landing(f"s3://{s3.bucket}/landing", ["manifest.csv"], s3=connection)
    assert [b.key for b in scan.batches] == ["landing-b1"] and scan.problems == []
    (batch,) = scan.batches
    assert check_batch_unchanged(batch, connection) is None
    client.put_object(
        Bucket=s3.bucket,
        Key="landing/b1/manifest.csv",
        Body=b"path,transcript,speaker\naudio/a.wav,no,alice\n",
    )
    assert check_batch_unchanged(batch, connection).reason == "manifest_changed"


def test_io_manager_base_path_is_bound_to_the_same_connection(s3):
    storage = StorageSettings(
        root="data",
        deployment="s3",
        s3_bucket=s3.bucket,
        s3_endpoint_url=s3.endpoint_url,
        s3_region=s3.region,
        s3_retries=1,
    )
    manager = S3PolarsParquetIOManager(
        s3=s3_resource(storage), bucket=s3.bucket, prefix="kws/tables"
    ).create_io_manager(None)
    base = manager._base_path
    assert str(base) == f"s3://{s3.bucket}/kws/tables"
    assert base.storage_options["endpoint_url"] == s3.endpoint_url
    inner = manager.objects.inner
    assert isinstance(inner, S3ObjectStore)
    assert inner.client.meta.endpoint_url == s3.endpoint_url
    inner.put_bytes("probe.txt", b"one house")
    assert (base / "probe.txt").read_bytes() == b"one house"  # both stacks, one bucket


def _client_error(status: int, code: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "m"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 1},
        },
        "GetObject",
    )


@pytest.mark.parametrize(
    ("status", "code", "transient", "kind"),
    [
        (500, "InternalError", True, StorageError),
        (503, "SlowDown", True, StorageError),
        (403, "AccessDenied", False, StorageError),
        (404, "missing", False, ObjectNotFound),
    ],
)
def test_s3fs_errors_map_to_storage_errors(status, code, transient, kind):
    """s3fs re-raises botocore errors as plain OSErrors; the botocore cause decides."""
    translated = translate_boto_error(_client_error(status, "NoSuchKey" if status == 404 else code))
    assert isinstance(translated, OSError) and not isinstance(translated, StorageError)
    error = storage_error_of("s3://b/k", translated)
    assert type(error) is kind and error.transient is transient and error.reason == code
    assert (transient_storage_error("s3://b/k", translated) is not None) is transient


def test_non_s3_errors_are_not_storage_errors():
    assert storage_error_of("/x", OSError(errno.EACCES, "denied")) is None
    assert storage_error_of("/x", ValueError("bad manifest")) is None
