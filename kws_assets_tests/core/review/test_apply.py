"""Decisions reach the next curation: a relabelled clip is validated under its new label (even
below the confidence threshold, since a person heard it), a rejected clip is quarantined as
``review_rejected``, a kept clip is marked reviewed, a decision about a vanished clip is stale;
the data card's summary counts them per queue reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from kws_assets.core.dataset import curation
from kws_assets.core.review.apply import (
    REVIEW_REJECTED,
    STAGE_REVIEW,
    apply_decisions,
    review_summary,
)
from kws_assets.core.review.decisions import (
    KEEP,
    REJECT,
    RELABEL,
    Decision,
    read_decisions,
    record_decision,
)
from kws_assets.core.storage.object_store import LocalObjectStore
from kws_assets_tests.clip_candidates import Candidates, burst_clip, config

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def decide(
    store: LocalObjectStore,
    clip: str,
    action: str,
    new_label: str | None = None,
    reason: str = "near_min_confidence",
    seconds: int = 0,
) -> None:
    record_decision(
        store,
        Decision.make(
            clip_id=clip,
            data_version="v",
            action=action,
            old_label="yes",
            new_label=new_label,
            reason=reason,
            reviewer="ana",
            now=T0 + timedelta(seconds=seconds),
        ),
    )


def test_decisions_flow_through_curation(tmp_path):
    c = Candidates(tmp_path)
    c.add("relabelled", burst_clip(1), confidence=0.2)  # below min_confidence: a person heard it
    c.add("rejected", burst_clip(2), confidence=0.9)
    c.add("kept", burst_clip(3), confidence=0.9)
    c.add("untouched", burst_clip(4), confidence=0.2)
    decisions = LocalObjectStore.at(tmp_path / "decisions")
    decide(decisions, "relabelled", RELABEL, "no", reason="quarantined_by_margin")
    decide(decisions, "rejected", KEEP)
    decide(decisions, "rejected", REJECT, reason="teacher_disagrees", seconds=1)  # changed mind
    decide(decisions, "kept", KEEP)
    decide(decisions, "gone", REJECT)

    applied = apply_decisions(c.table(), read_decisions(decisions))
    assert (applied.applied, applied.stale) == (3, 1)
    result = curation.curate(applied.candidates, config(), c.store.read)
    v = {r["clip_id"]: r for r in result.validated.iter_rows(named=True)}
    qu = {r["clip_id"]: r for r in result.quarantined.iter_rows(named=True)}

    assert set(v) == {"relabelled", "kept"} and set(qu) == {"rejected", "untouched"}
    assert (v["relabelled"]["label"], v["relabelled"]["label_before_review"]) == ("no", "yes")
    assert v["relabelled"]["review"] == RELABEL
    assert (v["kept"]["label"], v["kept"]["review"]) == ("yes", KEEP)
    assert (qu["rejected"]["stage"], qu["rejected"]["reason"]) == (STAGE_REVIEW, REVIEW_REJECTED)
    assert "rejected by ana" in qu["rejected"]["detail"]
    assert qu["untouched"]["reason"] == "low_alignment_confidence"
    assert qu["untouched"]["review"] is None

    summary = review_summary(result.validated, result.quarantined)
    assert summary.rows() == [
        ("near_min_confidence", 1, 1, 0, 0),
        ("quarantined_by_margin", 1, 0, 1, 0),
        ("teacher_disagrees", 1, 0, 0, 1),
    ]


def test_no_decisions_changes_nothing_but_the_columns(tmp_path):
    c = Candidates(tmp_path)
    c.add("a", burst_clip(1))
    table = c.table()
    applied = apply_decisions(table, read_decisions(LocalObjectStore.at(tmp_path / "none")))
    assert applied.candidates.select(table.columns).equals(table)
    assert applied.candidates["review"].is_null().all()
    assert review_summary(pl.DataFrame(), pl.DataFrame()).is_empty()
