"""Curation: every candidate lands in exactly one table, dead letters of upstream stages reach the
quarantine with their stage, thresholds can be changed and clips move back, splits stay put when
data is added, and quality metrics, confidence and provenance reach the validated set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kws_assets.core.audio import quality
from kws_assets.core.dataset import curation
from kws_assets_tests.clip_candidates import SR, Candidates, burst_clip, config


def test_every_candidate_lands_in_exactly_one_table_with_stage_and_reason(tmp_path):
    c = Candidates(tmp_path)
    good = [c.add(f"good{i}", burst_clip(i), speaker=f"src:s{i}") for i in range(6)]
    clipped = c.add("clipped", np.clip(8 * burst_clip(10), -1, 1))
    quiet = c.add("quiet", 0.0003 * burst_clip(11) / 0.3)
    dc = c.add("dc", burst_clip(12) + 0.2)
    short = c.add("short", burst_clip(13)[:12000])
    missing = c.add("missing", burst_clip(14))
    Path(c.rows[-1]["uri"]).unlink()
    rows = [
        *c.rows,
        curation.dead_letter(
            "dl1",
            stage="ingest",
            reason=quality.PATH_OUTSIDE_ROOT,
            detail="'../x'",
            source="src",
            uri="../x.wav",
            original_path="../x.wav",
        ),
        curation.dead_letter(
            "dl1",
            stage="ingest",
            reason=quality.PATH_OUTSIDE_ROOT,
            detail="'../x'",
            source="src",
            uri="../x.wav",
            original_path="../x.wav",
        ),  # from a 2nd partition
        curation.dead_letter(
            "dl2",
            stage="alignment",
            reason=quality.ALIGNMENT_FAILED,
            detail="empty transcript",
            source="src",
            uri="/c/p.wav",
            speaker="src:z",
        ),
    ]
    result = curation.curate(curation.clip_table(rows), config(), c.store.read)
    validated, quarantined = result.validated, result.quarantined
    assert set(validated["clip_id"]) == set(good)
    assert set(validated["clip_id"]).isdisjoint(quarantined["clip_id"])
    assert quarantined.height == 7  # five bad clips, two dead letters (one listed twice)
    by_id = {r["clip_id"]: r for r in quarantined.iter_rows(named=True)}
    assert (by_id[clipped]["stage"], by_id[clipped]["reason"]) == ("quality", quality.CLIPPED)
    assert by_id[quiet]["reason"] == quality.TOO_QUIET and "too_quiet" in by_id[quiet]["reasons"]
    assert by_id[dc]["reason"] == quality.DC_OFFSET and by_id[dc]["dc_offset"] > 0.1
    assert by_id[short]["reason"] == quality.WRONG_DURATION and by_id[short]["duration_s"] == 0.75
    assert (by_id[missing]["stage"], by_id[missing]["reason"]) == ("quality", quality.MISSING)
    assert (by_id["dl1"]["stage"], by_id["dl1"]["reason"]) == ("ingest", quality.PATH_OUTSIDE_ROOT)
    assert by_id["dl1"]["original_path"] == "../x.wav"
    assert (by_id["dl2"]["stage"], by_id["dl2"]["speaker"]) == ("alignment", "src:z")
    assert result.reason_counts()[quality.PATH_OUTSIDE_ROOT] == 1
    table = curation.reason_table(quarantined)
    assert table["clips"].sum() == quarantined.height and set(table.columns) >= {
        "stage",
        "reason",
        "example",
    }


def test_quarantined_clips_move_back_when_thresholds_are_relaxed(tmp_path):
    c = Candidates(tmp_path)
    loud = [c.add(f"loud{i}", burst_clip(i, level=0.3), speaker=f"src:s{i}") for i in range(4)]
    soft = [
        c.add(f"soft{i}", burst_clip(10 + i, level=0.01, noise=0.0001), speaker=f"src:t{i}")
        for i in range(3)
    ]
    strict = curation.curate(c.table(), config(quality={"min_rms_dbfs": -30.0}), c.store.read)
    assert set(strict.quarantined["clip_id"]) == set(soft)
    assert set(strict.quarantined["reason"]) == {quality.TOO_QUIET}
    relaxed = curation.curate(c.table(), config(), c.store.read)
    assert set(relaxed.validated["clip_id"]) == set(loud) | set(soft)
    assert relaxed.quarantined.height == 0
    # the measurements are the same either way: only the verdict changed
    soft_rms = strict.quarantined.sort("clip_id")["rms_dbfs"].to_list()
    assert (
        relaxed.validated.filter(pl.col("clip_id").is_in(soft))
        .sort("clip_id")["rms_dbfs"]
        .to_list()
        == soft_rms
    )


def test_a_clip_never_changes_split_when_new_clips_arrive(tmp_path):
    c = Candidates(tmp_path)
    for i in range(40):
        c.add(f"first{i}", burst_clip(i), speaker=f"src:speaker{i % 30}")
    before = curation.curate(c.table(), config(), c.store.read).validated
    assert set(before["split"]) == {"train", "val", "test"}
    for i in range(40):  # new clips of known and of new speakers
        c.add(f"later{i}", burst_clip(100 + i), speaker=f"src:speaker{20 + i}")
    after = curation.curate(c.table(), config(), c.store.read).validated
    assert after.height == 80
    joined = before.select("clip_id", "split").join(
        after.select("clip_id", "split"), on="clip_id", suffix="_after"
    )
    assert joined.height == before.height
    assert (joined["split"] == joined["split_after"]).all()
    assert after.group_by("speaker").agg(pl.col("split").n_unique())["split"].max() == 1


def test_metrics_confidence_and_provenance_reach_the_validated_set(tmp_path):
    c = Candidates(tmp_path)
    c.add(
        "aligned",
        burst_clip(1),
        source="field",
        speaker="field:a",
        confidence=0.87,
        word="yes",
        license="CC-BY-4.0",
        original_path="rec/a.wav",
        original_sample_rate=44100,
        original_bit_depth=24,
    )
    c.add("synth", burst_clip(2), source="synthetic", speaker="tts:en-us+m1")
    c.add(
        "noise",
        burst_clip(3, level=0.0)
        + 0.01 * np.random.default_rng(0).standard_normal(SR).astype(np.float32),
        label="_silence_",
        source="noise",
        speaker="noise:1",
    )
    result = curation.curate(c.table(), config(), c.store.read)
    rows = {r["clip_id"]: r for r in result.validated.iter_rows(named=True)}
    assert set(rows) == {"aligned", "synth", "noise"}
    aligned = rows["aligned"]
    assert aligned["confidence"] == pytest.approx(0.87) and aligned["word"] == "yes"
    assert (aligned["original_sample_rate"], aligned["original_bit_depth"]) == (44100, 24)
    assert aligned["license"] == "CC-BY-4.0" and aligned["original_path"] == "rec/a.wav"
    assert rows["synth"]["confidence"] is None
    assert "espeak-ng" in rows["synth"]["license"] and "noise" in rows["noise"]["license"]
    for column in curation.QUALITY_COLUMNS:
        assert all(np.isfinite(r[column]) for r in rows.values()), column
    assert rows["aligned"]["speech_ratio"] > 0.1 and rows["aligned"]["snr_db"] > 10
    assert set(result.validated.columns) >= set(curation.VALIDATED_COLUMNS)


def test_curation_is_the_same_with_one_and_two_workers(tmp_path, monkeypatch):
    """The clips are read, measured and embedded on worker processes a batch at a time: the
    validated set, the quarantine and the outlier scores do not depend on the worker count."""
    monkeypatch.setattr(curation, "EMBED_BATCH", 4)  # several batches from a few clips
    c = Candidates(tmp_path)
    for i in range(14):
        c.add(f"k{i}", burst_clip(i), label="yes" if i % 2 else "no", speaker=f"src:s{i % 5}")
    c.add("clipped", np.clip(8 * burst_clip(20), -1, 1), label="yes")
    c.add("gone", burst_clip(21), label="no")
    Path(c.rows[-1]["uri"]).unlink()
    cfg = config(outliers={"enabled": True, "min_clips": 3, "quarantine": False})
    one = curation.curate(c.table(), cfg, c.store.read, workers=1)
    two = curation.curate(c.table(), cfg, c.store.read, workers=2)
    assert one.validated.equals(two.validated) and one.quarantined.equals(two.quarantined)
    assert one.validated["outlier_score"].drop_nulls().len() > 0  # keyword clips were embedded
    assert set(one.quarantined["clip_id"]) == {"clipped", "gone"}
