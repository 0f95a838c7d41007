"""load_real_source: labelled clips and transcribed utterances from user manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kws_assets.core.audio.io import write_wav
from kws_assets.core.corpus.real_sources import RealSourceError, load_real_source
from kws_assets.core.speech.tts import synthesize_at
from kws_assets.settings import UNKNOWN_LABEL, AlignmentSettings, AudioSettings, RealSourceSettings

AUDIO = AudioSettings()
SR = 22050  # files at another rate than the clips: the loader resamples


def _burst(sr: int, total_s: float, start_s: float, length_s: float, seed: int = 0) -> np.ndarray:
    """Quiet noise with a loud 300 Hz 'word' from start_s for length_s."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(int(total_s * sr)) * 1e-4).astype(np.float32)
    t = np.arange(int(length_s * sr)) / sr
    i = int(start_s * sr)
    x[i : i + t.size] += 0.5 * np.sin(2 * np.pi * 300 * t).astype(np.float32)
    return x


def _source(manifest: Path, kind: str = "clips", **kw) -> RealSourceSettings:
    return RealSourceSettings(name="people", manifest=str(manifest), kind=kind, **kw)


def test_clips_are_trimmed_centred_labelled_and_bad_rows_rejected(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", _burst(SR, 2.5, 1.8, 0.4), SR)  # word late in the file
    write_wav(tmp_path / "b.wav", _burst(SR, 0.6, 0.1, 0.3, 1), SR)
    write_wav(tmp_path / "long.wav", _burst(SR, 7.0, 1.0, 0.4), SR)
    write_wav(tmp_path / "quiet.wav", np.zeros(SR, np.float32), SR)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,speaker\n"
        "a.wav,Ball,alice\n"
        "b.wav,spoon,bob\n"
        f"{tmp_path / 'b.wav'},ball,bob\n"  # absolute path to the same file is kept
        "a.wav,ball,alice\n"  # duplicate row
        "long.wav,ball,alice\n"
        "quiet.wav,ball,alice\n"
        "broken.wav,ball,alice\n"
        "nothere.wav,ball,alice\n"
        "b.wav,,bob\n"
        "x.wav,ball\n"
    )  # too few fields
    clips = load_real_source(_source(manifest), ["ball", "cup"], AUDIO)
    assert clips.labels == ["ball", UNKNOWN_LABEL, "ball"]
    assert clips.speakers == ["alice", "bob", "bob"]
    assert clips.samples.shape == (3, AUDIO.clip_samples) and clips.samples.dtype == np.float32
    # the tone (1.8-2.2 s in a 2.5 s file) is moved to the middle of the 1-s clip
    energy = clips.samples[0] ** 2
    centre = float((energy * np.arange(energy.size)).sum() / energy.sum()) / AUDIO.sample_rate
    assert abs(centre - 0.5) < 0.03
    reasons = {r.path or r.row: r.reason for r in clips.rejections}
    assert reasons["a.wav"] == "duplicate_row"
    assert reasons["long.wav"] == "too_long"
    assert reasons["quiet.wav"] == "silent"
    assert reasons["broken.wav"] in {"unreadable", "truncated"}
    assert reasons["nothere.wav"] == "missing"
    assert reasons["b.wav"] == "missing_label"
    assert "bad_manifest_row" in reasons.values()
    assert len(clips.rejections) == 7


def test_unknown_columns_and_missing_manifest(tmp_path: Path) -> None:
    csv_manifest = tmp_path / "m.csv"
    csv_manifest.write_text("path,label,lable\na.wav,ball,x\n")
    with pytest.raises(RealSourceError, match="lable"):
        load_real_source(_source(csv_manifest), ["ball"], AUDIO)
    wrong_kind = tmp_path / "t.tsv"
    wrong_kind.write_text("path\ttranscript\na.wav\tsay ball\n")
    with pytest.raises(RealSourceError, match="label"):
        load_real_source(_source(wrong_kind), ["ball"], AUDIO)
    with pytest.raises(RealSourceError, match="not found"):
        load_real_source(_source(tmp_path / "none.csv"), ["ball"], AUDIO)
    write_wav(tmp_path / "a.wav", _burst(SR, 1.0, 0.3, 0.3), SR)
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                json.dumps({"path": "a.wav", "label": "ball"}),
                json.dumps({"path": "a.wav", "label": "ball", "colour": "red"}),
                "{not json",
                "[1, 2]",
            ]
        )
        + "\n"
    )
    clips = load_real_source(_source(jsonl), ["ball"], AUDIO)
    assert clips.labels == ["ball"] and clips.speakers == ["people"]
    assert sorted(r.reason for r in clips.rejections) == [
        "bad_manifest_row",
        "bad_manifest_row",
        "unknown_columns",
    ]


def test_utterances_are_aligned_and_cut_like_the_corpus(tmp_path: Path) -> None:
    for i, voice in enumerate(["en-us+m3", "en-us+f2"]):
        speech = synthesize_at("please say ball again", SR, voice=voice, rate=150)
        write_wav(tmp_path / f"u{i}.wav", speech.samples, SR)
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    manifest = tmp_path / "utt.csv"
    manifest.write_text(
        "path,transcript,speaker\nu0.wav,please say ball again,m3\n"
        "u1.wav,please say ball again,f2\nbad.wav,ball,m3\n"
    )
    alignment = AlignmentSettings(unknown_per_utterance=1, min_confidence=0.0)
    clips = load_real_source(
        _source(manifest, kind="utterances"), ["ball"], AUDIO, alignment=alignment
    )
    assert [r.reason for r in clips.rejections] == ["unreadable"]
    assert clips.labels.count("ball") == 2 and clips.labels.count(UNKNOWN_LABEL) == 2
    assert set(clips.speakers) == {"m3", "f2"}
    assert all("#" in name for name in clips.names)
    ball = [w for w, lab in zip(clips.words, clips.labels, strict=True) if lab == "ball"]
    assert ball == ["ball", "ball"]
    assert np.abs(clips.samples).max(axis=1).min() > 0.01  # every clip holds speech
