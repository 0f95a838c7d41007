"""The streaming MFCC table: same features as the extractor, in table order, for any batching and
thread count; bounded work in flight; the feature cache skips exactly the unchanged clips."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from kws_assets.core.audio.io import AudioReadError, write_wav
from kws_assets.core.families import mfcc_dscnn
from kws_assets.core.families.mfcc_dscnn import table_front_end
from kws_assets.core.features import table as feature_table
from kws_assets.core.features.mfcc import (
    FeatureSpec,
    MfccExtractor,
    feature_config_hash,
    features_for_files,
)
from kws_assets.core.features.table import (
    ClipReader,
    FeatureCache,
    build_feature_table,
    iter_feature_batches,
    stage_feature_table,
)
from kws_assets.settings import AudioSettings, FeatureSettings

SR = 16000


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return FeatureSpec.from_settings(FeatureSettings(), AudioSettings())


def write_clips(folder, n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        path = folder / f"clip{i:03d}.wav"
        write_wav(path, (rng.standard_normal(SR) * rng.uniform(0.01, 0.3)).astype(np.float32), SR)
        rows.append(
            {
                "clip_id": f"id{i:03d}",
                "uri": str(path),
                "label": ["yes", "no"][i % 2],
                "split": ["train", "val", "test"][i % 3],
                "speaker": f"s{i % 4}",
                "source": "test",
            }
        )
    return pl.DataFrame(rows)


def decoded(clips: pl.DataFrame) -> np.ndarray:
    return np.stack([sf.read(uri, dtype="float32")[0] for uri in clips["uri"]])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> pl.DataFrame:
    return write_clips(tmp_path_factory.mktemp("clips"), 23)


class CountingExtractor(MfccExtractor):
    """Counts the clips that actually reach the MFCC computation."""

    clips_seen = 0
    lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with CountingExtractor.lock:
            CountingExtractor.clips_seen += len(batch)
        return super().__call__(batch)


@pytest.fixture
def counting(monkeypatch):
    CountingExtractor.clips_seen = 0
    monkeypatch.setattr(mfcc_dscnn, "MfccExtractor", CountingExtractor)  # the front end it wires
    return CountingExtractor


def test_table_equals_the_extractor_in_order_for_any_batching(clips, spec) -> None:
    expected = MfccExtractor(spec)(decoded(clips))
    for workers, batch_size in [(1, 256), (2, 4), (3, 5)]:
        table = build_feature_table(
            clips, table_front_end(spec), workers=workers, batch_size=batch_size
        )
        assert table["clip_id"].to_list() == clips["clip_id"].to_list()
        assert table.columns == ["clip_id", "label", "split", "speaker", "source", "mfcc"]
        np.testing.assert_array_equal(table["mfcc"].to_numpy(), expected)


def test_staged_table_has_row_groups_and_the_same_values(clips, spec, tmp_path) -> None:
    heard: list[tuple[int, int]] = []
    staged, stats = stage_feature_table(
        clips,
        table_front_end(spec),
        tmp_path,
        workers=2,
        batch_size=4,
        progress=lambda done, total: heard.append((done, total)),
    )
    # a batch at a time, in order, up to every clip
    assert [done for done, _ in heard] == [*range(4, clips.height, 4), clips.height]
    assert {total for _, total in heard} == {clips.height}
    in_memory = build_feature_table(clips, table_front_end(spec))
    assert staged.read().equals(in_memory)
    assert stats.rows == staged.rows == clips.height and stats.all_finite
    assert stats.row_groups == pq.ParquetFile(staged.path).metadata.num_row_groups >= 1


def test_other_formats_take_the_read_audio_path(tmp_path, spec) -> None:
    t = np.arange(int(0.7 * 8000)) / 8000
    sf.write(tmp_path / "at8k.wav", (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32), 8000)
    sf.write(tmp_path / "float.wav", np.full(SR + 500, 0.1, np.float32), SR, subtype="FLOAT")
    paths = [str(tmp_path / "at8k.wav"), str(tmp_path / "float.wav")]
    table = build_feature_table(
        pl.DataFrame(
            {
                "clip_id": ["a", "b"],
                "uri": paths,
                "label": ["yes"] * 2,
                "split": ["train"] * 2,
                "speaker": ["s"] * 2,
                "source": ["x"] * 2,
            }
        ),
        table_front_end(spec),
    )
    np.testing.assert_allclose(
        table["mfcc"].to_numpy(), features_for_files(paths, spec), rtol=1e-5, atol=1e-5
    )


def test_unreadable_clip_names_the_file_and_leaves_nothing_behind(tmp_path, spec) -> None:
    clips = write_clips(tmp_path, 5)
    broken = clips["uri"][3]
    with open(broken, "wb") as fh:
        fh.write(b"RIFF....WAVEfmt garbage")
    cache = FeatureCache.for_front_end(tmp_path / "cache", table_front_end(spec))
    with pytest.raises(AudioReadError, match=r"clip003\.wav"):
        stage_feature_table(
            clips, table_front_end(spec), tmp_path / "staging", cache=cache, batch_size=2
        )
    assert list((tmp_path / "staging").iterdir()) == []
    assert list((tmp_path / "cache").iterdir()) == []
    os.remove(broken)
    with pytest.raises(AudioReadError, match="missing"):
        build_feature_table(clips, table_front_end(spec))


def test_empty_clip_table(spec, tmp_path) -> None:
    empty = pl.DataFrame(
        schema=dict.fromkeys(("clip_id", "uri", "label", "split", "speaker", "source"), pl.String)
    )
    staged, stats = stage_feature_table(
        empty,
        table_front_end(spec),
        tmp_path,
        cache=FeatureCache.for_front_end(tmp_path, table_front_end(spec)),
    )
    assert stats.rows == 0 and staged.read().height == 0
    assert staged.read().schema["mfcc"] == pl.Array(pl.Float32, spec.shape)


def age(path: str, seconds: float) -> None:
    """Set a file's mtime ``seconds`` into the past (stamps of fresh writes are not trusted)."""
    when = os.stat(path).st_mtime_ns - int(seconds * 1e9)
    os.utime(path, ns=(when, when))


