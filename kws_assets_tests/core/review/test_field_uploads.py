"""Field uploads: audio a device saved around a false (or missed) activation, dropped in the
landing zone with a ``tag``, trains nothing until a person confirmed it; it heads the review
queue; confirmed, a false wake is a hard ``_unknown_`` negative of the validated set and a missed
wake a keyword positive; a bad tag is a rejected manifest row."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kws_assets.config import corpus_reading, landing_zone
from kws_assets.core.audio.io import write_wav
from kws_assets.core.corpus import ingest, labeled_clips
from kws_assets.core.corpus.landing import batch_source
from kws_assets.core.dataset import curation
from kws_assets.core.review import queue as q
from kws_assets.core.review.apply import AWAITING_REVIEW, apply_decisions
from kws_assets.core.review.decisions import KEEP, Decision, read_decisions, record_decision
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.core.storage.object_store import LocalObjectStore
from kws_assets.settings import UNKNOWN_LABEL, KwsConfig
from kws_assets_tests.clip_candidates import SR, burst_clip

MANIFEST = """path,transcript,speaker,tag,label
tv1.wav,,kitchen-speaker,false_wake,
tv2.wav,,kitchen-speaker,false_wake,
tv3.wav,the weather today,living-room,FALSE_WAKE,
missed.wav,yes,kitchen-speaker,missed_wake,yes
odd.wav,,kitchen-speaker,maybe_wake,
nolabel.wav,,kitchen-speaker,missed_wake,
"""


def land_field_batch(cfg: KwsConfig) -> str:
    """Drop one device batch in the landing zone; its batch key."""
    folder = Path(landing_zone(cfg).root) / "device-42"
    folder.mkdir(parents=True)
    for i, name in enumerate(["tv1", "tv2", "tv3", "missed", "odd", "nolabel"]):
        write_wav(folder / f"{name}.wav", burst_clip(100 + i), SR)
    (folder / "manifest.csv").write_text(MANIFEST)
    return "landing-device-42"


def candidates_of(cfg: KwsConfig, key: str, store: ClipStore) -> pl.DataFrame:
    """The batch ingested and cut as unknown_clips / aligned_keywords cut labelled recordings."""
    source = batch_source(landing_zone(cfg), cfg.sources, key, cfg.language)
    corpus = ingest.load_corpus([source], corpus_reading(cfg)).table
    rows, failures = labeled_clips.cut_labeled_clips(
        list(ingest.labeled_rows(corpus).iter_rows(named=True)), store, cfg.audio, {}
    )
    assert failures == []
    dead = curation.corpus_dead_letters(corpus)
    return ingest.attach_provenance(curation.clip_table(rows + dead), corpus)


def test_field_false_wakes_wait_for_a_person_then_become_hard_negatives(tmp_path):
    cfg = KwsConfig.model_validate(
        {
            "keywords": ["yes", "no"],
            "outliers": {"enabled": False},
            "storage": {"root": str(tmp_path / "data")},
            "automation": {"landing_settle_s": 0},
        }
    )
    store = ClipStore.at(tmp_path / "clips")
    candidates = candidates_of(cfg, land_field_batch(cfg), store)
    settings = curation.CurationSettings(
        keywords=cfg.keywords,
        audio=cfg.audio,
        features=cfg.features,
        quality=cfg.quality,
        min_confidence=cfg.alignment.min_confidence,
        outliers=cfg.outliers,
        splits=cfg.splits,
    )
    decisions = LocalObjectStore.at(tmp_path / "decisions")

    def curate() -> curation.CurationResult:
        applied = apply_decisions(candidates, read_decisions(decisions))
        return curation.curate(applied.candidates, settings, store.read)

    before = curate()
    assert before.validated.is_empty()  # nothing a device sent trains before a person heard it
    held = before.quarantined.filter(pl.col("reason") == AWAITING_REVIEW)
    assert sorted(held["field_tag"].to_list()) == ["false_wake"] * 3 + ["missed_wake"]
    bad = before.quarantined.filter(pl.col("reason") == "bad_manifest_row")["detail"].to_list()
    assert len(bad) == 2 and any("maybe_wake" in d for d in bad)

    queue = q.rank_queue(
        before.validated,
        before.quarantined,
        cfg.review,
        min_confidence=cfg.alignment.min_confidence,
        outlier_threshold=cfg.outliers.threshold,
    )
    assert sorted(queue["reason"]) == [q.FIELD_FALSE_WAKE] * 3 + [q.FIELD_MISSED_WAKE]
    assert queue["score"].to_list() == [1.0] * 4

    for row in queue.iter_rows(named=True):  # a person listens and confirms each
        record_decision(
            decisions,
            Decision.make(
                clip_id=row["clip_id"],
                data_version=row["data_version"],
                action=KEEP,
                old_label=row["label"],
                reason=row["reason"],
                reviewer="ana",
            ),
        )
    after = curate()
    v = after.validated
    negatives = v.filter(pl.col("field_tag") == "false_wake")
    assert negatives.height == 3 and set(negatives["label"]) == {UNKNOWN_LABEL}
    assert set(negatives["review"]) == {KEEP}
    assert v.filter(pl.col("field_tag") == "missed_wake")["label"].to_list() == ["yes"]
    assert after.quarantined.filter(pl.col("reason") == AWAITING_REVIEW).is_empty()
