"""Corpus connectors reading ``s3://`` prefixes from a local S3-compatible server (moto's
ThreadedMotoServer on 127.0.0.1, started and stopped here), through universal-pathlib / s3fs."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from kws_assets.config import corpus_reading
from kws_assets.core.audio import quality
from kws_assets.core.corpus import ingest as corpus
from kws_assets.settings import KwsConfig

boto3 = pytest.importorskip("boto3")
s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

SR = 16000
BUCKET = "corpora"


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """A moto S3 server on 127.0.0.1 (random port) with fake credentials in the environment."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "kws-test-key",
        "AWS_SECRET_ACCESS_KEY": "kws-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3fs.S3FileSystem.clear_instance_cache()  # no filesystem bound to another endpoint
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def wav(seed: int, seconds: float = 1.0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    sf.write(
        buffer, (0.2 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR, format="WAV"
    )
    return buffer.getvalue()


def test_manifest_corpus_on_s3_is_ingested_once_and_mirrored(s3, tmp_path):
    audio = {f"batch1/audio/u{i}.wav": wav(i) for i in range(3)}
    for key, body in audio.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    s3.put_object(
        Bucket=BUCKET,
        Key="batch1/manifest.csv",
        Body=(
            b"path,transcript,speaker\n"
            b"audio/u0.wav,say yes,alice\naudio/u1.wav,no way,bob\naudio/u2.wav,yes yes,carol\n"
            b"../other/u9.wav,escape,mallory\naudio/missing.wav,yes,dan\n"
        ),
    )
    cfg = KwsConfig.model_validate(
        {
            "keywords": ["yes", "no"],
            "storage": {"root": str(tmp_path / "data")},
            "sources": [{"kind": "manifest", "name": "remote", "root": f"s3://{BUCKET}/batch1"}],
        }
    )

    first = corpus.load_corpus(cfg.sources, corpus_reading(cfg))
    rows = {r["original_path"]: r for r in first.table.iter_rows(named=True)}
    assert rows["../other/u9.wav"]["reject_reason"] == quality.PATH_OUTSIDE_ROOT
    assert rows["audio/missing.wav"]["reject_reason"] == quality.MISSING
    for rel in ("audio/u0.wav", "audio/u1.wav", "audio/u2.wav"):
        row = rows[rel]
        body = audio[f"batch1/{rel}"]
        assert row["reject_reason"] is None and row["sha256"] == hashlib.sha256(body).hexdigest()
        mirrored = Path(row["uri"])  # later stages read the local, content-addressed mirror
        assert mirrored.is_file() and mirrored.read_bytes() == body
        assert str(mirrored).startswith(str(cfg.storage_path("ingest")))
    assert rows["audio/u1.wav"]["speaker"] == "remote:bob"
    assert first.stats.files_read == 3

    again = corpus.load_corpus(cfg.sources, corpus_reading(cfg))
    assert again.stats.files_read == 0 and again.stats.files_from_cache == 3
    assert corpus.content_version(again.table) == corpus.content_version(first.table)

    s3.put_object(Bucket=BUCKET, Key="batch1/audio/u1.wav", Body=wav(99))
    changed = corpus.load_corpus(cfg.sources, corpus_reading(cfg))
    assert changed.stats.files_read == 1
    assert corpus.content_version(changed.table) != corpus.content_version(first.table)


def test_speech_commands_layout_on_s3(s3, tmp_path):
    for key, seed in {
        "sc/yes/aa11_nohash_0.wav": 1,
        "sc/yes/bb22_nohash_0.wav": 2,
        "sc/dog/aa11_nohash_0.wav": 3,
    }.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=wav(seed))
    s3.put_object(Bucket=BUCKET, Key="sc/_background_noise_/pink.wav", Body=wav(4, seconds=2.5))
    cfg = KwsConfig.model_validate(
        {
            "keywords": ["yes"],
            "storage": {"root": str(tmp_path / "data")},
            "sources": [{"kind": "speech_commands", "name": "sc", "root": f"s3://{BUCKET}/sc"}],
        }
    )
    table = corpus.load_corpus(cfg.sources, corpus_reading(cfg)).table
    assert corpus.rejected_rows(table).height == 0
    labels = dict(zip(table["original_path"], table["clip_label"], strict=True))
    assert labels == {
        "yes/aa11_nohash_0.wav": "yes",
        "yes/bb22_nohash_0.wav": "yes",
        "dog/aa11_nohash_0.wav": "_unknown_",
        "_background_noise_/pink.wav": "_silence_",
    }
    assert (
        table.filter(pl.col("original_path") == "dog/aa11_nohash_0.wav")["speaker"][0] == "sc:aa11"
    )