def test_second_build_featurizes_nothing_and_changed_clips_only(tmp_path, spec, counting) -> None:
    clips = write_clips(tmp_path, 30)
    for uri in clips["uri"]:
        age(uri, 3600)
    cache = FeatureCache.for_front_end(tmp_path / "cache", table_front_end(spec))
    reads: list[str] = []

    def load_bytes(uri: str) -> bytes:
        reads.append(uri)
        return feature_table.read_uri_bytes(uri)

    def build(table):
        reads.clear()
        counting.clips_seen = 0
        staged, stats = stage_feature_table(
            table,
            table_front_end(spec),
            tmp_path / "staging",
            ClipReader(load_bytes=load_bytes),
            cache=cache,
            workers=2,
            batch_size=8,
        )
        values = staged.read()
        staged.discard()
        return values, stats

    first, stats = build(clips)
    assert counting.clips_seen == 30 and (stats.featurized, stats.from_cache) == (30, 0)

    second, stats = build(clips)
    assert counting.clips_seen == 0 and (stats.featurized, stats.from_cache) == (0, 30)
    assert reads == []  # unchanged stamps: not a single file opened
    assert second.equals(first)  # copied from the cache, bit for bit

    # Clip 4 rewritten with the same bytes (new mtime): read and checksummed, not featurized.
    # Clip 7 rewritten with other audio: featurized again, with new values.
    path4, path7 = clips["uri"][4], clips["uri"][7]
    data4 = Path(path4).read_bytes()
    with open(path4, "wb") as fh:
        fh.write(data4)
    age(path4, 1800)
    write_wav(path7, np.full(SR, 0.2, np.float32), SR)
    # One clip removed, two new ones added, the order shuffled.
    extra = write_clips(tmp_path / "more", 2, seed=5).with_columns(
        pl.Series("clip_id", ["new0", "new1"])
    )
    changed = pl.concat([clips.filter(pl.col("clip_id") != "id010"), extra]).sample(
        fraction=1.0, shuffle=True, seed=3
    )
    third, stats = build(changed)
    assert counting.clips_seen == 3 and (stats.featurized, stats.from_cache) == (3, 28)
    assert sorted(reads) == sorted([path4, path7, *extra["uri"]])
    assert third["clip_id"].to_list() == changed["clip_id"].to_list()
    fresh = build_feature_table(changed, table_front_end(spec))
    np.testing.assert_array_equal(third["mfcc"].to_numpy(), fresh["mfcc"].to_numpy())
    by_id = dict(zip(first["clip_id"], first["mfcc"].to_numpy(), strict=True))
    third_by_id = dict(zip(third["clip_id"], third["mfcc"].to_numpy(), strict=True))
    assert not np.array_equal(third_by_id["id007"], by_id["id007"])
    np.testing.assert_array_equal(third_by_id["id004"], by_id["id004"])

    # The cache now holds exactly the clips of the last build.
    assert sorted(pl.read_parquet(cache.path)["clip_id"]) == sorted(changed["clip_id"])

    # Clip 7 was just written: its stamp is too fresh to trust, so it is read (not featurized).
    _, stats = build(changed)
    assert stats.featurized == 0 and path7 in reads and path4 not in reads


