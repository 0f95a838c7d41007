"""Corpus connectors on generated corpora: manifest, Common Voice (MP3), LibriSpeech (FLAC),
Speech Commands (labelled clips + background noise), path safety, and per-row problems."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from kws_assets.config import corpus_reading
from kws_assets.core.audio import quality
from kws_assets.core.corpus import ingest as corpus
from kws_assets.core.corpus import labeled_clips
from kws_assets.core.corpus.connectors import common_voice
from kws_assets.core.corpus.connectors.base import UnsafePathError, corpus_root, member
from kws_assets.core.corpus.connectors.speech_commands import keep_unknown, speaker_from_name
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets_tests.corpus_files import make_config, tone

SR = 16000


def by_path(table: pl.DataFrame) -> dict[str, dict]:
    return {r["original_path"]: r for r in table.iter_rows(named=True)}


# ----------------------------------------------------------------------------------- path safety


@pytest.mark.parametrize(
    "relative",
    ["../x.wav", "a/../../x.wav", "/etc/passwd", "s3://b/k.wav", "C:/x.wav", "", ".", "a\x00b.wav"],
)
def test_member_refuses_paths_that_leave_the_root(tmp_path, relative):
    with pytest.raises(UnsafePathError):
        member(corpus_root(tmp_path), relative)


def test_member_allows_paths_inside_and_refuses_links_out(tmp_path):
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "root" / "a" / "x.wav").write_bytes(b"x")
    (tmp_path / "secret.wav").write_bytes(b"s")
    os.symlink(tmp_path / "secret.wav", tmp_path / "root" / "link.wav")
    root = corpus_root(tmp_path / "root")
    assert str(member(root, "a/./b/../x.wav")) == str((tmp_path / "root" / "a" / "x.wav").resolve())
    assert str(member(root, "a\\x.wav")).endswith("a/x.wav")
    with pytest.raises(UnsafePathError, match="outside the corpus root"):
        member(root, "link.wav")
    remote = corpus_root("s3://bucket/corpus")
    assert str(member(remote, "a/b.wav")) == "s3://bucket/corpus/a/b.wav"
    with pytest.raises(UnsafePathError):
        member(remote, "../other/b.wav")


# -------------------------------------------------------------------------------------- manifest


def test_manifest_csv_and_jsonl_keep_provenance_and_record_formats(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    sf.write(root / "a.wav", tone(), SR)
    sf.write(
        root / "stereo.wav", np.stack([tone(1.5, sr=44100), tone(1.5, 330, sr=44100)], 1), 44100
    )
    sf.write(root / "deep.flac", tone(seed=2), SR, subtype="PCM_24")
    (root / "manifest.csv").write_text(
        "path,transcript,speaker,license\n"
        "a.wav,say yes now,alice,CC-BY-4.0\n"
        'stereo.wav,"no, ""quoted""",bob,\n'
        "deep.flac,yes,carol,\n"
    )
    (root / "more.jsonl").write_text(
        json.dumps({"path": "a.wav", "transcript": "yes", "speaker": "x:dan", "language": "de"})
        + "\n\n"
    )
    cfg = make_config(
        tmp_path,
        [
            {"kind": "manifest", "name": "office", "root": str(root), "license": "custom"},
            {"kind": "manifest", "name": "home", "root": str(root), "manifest": "more.jsonl"},
        ],
    )
    table = corpus.load_corpus(cfg.sources, corpus_reading(cfg)).table
    office = by_path(table.filter(pl.col("source") == "office"))
    assert office["a.wav"]["license"] == "CC-BY-4.0" and office["deep.flac"]["license"] == "custom"
    assert office["a.wav"]["speaker"] == "office:alice"
    assert office["stereo.wav"]["transcript"] == 'no, "quoted"'
    assert (office["stereo.wav"]["sample_rate"], office["stereo.wav"]["channels"]) == (44100, 2)
    assert office["stereo.wav"]["duration_s"] == pytest.approx(1.5)
    assert (office["deep.flac"]["subtype"], office["deep.flac"]["bit_depth"]) == ("PCM_24", 24)
    assert office["a.wav"]["uri"] == str((root / "a.wav").resolve())
    # the same bytes listed by a second source: a duplicate, named after the first
    home = table.filter(pl.col("source") == "home").row(0, named=True)
    assert (
        home["reject_reason"] == quality.DUPLICATE_AUDIO and "office:a.wav" in home["reject_detail"]
    )
    assert home["speaker"] == "x:dan" and home["language"] == "de"
    assert corpus.usable_rows(table).height == 3


