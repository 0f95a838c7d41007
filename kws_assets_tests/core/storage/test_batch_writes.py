"""Durable writes in batches: staged complete, one sync for the bytes, renames, one sync for the
renames; the guarantee of one object at a time, two syncs per batch instead of two per object."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kws_assets.core import parallel
from kws_assets.core.storage import object_store
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.core.storage.object_store import STAGING_DIR, LocalObjectStore

SR = 16000


def _tone(seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(SR // 10)).astype(np.float32)


class _Syncs:
    """Counts the file-system syncs a store makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, syncfs: bool) -> None:
        self.fsync = 0
        self.syncfs = 0
        real_fsync = os.fsync

        def counted_fsync(fd: int) -> None:
            self.fsync += 1
            real_fsync(fd)

        def counted_syncfs(fd: int) -> int:
            self.syncfs += 1
            return 0

        monkeypatch.setattr(object_store.os, "fsync", counted_fsync)
        monkeypatch.setattr(object_store, "_SYNCFS", counted_syncfs if syncfs else None)


def test_a_batch_is_invisible_until_it_ends_then_whole(tmp_path) -> None:
    store = LocalObjectStore.at(tmp_path)
    other = LocalObjectStore.at(tmp_path)  # another reader of the same root
    with store.batch_writes():
        for i in range(5):
            store.put_bytes(f"a/{i}.bin", bytes([i]) * 100)
        assert store.exists("a/3.bin") and store.get_bytes("a/3.bin") == bytes([3]) * 100
        assert not other.exists("a/3.bin")
        assert other.list_keys() == []
    assert other.list_keys() == [f"a/{i}.bin" for i in range(5)]
    assert other.get_bytes("a/4.bin") == bytes([4]) * 100
    assert list((tmp_path / STAGING_DIR).iterdir()) == []


def test_two_syncs_per_batch_instead_of_two_per_object(tmp_path, monkeypatch) -> None:
    syncs = _Syncs(monkeypatch, syncfs=True)
    store = LocalObjectStore.at(tmp_path)
    for i in range(4):
        store.put_bytes(f"one/{i}.bin", b"x")
    assert (syncs.fsync, syncs.syncfs) == (8, 0)  # file + folder per object
    with store.batch_writes():
        for i in range(10):
            store.put_bytes(f"many/{i}.bin", b"y")
    assert (syncs.fsync, syncs.syncfs) == (8, 2)


def test_without_syncfs_each_staged_file_and_folder_is_synced(tmp_path, monkeypatch) -> None:
    syncs = _Syncs(monkeypatch, syncfs=False)
    store = LocalObjectStore.at(tmp_path)
    with store.batch_writes():
        for i in range(6):
            store.put_bytes(f"{'ab'[i % 2]}/{i}.bin", b"z")
    assert syncs.fsync == 6 + 2  # each file before the renames, each folder after
    assert len(store.list_keys()) == 6


def test_writes_before_a_failure_in_the_batch_are_still_published(tmp_path) -> None:
    store = LocalObjectStore.at(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), store.batch_writes():
        store.put_bytes("k/ok.bin", b"complete")
        raise RuntimeError("boom")
    assert store.get_bytes("k/ok.bin") == b"complete"


def test_last_write_of_a_key_in_a_batch_wins_and_delete_drops_a_staged_one(tmp_path) -> None:
    store = LocalObjectStore.at(tmp_path)
    with store.batch_writes():
        store.put_bytes("k/a.bin", b"first")
        store.put_bytes("k/a.bin", b"second")
        store.put_bytes("k/b.bin", b"gone")
        store.delete("k/b.bin")
    assert store.list_keys() == ["k/a.bin"]
    assert store.get_bytes("k/a.bin") == b"second"
    assert list((tmp_path / STAGING_DIR).iterdir()) == []


def test_nested_batches_publish_once_at_the_outermost_end(tmp_path) -> None:
    store = LocalObjectStore.at(tmp_path)
    other = LocalObjectStore.at(tmp_path)
    with store.batch_writes():
        with store.batch_writes():
            store.put_bytes("n/1.bin", b"1")
        assert not other.exists("n/1.bin")
    assert other.exists("n/1.bin")


@pytest.mark.parametrize("workers", [1, 2])
def test_parallel_batches_run_inside_the_clip_stores_batch(tmp_path, workers) -> None:
    store = ClipStore.at(tmp_path)
    entered: list[int] = []

    def put(i: int) -> str:
        return store.put(store.key_for("synthetic", "yes", f"c{i:02d}"), _tone(i), SR)

    def context():
        entered.append(1)
        return store.batch_writes()

    uris = list(parallel.batched_process_map(put, range(9), workers, 4, batch_context=context))
    assert len(uris) == 9
    assert all(os.path.isfile(u) for u in uris)  # published before the results came back
    reread = ClipStore.at(tmp_path)
    assert reread.read(uris[8]).samples.shape == (SR // 10,)
    if workers == 1:
        assert len(entered) == 3  # once per batch of 4
    assert list((tmp_path / STAGING_DIR).iterdir()) == []