def test_racy_stamp_is_checked_by_content(tmp_path, spec, counting) -> None:
    """A file changed within the same mtime tick as its last stat keeps its stamp; the racy rule
    reads it anyway and sees the new bytes."""
    clips = write_clips(tmp_path, 2)
    cache = FeatureCache.for_front_end(tmp_path / "cache", table_front_end(spec))
    stage_feature_table(clips, table_front_end(spec), tmp_path / "staging", cache=cache)[
        0
    ].discard()
    path = clips["uri"][0]
    stamp = os.stat(path)
    write_wav(path, np.full(SR, -0.3, np.float32), SR)  # same size
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same mtime: stamp unchanged
    staged, stats = stage_feature_table(
        clips, table_front_end(spec), tmp_path / "staging", cache=cache
    )
    assert stats.featurized == 1 and counting.clips_seen == 2 + 1
    np.testing.assert_array_equal(
        staged.read()["mfcc"].to_numpy(),
        build_feature_table(clips, table_front_end(spec))["mfcc"].to_numpy(),
    )


def test_damaged_cache_is_rebuilt_not_an_error(tmp_path, spec, counting) -> None:
    clips = write_clips(tmp_path, 6)
    cache = FeatureCache.for_front_end(tmp_path / "cache", table_front_end(spec))
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(b"not parquet at all")
    _, stats = stage_feature_table(clips, table_front_end(spec), tmp_path / "staging", cache=cache)
    assert stats.featurized == 6 and counting.clips_seen == 6
    assert pl.read_parquet(cache.path).height == 6


def test_cache_name_follows_the_feature_config(spec) -> None:
    other = FeatureSpec.from_settings(FeatureSettings(n_mfcc=13), AudioSettings())
    assert feature_config_hash(spec) != feature_config_hash(other)
    assert feature_config_hash(spec) == feature_config_hash(spec.with_stats([0.0] * 10, [1.0] * 10))


def test_batches_report_what_came_from_where(clips, spec, tmp_path) -> None:
    cache = FeatureCache.for_front_end(tmp_path, table_front_end(spec))
    stage_feature_table(clips, table_front_end(spec), tmp_path / "staging", cache=cache)
    batches = list(iter_feature_batches(clips, table_front_end(spec), cache=cache, batch_size=10))
    assert [b.rows.height for b in batches] == [10, 10, 3]
    assert sum(b.featurized for b in batches) == 0
    assert all(len(b.checksums) == b.rows.height and all(b.checksums) for b in batches)