def test_missing_manifest_is_one_rejected_row_and_other_sources_go_on(tmp_path):
    root = tmp_path / "ok"
    root.mkdir()
    sf.write(root / "a.wav", tone(), SR)
    (root / "manifest.csv").write_text("path,transcript,speaker\na.wav,yes,alice\n")
    (tmp_path / "nocols").mkdir()
    (tmp_path / "nocols" / "manifest.csv").write_text("file,text\na.wav,yes\n")
    cfg = make_config(
        tmp_path,
        [
            {"kind": "manifest", "name": "gone", "root": str(tmp_path / "gone")},
            {"kind": "manifest", "name": "nocols", "root": str(tmp_path / "nocols")},
            {"kind": "manifest", "name": "ok", "root": str(root)},
        ],
    )
    table = corpus.load_corpus(cfg.sources, corpus_reading(cfg)).table
    reasons = dict(zip(table["source"], table["reject_reason"], strict=True))
    assert reasons == {
        "gone": quality.SOURCE_UNREADABLE,
        "nocols": quality.SOURCE_UNREADABLE,
        "ok": None,
    }
    detail = table.filter(pl.col("source") == "nocols")["reject_detail"][0]
    assert "missing columns" in detail and "speaker" in detail


def test_only_with_keywords_skips_other_transcripts_before_reading(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    for i in range(3):
        sf.write(root / f"{i}.wav", tone(seed=i), SR)
    (root / "manifest.csv").write_text(
        'path,transcript,speaker\n0.wav,Yes please,a\n1.wav,nothing here,b\n2.wav,"say no, now",c\n'
    )
    cfg = make_config(
        tmp_path, [{"kind": "manifest", "name": "m", "root": str(root), "only_with_keywords": True}]
    )
    loaded = corpus.load_corpus(cfg.sources, corpus_reading(cfg))
    assert sorted(loaded.table["original_path"]) == ["0.wav", "2.wav"]
    assert loaded.stats.skipped_without_keyword == 1 and loaded.stats.files_read == 2


# ---------------------------------------------------------------------------------- Common Voice


def write_common_voice(root: Path) -> None:
    (root / "clips").mkdir(parents=True)
    for i in range(3):
        sf.write(
            root / "clips" / f"common_voice_en_{i}.mp3",
            tone(1.2, 300 + 50 * i, seed=i),
            SR,
            format="MP3",
            subtype="MPEG_LAYER_III",
        )
    (root / "validated.tsv").write_text(
        "client_id\tpath\tsentence_id\tsentence\tup_votes\tdown_votes\tlocale\n"
        'aaa\tcommon_voice_en_0.mp3\ts0\tShe said "yes" twice.\t2\t0\ten\n'
        "bbb\tcommon_voice_en_1.mp3\ts1\tNo 'way\t2\t0\ten\n"
        "\tcommon_voice_en_2.mp3\ts2\tno speaker here\t2\t0\ten\n"
        "ccc\tcommon_voice_en_9.mp3\ts9\tmissing clip\t2\t0\ten\n"
    )


def test_common_voice_layout_decodes_mp3_without_ffmpeg(tmp_path):
    if not common_voice.mp3_supported():
        pytest.skip("this libsndfile has no MP3 codec; the clear-error test covers this machine")
    root = tmp_path / "cv" / "en"
    write_common_voice(root)
    cfg = make_config(tmp_path, [{"kind": "common_voice", "name": "cv", "root": str(root)}])
    rows = by_path(corpus.load_corpus(cfg.sources, corpus_reading(cfg)).table)
    first = rows["clips/common_voice_en_0.mp3"]
    assert first["reject_reason"] is None and first["transcript"] == 'She said "yes" twice.'
    assert (
        first["speaker"] == "cv:aaa" and first["language"] == "en" and first["license"] == "CC0-1.0"
    )
    assert first["subtype"] == "MPEG_LAYER_III" and first["bit_depth"] is None
    assert first["duration_s"] == pytest.approx(1.2, abs=0.1)  # MP3 frames pad a little
    assert rows["clips/common_voice_en_1.mp3"]["transcript"] == "No 'way"
    assert rows["clips/common_voice_en_2.mp3"]["reject_reason"] == quality.MISSING_SPEAKER
    assert rows["clips/common_voice_en_9.mp3"]["reject_reason"] == quality.MISSING


def test_common_voice_without_mp3_decoder_says_what_to_install(tmp_path, monkeypatch):
    root = tmp_path / "cv"
    root.mkdir()
    (root / "clips").mkdir()
    (root / "validated.tsv").write_text("client_id\tpath\tsentence\naaa\tx.mp3\tyes\n")
    monkeypatch.setattr(common_voice, "mp3_supported", lambda: False)
    cfg = make_config(tmp_path, [{"kind": "common_voice", "name": "cv", "root": str(root)}])
    row = corpus.load_corpus(cfg.sources, corpus_reading(cfg)).table.row(0, named=True)
    assert row["reject_reason"] == quality.DECODER_MISSING
    assert "soundfile>=0.12.1" in row["reject_detail"] and "libsndfile" in row["reject_detail"]


# ----------------------------------------------------------------------------------- LibriSpeech


def test_librispeech_layout_reads_transcripts_and_flac(tmp_path):
    root = tmp_path / "dev-clean"
    chapter = root / "84" / "121123"
    chapter.mkdir(parents=True)
    for n in range(2):
        sf.write(chapter / f"84-121123-000{n}.flac", tone(1.0 + n, seed=n), SR, format="FLAC")
    (chapter / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 YES SIR\n84-121123-0002 NOT ON DISK\n"
        "garbage line without id\n"
    )
    cfg = make_config(tmp_path, [{"kind": "librispeech", "name": "ls", "root": str(root)}])
    rows = by_path(corpus.load_corpus(cfg.sources, corpus_reading(cfg)).table)
    ok = rows["84/121123/84-121123-0001.flac"]
    assert (
        ok["transcript"] == "YES SIR" and ok["speaker"] == "ls:84" and ok["license"] == "CC-BY-4.0"
    )
    assert ok["duration_s"] == pytest.approx(2.0) and ok["bit_depth"] == 16
    assert rows["84/121123/84-121123-0002.flac"]["reject_reason"] == quality.MISSING
    assert rows["84/121123/84-121123.trans.txt:4"]["reject_reason"] == quality.BAD_MANIFEST_ROW


# ------------------------------------------------------------------------------- Speech Commands


def write_speech_commands(root: Path) -> None:
    words = {
        "yes": ["0a1b2c3d", "ffee0011"],
        "cat": ["0a1b2c3d", "12345678", "9abcdef0"],
        "no": ["ffee0011"],
    }
    for w, (word, speakers) in enumerate(words.items()):
        (root / word).mkdir(parents=True)
        for i, spk in enumerate(speakers):  # distinct content: identical files are duplicates
            sf.write(
                root / word / f"{spk}_nohash_{i}.wav",
                tone(0.8 if i else 1.0, 300 + 40 * i, seed=10 * w + i),
                SR,
            )
    (root / "_background_noise_").mkdir()
    sf.write(
        root / "_background_noise_" / "white.wav",
        0.05 * np.random.default_rng(1).standard_normal(int(3.5 * SR)),
        SR,
    )
    (root / "README.md").write_text("not audio")
    (root / "validation_list.txt").write_text("yes/0a1b2c3d_nohash_0.wav\n")


def test_speech_commands_layout_labels_speakers_and_silence_windows(tmp_path):
    root = tmp_path / "sc"
    write_speech_commands(root)
    cfg = make_config(
        tmp_path,
        [{"kind": "speech_commands", "name": "sc", "root": str(root), "silence_clips_per_file": 2}],
        keywords=("yes",),
    )
    table = corpus.load_corpus(cfg.sources, corpus_reading(cfg)).table
    assert corpus.rejected_rows(table).height == 0
    labels = dict(zip(table["original_path"], table["clip_label"], strict=True))
    assert labels["yes/0a1b2c3d_nohash_0.wav"] == "yes"
    assert labels["no/ffee0011_nohash_0.wav"] == "_unknown_"  # not a configured keyword
    assert labels["cat/12345678_nohash_1.wav"] == "_unknown_"
    assert labels["_background_noise_/white.wav"] == "_silence_"
    speakers = dict(zip(table["original_path"], table["speaker"], strict=True))
    assert (
        speakers["cat/0a1b2c3d_nohash_0.wav"]
        == speakers["yes/0a1b2c3d_nohash_0.wav"]
        == "sc:0a1b2c3d"
    )
    assert corpus.rows_to_align(table).height == 0  # nothing here needs alignment

    store = ClipStore.at(tmp_path / "clips")
    rows, failures = labeled_clips.cut_labeled_clips(
        list(corpus.labeled_rows(table).iter_rows(named=True)),
        store,
        cfg.audio,
        corpus.silence_windows_by_source(cfg.sources),
    )
    assert failures == []
    clips = pl.DataFrame(rows)
    silence = clips.filter(pl.col("label") == "_silence_")
    assert silence["start_s"].to_list() == [0.0, 1.0]  # 3.5 s of noise, at most 2 windows
    assert clips.height == table.height - 1 + 2
    for row in rows:
        samples, rate = sf.read(row["uri"], dtype="float32")
        assert (rate, samples.size) == (SR, cfg.audio.clip_samples)
    short = next(
        r
        for r in rows
        if r["origin_id"]
        == table.filter(pl.col("original_path") == "yes/ffee0011_nohash_1.wav")["utterance_id"][0]
    )
    padded, _ = sf.read(short["uri"], dtype="float32")
    assert np.all(padded[:1000] == 0) and np.all(padded[-1000:] == 0)  # 0.8 s centred in 1 s
    # cutting again reuses the stored clips (same ids, same files)
    again, _ = labeled_clips.cut_labeled_clips(
        list(corpus.labeled_rows(table).iter_rows(named=True)),
        store,
        cfg.audio,
        corpus.silence_windows_by_source(cfg.sources),
    )
    assert [r["uri"] for r in again] == [r["uri"] for r in rows]


def test_speech_commands_unknown_share_is_a_stable_hash(tmp_path):
    assert speaker_from_name("3cfc6b3a_nohash_1.wav") == "3cfc6b3a"
    assert speaker_from_name("odd-name.wav") == "odd-name"
    paths = [f"cat/{i:08x}_nohash_0.wav" for i in range(400)]
    kept = [p for p in paths if keep_unknown(p, 25.0)]
    assert 0.18 < len(kept) / len(paths) < 0.32
    assert kept == [p for p in paths if keep_unknown(p, 25.0)]
    assert all(keep_unknown(p, 100.0) for p in paths) and not any(
        keep_unknown(p, 0.0) for p in paths
    )
