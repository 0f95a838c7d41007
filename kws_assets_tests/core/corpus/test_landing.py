"""The landing zone: which folders are ready batches, the sensor cursor, batch resolution.

The listing goes through UPath, so the same tests run on a local folder and on fsspec's in-memory
filesystem (``memory://``), a stand-in for an object-store prefix.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from upath import UPath

from kws_assets.config import load_config
from kws_assets.core.corpus.batches import BatchKeyError
from kws_assets.core.corpus.landing import (
    INVALID_NAME,
    BatchCursor,
    KnownBatch,
    LandingZone,
    batch_source,
    configured_batches,
    find_landed_batch,
    landed_batch_source,
    landed_batches,
    landing_root,
    landing_scan,
    scan_landing_zone,
)
from kws_assets.settings import AutomationSettings, KwsConfig, ManifestSource, StorageSettings

MANIFESTS = ["manifest.csv", "manifest.jsonl"]
CSV = "path,transcript,speaker\naudio/a.wav,say yes now,alice\n"


def _land(root: UPath, name: str, manifest: str | None = "manifest.csv", text: str = CSV) -> UPath:
    folder = root / name
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    (folder / "audio" / "a.wav").write_bytes(b"RIFF")
    if manifest:
        (folder / manifest).write_text(text)
    return folder


@pytest.fixture(params=["local", "memory"])
def zone(request, tmp_path) -> UPath:
    if request.param == "local":
        return UPath(str(tmp_path / "landing"))
    return UPath(f"memory://landing-{uuid.uuid4().hex}")


def test_ready_batches_are_listed_and_the_rest_is_not(zone):
    _land(
        zone, "b2", "manifest.jsonl", '{"path": "audio/a.wav", "transcript": "x", "speaker": "s"}\n'
    )
    _land(zone, "b1")
    _land(zone, "b3-not-ready", manifest=None)  # manifest not written yet
    _land(zone, "_incoming-b4")  # staged under a hidden name
    _land(zone, ".b5")
    _land(zone, "bad name")  # cannot be a partition key
    (zone / "stray.txt").write_text("not a folder")
    batches, problems = scan_landing_zone(str(zone), MANIFESTS)
    assert [b.key for b in batches] == ["landing-b1", "landing-b2"]
    assert [b.manifest for b in batches] == ["manifest.csv", "manifest.jsonl"]
    assert batches[0].folder.endswith("b1")
    assert [(Path(p.folder).name, p.reason) for p in problems] == [("bad name", INVALID_NAME)]


def test_missing_zone_is_empty_and_fingerprint_follows_the_manifest(zone):
    assert scan_landing_zone(str(zone / "nothing-here"), MANIFESTS) == ([], [])
    _land(zone, "b1")
    first = scan_landing_zone(str(zone), MANIFESTS)[0][0]
    (zone / "b1" / "audio" / "b.wav").write_bytes(b"RIFF")  # audio alone does not change it
    assert scan_landing_zone(str(zone), MANIFESTS)[0][0].fingerprint == first.fingerprint
    (zone / "b1" / "manifest.csv").write_text(CSV + "audio/b.wav,no,bob\n")
    assert scan_landing_zone(str(zone), MANIFESTS)[0][0].fingerprint != first.fingerprint
    assert find_landed_batch(str(zone), "landing-b1", MANIFESTS).folder == str(zone / "b1")
    with pytest.raises(BatchKeyError, match="landing-b9"):
        find_landed_batch(str(zone), "landing-b9", MANIFESTS)


def test_cursor_requests_each_batch_once_and_changed_ones_again():
    a, b, c = (KnownBatch(k, "f1", "x") for k in ("landing-a", "landing-b", "source-demo"))
    cursor = BatchCursor.from_json(None)
    assert cursor.pending([a, b, c]) == [a, b, c]  # several landed between ticks: all pending
    cursor = BatchCursor.from_json(cursor.mark([a, b, c]).to_json())
    assert cursor.pending([a, b, c]) == []
    changed = KnownBatch("landing-a", "f2", "x")
    d = KnownBatch("landing-d", "f1", "x")
    assert cursor.pending([changed, b, c, d]) == [changed, d]
    with pytest.raises(ValueError, match="reset"):
        BatchCursor.from_json("{not json")
    with pytest.raises(ValueError, match="reset"):
        BatchCursor.from_json('["landing-a"]')


def _config(tmp_path: Path, extra: str = "") -> KwsConfig:
    path = tmp_path / "kws.yaml"
    path.write_text(
        "keywords: [yes, no]\nstorage: {root: data}\n"
        "sources:\n  - {kind: demo_tts, name: demo}\n" + extra
    )
    return load_config(path)


def test_landing_root_defaults_under_the_storage_root(tmp_path):
    cfg = _config(tmp_path)
    assert landing_root(cfg.automation, cfg.storage) == str(tmp_path / "data" / "landing")
    elsewhere = _config(tmp_path, f"automation: {{landing_root: {tmp_path / 'drop'}}}\n")
    assert landing_root(elsewhere.automation, elsewhere.storage) == str(tmp_path / "drop")
    remote = _config(tmp_path, "automation: {landing_root: 's3://bucket/landing/'}\n")
    assert landing_root(remote.automation, remote.storage) == "s3://bucket/landing"
    under_s3 = StorageSettings(root="s3://bucket/kws/")
    assert landing_root(AutomationSettings(), under_s3) == "s3://bucket/kws/landing"


def test_a_landing_zone_is_what_automation_and_storage_say():
    automation = AutomationSettings(
        landing_root="s3://bucket/in", landing_settle_s=3.0, landing_license="CC0-1.0"
    )
    storage = StorageSettings(s3_endpoint_url="http://localhost:9000", s3_retries=2)
    zone = LandingZone.from_settings(automation, storage)
    assert (zone.root, zone.manifests, zone.settle_s, zone.license) == (
        "s3://bucket/in",
        automation.landing_manifests,
        3.0,
        "CC0-1.0",
    )
    assert (zone.s3.endpoint_url, zone.s3.retries) == ("http://localhost:9000", 2)


def test_known_batches_and_batch_source(tmp_path):
    cfg = _config(tmp_path, "automation: {landing_settle_s: 0}\n")  # take a batch as it lands
    zone = LandingZone.from_settings(cfg.automation, cfg.storage)
    _land(UPath(zone.root), "b1")
    scan = landing_scan(zone)
    configured = configured_batches(cfg.sources, cfg.keywords, cfg.language, 16000)
    landed = landed_batches(scan, cfg.keywords)
    assert [b.key for b in configured + landed] == ["source-demo", "landing-b1"]
    assert scan.problems == []
    source = batch_source(zone, cfg.sources, "landing-b1", "es")
    assert source == landed_batch_source(zone, scan.batches[0], "es")
    assert isinstance(source, ManifestSource)
    assert (source.name, source.manifest, Path(source.root).name) == (
        "landing-b1",
        "manifest.csv",
        "b1",
    )
    assert (source.license, source.language) == (cfg.automation.landing_license, "es")
    assert batch_source(zone, cfg.sources, "source-demo", "es") == cfg.sources[0]
    with pytest.raises(BatchKeyError):
        batch_source(zone, cfg.sources, "landing-missing", "es")


def test_an_s3_landing_zone_is_listed_like_a_folder(s3_server):
    """The same scan over an ``s3://`` prefix (moto's S3 server), including batches that land
    between two scans (the listing cache must not hide them)."""
    client = s3_server.client()

    def put(key: str, body: bytes = b"RIFF") -> None:
        client.put_object(Bucket=s3_server.bucket, Key=key, Body=body)

    root = f"s3://{s3_server.bucket}/landing"
    put("landing/b1/audio/a.wav")
    put("landing/b1/manifest.csv", CSV.encode())
    put("landing/b2/audio/a.wav")  # not ready: no manifest yet
    first, problems = scan_landing_zone(root, MANIFESTS)
    assert [b.key for b in first] == ["landing-b1"] and problems == []
    assert first[0].folder.startswith("s3://") and first[0].manifest == "manifest.csv"
    put(
        "landing/b2/manifest.jsonl", b'{"path": "audio/a.wav", "transcript": "x", "speaker": "s"}\n'
    )
    put("landing/b3/manifest.csv", CSV.encode())
    second, _ = scan_landing_zone(root, MANIFESTS)
    assert [b.key for b in second] == ["landing-b1", "landing-b2", "landing-b3"]
    assert second[0].fingerprint == first[0].fingerprint
    assert find_landed_batch(root, "landing-b2", MANIFESTS).manifest == "manifest.jsonl"
