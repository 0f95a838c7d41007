"""The clip store and the object stores under it: local folder and S3 (a real moto server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws_assets.core.audio.io import REASON_MISSING, AudioReadError
from kws_assets.core.storage.clip_store import ClipStore, clip_id_for, safe_key_part
from kws_assets.core.storage.object_store import (
    STAGING_DIR,
    LocalObjectStore,
    ObjectNotFound,
    S3ObjectStore,
    StorageError,
    check_key,
    classify_s3_error,
    open_object_store,
)

SR = 16000


def tone(freq: float = 440.0, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ----------------------------------------------------------------------------------- keys, ids


def test_safe_key_part_keeps_plain_names_and_hashes_the_rest():
    assert safe_key_part("yes") == "yes"
    assert safe_key_part("_silence_") == "_silence_"
    for odd in ("はい", "..", ".hidden", "a/b", "", "sí"):
        part = safe_key_part(odd)
        assert part.startswith("x") and len(part) == 13 and "/" not in part, odd
    assert safe_key_part("はい") != safe_key_part("いいえ")


def test_clip_id_is_stable_and_content_derived():
    assert clip_id_for("demo", "u1", "yes", 0.25) == clip_id_for("demo", "u1", "yes", 0.25)
    assert clip_id_for("demo", "u1", "yes", 0.25) != clip_id_for("demo", "u1", "yes", 0.26)
    assert len(clip_id_for("x")) == 16


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs.wav",
        "../up.wav",
        "a/../../b.wav",
        "a//b.wav",
        ".partial/x.tmp",
        "a/./b.wav",
        "a\\b.wav",
    ],
)
def test_bad_keys_are_rejected(key):
    with pytest.raises(ValueError):
        check_key(key)


# ------------------------------------------------------------------------------------ local


def test_local_round_trip_and_uris(tmp_path):
    store = ClipStore.at(tmp_path / "clips")
    key = store.key_for("synthetic", "yes", clip_id_for("a"))
    samples = tone()
    uri = store.put(key, samples, SR)
    assert uri == str((tmp_path / "clips" / key).resolve()) and Path(uri).is_absolute()
    assert store.exists(key) and not store.exists(store.key_for("synthetic", "no", "b"))
    info = store.read(uri)
    assert info.sample_rate == SR and info.subtype == "PCM_16"
    assert np.max(np.abs(info.samples - samples)) < 2 / 32768  # 16-bit quantization only
    assert store.read(uri, target_sr=8000).samples.shape == (8000,)
    assert store.list_keys() == [key]
    assert sf.info(uri).frames == SR  # a plain WAV any tool can open


def test_local_keys_cannot_escape_the_root(tmp_path):
    store = ClipStore.at(tmp_path / "clips")
    with pytest.raises(ValueError):
        store.uri_for("../outside.wav")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "clips").mkdir(exist_ok=True)
    os.symlink(tmp_path / "elsewhere", tmp_path / "clips" / "link")
    with pytest.raises(ValueError, match="escapes"):
        store.put("link/x.wav", tone(), SR)
    assert not list((tmp_path / "elsewhere").iterdir())
    with pytest.raises(ValueError, match="outside"):
        store.read(str(tmp_path / "elsewhere" / "x.wav"))


def test_missing_clip_is_an_audio_read_error_naming_the_uri(tmp_path):
    store = ClipStore.at(tmp_path)
    uri = store.uri_for("demo/yes/gone.wav")
    with pytest.raises(AudioReadError) as err:
        store.read(uri)
    assert err.value.reason == REASON_MISSING and uri in str(err.value)


def test_corrupt_clip_is_an_audio_read_error_naming_the_uri(tmp_path):
    objects = LocalObjectStore.at(tmp_path)
    uri = objects.put_bytes("demo/yes/bad.wav", b"RIFF\x00\x00not a wav at all")
    with pytest.raises(AudioReadError) as err:
        ClipStore(objects).read(uri)
    assert uri in str(err.value)


def test_overwrites_are_atomic_for_concurrent_readers(tmp_path):
    """A reader racing a writer that keeps replacing one object sees one whole version each time."""
    objects = LocalObjectStore.at(tmp_path, durable=False)
    versions = [bytes([v]) * 300_000 for v in (1, 2)]
    objects.put_bytes("t/obj.bin", versions[0])
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            objects.put_bytes("t/obj.bin", versions[i % 2])
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = [objects.get_bytes("t/obj.bin") for _ in range(300)]
    finally:
        stop.set()
        thread.join()
    assert all(s in versions for s in seen)
    assert objects.partial_files() == []


def test_a_full_disk_fails_naming_the_object_and_keeps_the_old_version(tmp_path, monkeypatch):
    import errno

    objects = LocalObjectStore.at(tmp_path)
    uri = objects.put_bytes("t/table.parquet", b"old version")

    def disk_full(fd, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StorageError) as err:
        objects.put_bytes("t/table.parquet", b"new version")
    assert uri in str(err.value) and "No space left" in str(err.value)
    assert not err.value.transient
    monkeypatch.undo()
    assert objects.get_bytes("t/table.parquet") == b"old version"
    assert objects.partial_files() == []


KILLED_WRITER = """
import os, signal, sys
from kws_assets.core.storage.object_store import LocalObjectStore
store = LocalObjectStore.at(sys.argv[1])
os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # die between write and rename
store.put_bytes("synthetic/yes/victim.wav", b"RIFF" + b"x" * 100_000)
"""


def test_a_writer_killed_mid_write_leaves_nothing_visible_and_its_leftover_is_swept(tmp_path):
    root = tmp_path / "clips"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(root)], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    objects = LocalObjectStore.at(root)
    assert not objects.exists("synthetic/yes/victim.wav")
    assert objects.list_keys() == [] and ClipStore(objects).list_keys() == []
    leftovers = objects.partial_files()
    assert len(leftovers) == 1 and leftovers[0].parent.name == STAGING_DIR
    assert leftovers[0].stat().st_size == 100_004  # the data was there; only the rename was not

    # A staging file of a live writer (this process) must survive a sweep.
    live = objects.staging / f"{socket.gethostname()}~{os.getpid()}-inflight.tmp"
    live.write_bytes(b"in progress")
    assert objects.sweep_partials() == leftovers
    assert objects.partial_files() == [live]


def test_open_object_store_picks_the_backend(tmp_path):
    assert isinstance(open_object_store(str(tmp_path)), LocalObjectStore)
    with pytest.raises(ValueError, match="client"):
        open_object_store("s3://bucket/prefix")
    with pytest.raises(ValueError, match="only local"):
        open_object_store("gs://bucket/prefix")


# -------------------------------------------------------------------------------------- S3


def test_s3_round_trip_uris_and_listing(s3_server):
    client = s3_server.client()
    store = ClipStore.on_s3(client, s3_server.bucket, "kws/clips")
    keys = [
        store.key_for("synthetic", label, clip_id_for(label, i))
        for label in ("yes", "no")
        for i in range(3)
    ]
    uris = [store.put(key, tone(300 + 50 * i), SR) for i, key in enumerate(keys)]
    assert uris[0] == f"s3://{s3_server.bucket}/kws/clips/{keys[0]}"
    assert store.list_keys() == sorted(keys)
    assert store.list_keys("synthetic/yes") == sorted(k for k in keys if "/yes/" in k)
    assert s3_server.keys("kws/clips/") == sorted(f"kws/clips/{k}" for k in keys)
    for i, uri in enumerate(uris):
        info = store.read(uri)
        assert np.max(np.abs(info.samples - tone(300 + 50 * i))) < 2 / 32768
    assert store.exists(keys[0]) and not store.exists("synthetic/yes/none.wav")
    with pytest.raises(ValueError, match="outside"):
        store.read(f"s3://{s3_server.bucket}/other/prefix/x.wav")


def test_s3_missing_clip_and_missing_bucket(s3_server):
    client = s3_server.client()
    store = ClipStore.on_s3(client, s3_server.bucket, "clips")
    uri = store.uri_for("demo/yes/gone.wav")
    with pytest.raises(AudioReadError) as err:
        store.read(uri)
    assert err.value.reason == REASON_MISSING and uri in str(err.value)

    nowhere = S3ObjectStore(client, "no-such-bucket-kws", "clips")
    with pytest.raises(StorageError) as err:
        nowhere.put_bytes("a/b.wav", b"x")
    assert err.value.reason == "NoSuchBucket" and not err.value.transient
    assert "s3://no-such-bucket-kws/clips/a/b.wav" in str(err.value)
    with pytest.raises(ObjectNotFound):
        S3ObjectStore(client, s3_server.bucket).get_bytes("nothing/here.wav")


def test_s3_error_classification():
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    def client_error(status, code):
        return ClientError(
            {
                "Error": {"Code": code, "Message": "m"},
                "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 4},
            },
            "Op",
        )

    uri = "s3://b/k.wav"
    assert classify_s3_error(uri, client_error(500, "InternalError")).transient
    assert classify_s3_error(uri, client_error(503, "SlowDown")).transient
    denied = classify_s3_error(uri, client_error(403, "AccessDenied"))
    assert not denied.transient and denied.reason == "AccessDenied" and "5 attempt" in denied.detail
    assert classify_s3_error(uri, client_error(403, "403")).reason == "AccessDenied"
    assert isinstance(classify_s3_error(uri, client_error(404, "NoSuchKey")), ObjectNotFound)
    assert not isinstance(classify_s3_error(uri, client_error(404, "NoSuchBucket")), ObjectNotFound)
    assert classify_s3_error(uri, EndpointConnectionError(endpoint_url="http://x")).transient
    no_creds = classify_s3_error(uri, NoCredentialsError())
    assert not no_creds.transient and "environment" in no_creds.detail
    assert classify_s3_error(uri, ValueError("not boto")) is None
