"""Content versioning of the corpus: the data version follows content only, and re-ingesting an
unchanged corpus reads no file (the file-facts cache)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf

from kws_assets.config import corpus_reading
from kws_assets.core.corpus import ingest as corpus
from kws_assets.core.corpus.connectors.files import CACHE_FILE, FileFactsCache
from kws_assets.settings import KwsConfig

SR = 16000


def write_corpus(root: Path, n: int = 4) -> None:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = ["path,transcript,speaker"]
    for i in range(n):
        sf.write(root / f"u{i}.wav", (0.2 * rng.standard_normal(SR)).astype(np.float32), SR)
        lines.append(f"u{i}.wav,say yes {i},spk{i}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")


def load(cfg: KwsConfig) -> corpus.CorpusLoad:
    """The config's sources read the way the raw_corpus asset reads them."""
    return corpus.load_corpus(cfg.sources, corpus_reading(cfg))


def config(tmp_path: Path, root: Path, **ingest) -> KwsConfig:
    return KwsConfig.model_validate(
        {
            "keywords": ["yes"],
            "storage": {"root": str(tmp_path / "data")},
            "ingest": ingest,
            "sources": [{"kind": "manifest", "name": "m", "root": str(root)}],
        }
    )


def test_unchanged_corpus_is_not_read_again_and_keeps_its_version(tmp_path):
    root = tmp_path / "c"
    write_corpus(root)
    cfg = config(tmp_path, root)
    first = load(cfg)
    assert (first.stats.files_read, first.stats.files_from_cache) == (4, 0)
    second = load(cfg)
    assert (second.stats.files_read, second.stats.files_from_cache, second.stats.bytes_read) == (
        0,
        4,
        0,
    )
    assert corpus.content_version(second.table) == corpus.content_version(first.table)
    assert second.table.equals(first.table)
    assert len(FileFactsCache(cfg.storage_path("ingest", CACHE_FILE))) == 4


def test_changed_audio_changes_the_version_and_only_that_file_is_read(tmp_path):
    root = tmp_path / "c"
    write_corpus(root)
    cfg = config(tmp_path, root)
    before = load(cfg)
    sf.write(
        root / "u2.wav", 0.1 * np.ones(SR // 2, dtype=np.float32) * np.sin(np.arange(SR // 2)), SR
    )
    after = load(cfg)
    assert after.stats.files_read == 1 and after.stats.files_from_cache == 3
    assert corpus.content_version(after.table) != corpus.content_version(before.table)
    changed = after.table.filter(pl.col("original_path") == "u2.wav").row(0, named=True)
    assert changed["duration_s"] == 0.5
    assert (
        changed["utterance_id"]
        != before.table.filter(pl.col("original_path") == "u2.wav")["utterance_id"][0]
    )


def test_new_mtime_with_same_bytes_is_reread_but_keeps_the_version(tmp_path):
    root = tmp_path / "c"
    write_corpus(root)
    cfg = config(tmp_path, root)
    before = load(cfg)
    stat = os.stat(root / "u1.wav")
    os.utime(root / "u1.wav", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = load(cfg)
    assert after.stats.files_read == 1
    assert corpus.content_version(after.table) == corpus.content_version(before.table)


def test_version_ignores_where_the_corpus_lives_but_follows_transcripts(tmp_path):
    root = tmp_path / "c"
    write_corpus(root)
    before = load(config(tmp_path, root))
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)
    relocated = load(config(tmp_path, moved))
    assert relocated.stats.files_read == 4  # new locations: read once
    assert corpus.content_version(relocated.table) == corpus.content_version(before.table)
    manifest = (moved / "manifest.csv").read_text().replace("say yes 3", "say yes three")
    (moved / "manifest.csv").write_text(manifest)
    edited = load(config(tmp_path, moved))
    assert edited.stats.files_read == 0
    assert corpus.content_version(edited.table) != corpus.content_version(relocated.table)
    shuffled = edited.table.sample(fraction=1.0, shuffle=True, seed=3)
    assert corpus.content_version(shuffled) == corpus.content_version(edited.table)


def test_disabled_cache_reads_every_time(tmp_path):
    root = tmp_path / "c"
    write_corpus(root, n=2)
    cfg = config(tmp_path, root, hash_cache=False)
    load(cfg)
    assert load(cfg).stats.files_read == 2
    assert not cfg.storage_path("ingest", CACHE_FILE).exists()


def test_attach_provenance_carries_the_recording_into_clip_rows(tmp_path):
    root = tmp_path / "c"
    write_corpus(root, n=2)
    table = load(config(tmp_path, root)).table
    utterance = table.row(0, named=True)
    clips = pl.DataFrame(
        {
            "clip_id": ["a", "b"],
            "origin_id": [utterance["utterance_id"], "synthetic|x"],
            "license": [None, "generated"],
        }
    )
    out = corpus.attach_provenance(clips, table)
    first, second = out.row(0, named=True), out.row(1, named=True)
    assert first["original_path"] == utterance["original_path"] and first["license"] == "unknown"
    assert (first["original_sample_rate"], first["original_bit_depth"]) == (SR, 16)
    assert second["license"] == "generated" and second["original_path"] is None


def test_keyword_mentions_use_the_aligners_normalisation() -> None:
    from kws_assets.core.corpus.ingest import mentions_keyword

    assert mentions_keyword("STOP! Don't go.", ["stop"], "en")
    assert mentions_keyword("I counted to 2 twice", ["two"], "en")
    assert mentions_keyword("Dijo que sí, claro", ["Sí"], "es")
    assert mentions_keyword("tengo 2 gatos", ["dos"], "es")
    assert not mentions_keyword("stopping is not stop-words", ["go"], "en")
    assert not mentions_keyword("stopping now", ["stop"], "en")  # a word, not a prefix
