"""Landing-zone races: a manifest still being written, replaced after the scan, two manifests
from two uploads, a batch deleted mid-run, and concurrent writers while the sensor scans."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from kws_assets.core.corpus.batches import content_fingerprint
from kws_assets.core.corpus.landing import (
    AMBIGUOUS_MANIFEST,
    BATCH_DELETED,
    MANIFEST_CHANGED,
    MANIFEST_SETTLING,
    check_batch_unchanged,
    scan_landing,
)

MANIFESTS = ["manifest.csv", "manifest.jsonl"]
CSV = "path,transcript,speaker\n" + "".join(
    f"audio/{i}.wav,say yes {i},spk{i}\n" for i in range(200)
)


def land(zone: Path, name: str, text: str = CSV, manifest: str = "manifest.csv") -> Path:
    folder = zone / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / manifest).write_text(text)
    return folder


def test_young_manifest_is_deferred_then_taken(tmp_path):
    folder = land(tmp_path, "b1")
    now = (folder / "manifest.csv").stat().st_mtime
    early = scan_landing(str(tmp_path), MANIFESTS, settle_s=5.0, now=now + 1.0)
    assert early.batches == [] and [d.reason for d in early.deferred] == [MANIFEST_SETTLING]
    late = scan_landing(str(tmp_path), MANIFESTS, settle_s=5.0, now=now + 6.0)
    assert [b.key for b in late.batches] == ["landing-b1"] and late.deferred == []


def test_replaced_and_deleted_batches_stop_their_run(tmp_path):
    folder = land(tmp_path, "b1")
    batch = scan_landing(str(tmp_path), MANIFESTS).batches[0]
    assert check_batch_unchanged(batch) is None
    (folder / "manifest.csv").write_text(CSV + "audio/x.wav,no,z\n")
    changed = check_batch_unchanged(batch)
    assert changed.reason == MANIFEST_CHANGED
    newer = scan_landing(str(tmp_path), MANIFESTS).batches[0]
    assert newer.key == batch.key and newer.fingerprint != batch.fingerprint  # a new version
    shutil.rmtree(folder)
    assert check_batch_unchanged(newer).reason == BATCH_DELETED
    assert scan_landing(str(tmp_path), MANIFESTS).batches == []


def test_two_uploads_with_two_manifests_are_rejected_with_a_reason(tmp_path):
    land(tmp_path, "b1")
    land(tmp_path, "b1", '{"path": "a.wav", "transcript": "t", "speaker": "s"}\n', "manifest.jsonl")
    scan = scan_landing(str(tmp_path), MANIFESTS)
    assert scan.batches == [] and [p.reason for p in scan.problems] == [AMBIGUOUS_MANIFEST]


def test_concurrent_writers_never_yield_a_partial_manifest(tmp_path):
    """Writers append their manifests in small pieces while a scanner ticks; every batch a scan
    returns has exactly its final manifest's fingerprint, and every batch is returned in the end."""
    names = [f"b{i}" for i in range(4)]
    final = {name: (CSV + f"audio/{name}.wav,no,{name}\n").encode() for name in names}
    stop = threading.Event()
    seen: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        folder = tmp_path / name
        folder.mkdir()
        data = final[name]
        with open(folder / "manifest.csv", "wb") as out:
            for start in range(0, len(data), 512):
                out.write(data[start : start + 512])
                out.flush()
                os.fsync(out.fileno())
                time.sleep(0.005)

    def scanner() -> None:
        try:
            while not stop.is_set():
                for b in scan_landing(str(tmp_path), MANIFESTS, settle_s=0.3).batches:
                    seen.append((b.key, b.fingerprint))
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)

    scan_thread = threading.Thread(target=scanner)
    scan_thread.start()
    writers = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    time.sleep(0.5)
    stop.set()
    scan_thread.join()
    assert errors == []
    expected = {f"landing-{n}": content_fingerprint(final[n]) for n in names}
    assert all(expected[key] == fingerprint for key, fingerprint in seen), (
        "a partial manifest was taken"
    )
    assert {key for key, _ in seen} == set(expected)
