"""The review queue ranks what the pipeline is least sure of: clips near the confidence and
outlier thresholds (on both sides), clips the teacher contradicts, real clips it gets wrong; each
clip once, under its best reason; reviewed clips leave the queue; the size is bounded."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kws_assets.core.review import queue as q
from kws_assets.core.tables import QUARANTINE_COLUMNS, VALIDATED_COLUMNS
from kws_assets.settings import ReviewSettings

MIN_CONF = 0.5
THRESHOLD = 6.0
REVIEW = ReviewSettings(confidence_margin=0.1, outlier_margin=1.0, disagreement_confidence=0.9)


def validated(*rows: dict) -> pl.DataFrame:
    base = {"uri": "u", "source": "corpus", "speaker": "s", "split": "train", "label": "yes"}
    return pl.DataFrame(
        [{c: {**base, **r}.get(c) for c in VALIDATED_COLUMNS} for r in rows],
        schema=VALIDATED_COLUMNS,
    )


def quarantined(*rows: dict) -> pl.DataFrame:
    base = {"uri": "u", "source": "corpus", "speaker": "s", "label": "yes", "stage": "quality"}
    return pl.DataFrame(
        [{c: {**base, **r}.get(c) for c in QUARANTINE_COLUMNS} for r in rows],
        schema=QUARANTINE_COLUMNS,
    )


def rank(v: pl.DataFrame, qu: pl.DataFrame | None = None, **kw: object) -> pl.DataFrame:
    return q.rank_queue(
        v,
        quarantined() if qu is None else qu,
        kw.pop("review", REVIEW),  # type: ignore[arg-type]
        min_confidence=MIN_CONF,
        outlier_threshold=THRESHOLD,
        **kw,  # type: ignore[arg-type]
    )


def test_clips_near_thresholds_on_both_sides_are_ranked_by_closeness():
    v = validated(
        {"clip_id": "conf_just_above", "confidence": 0.51},
        {"clip_id": "conf_far_above", "confidence": 0.9},
        {"clip_id": "outlier_just_under", "outlier_score": 5.8},
        {"clip_id": "outlier_far_under", "outlier_score": 2.0},
    )
    qu = quarantined(
        {
            "clip_id": "quarantined_just_below",
            "reason": "low_alignment_confidence",
            "confidence": 0.47,
        },
        {
            "clip_id": "quarantined_far_below",
            "reason": "low_alignment_confidence",
            "confidence": 0.1,
        },
        {"clip_id": "outlier_just_over", "reason": "outlier", "outlier_score": 6.5},
        {"clip_id": "too_quiet", "reason": "too_quiet"},
    )
    queue = rank(v, qu)
    assert queue["clip_id"].to_list() == [
        "conf_just_above",  # 0.9
        "outlier_just_under",  # 0.8
        "quarantined_just_below",  # 0.7
        "outlier_just_over",  # 0.5
    ]
    assert queue["reason"].to_list() == [
        q.NEAR_MIN_CONFIDENCE,
        q.NEAR_OUTLIER,
        q.QUARANTINED_BY_MARGIN,
        q.QUARANTINED_BY_MARGIN,
    ]
    assert queue["score"].to_list() == pytest.approx([0.9, 0.8, 0.7, 0.5])
    assert queue["rank"].to_list() == [1, 2, 3, 4]
    assert queue["in_set"].to_list() == ["validated", "validated", "quarantined", "quarantined"]
    assert queue["data_version"].n_unique() == 1


def test_the_teacher_contradicting_a_label_and_real_clips_it_gets_wrong():
    v = validated(
        {"clip_id": "synthetic_contradicted", "source": "synthetic"},
        {"clip_id": "synthetic_unsure", "source": "synthetic"},
        {"clip_id": "real_wrong_unsure", "source": "corpus"},
        {"clip_id": "real_right", "source": "corpus"},
        {"clip_id": "real_wrong_and_near", "source": "corpus", "confidence": 0.5},
    )
    labels = ["_silence_", "_unknown_", "yes", "no"]
    logits = np.log(
        np.array(
            [
                [0.01, 0.01, 0.01, 0.97],  # says no at 0.97
                [0.1, 0.1, 0.2, 0.6],  # says no at 0.6
                [0.1, 0.5, 0.2, 0.2],  # says _unknown_ at 0.5
                [0.01, 0.05, 0.9, 0.04],
                [0.02, 0.02, 0.01, 0.95],
            ]
        )
    )
    predicted = q.predictions([f"{r}" for r in v["clip_id"]], logits, labels)
    queue = rank(v, predicted=predicted, generated_sources=["synthetic"])
    by_clip = dict(zip(queue["clip_id"], queue["reason"], strict=True))
    assert by_clip == {
        "real_wrong_and_near": q.NEAR_MIN_CONFIDENCE,  # 1.0 beats the teacher's 0.95
        "synthetic_contradicted": q.TEACHER_DISAGREES,
        "real_wrong_unsure": q.REAL_MISCLASSIFIED,
    }
    near = queue.filter(pl.col("clip_id") == "real_wrong_and_near").row(0, named=True)
    assert set(near["reasons"].split(",")) == {
        q.NEAR_MIN_CONFIDENCE,
        q.TEACHER_DISAGREES,
        q.REAL_MISCLASSIFIED,
    }
    assert (
        "teacher says no (0.97)"
        in queue.filter(pl.col("clip_id") == "synthetic_contradicted")["detail"].item()
    )


def test_reviewed_clips_leave_the_queue_and_its_size_is_bounded():
    v = validated(
        *({"clip_id": f"c{i}", "confidence": 0.5 + i / 100} for i in range(8)),
        {"clip_id": "done", "confidence": 0.5, "review": "keep"},
    )
    queue = rank(v, review=REVIEW.model_copy(update={"queue_size": 3}))
    assert queue["clip_id"].to_list() == ["c0", "c1", "c2"]
    assert rank(validated()).is_empty()


def test_the_data_version_changes_when_a_label_does():
    a = validated({"clip_id": "x", "confidence": 0.55})
    b = validated({"clip_id": "x", "confidence": 0.55, "label": "no"})
    assert q.data_version(a, quarantined()) != q.data_version(b, quarantined())
    assert q.data_version(a, quarantined()) == q.data_version(a.clone(), quarantined())


def test_each_clip_says_what_it_was_made_from():
    """A reviewer reads the TTS request (or the corpus utterance) beside the label: "sees"
    rendered as ``_unknown_`` next to a "cheese" model is a right label, not an error."""
    v = validated(
        {"clip_id": "tts", "confidence": 0.51, "origin_id": "tts|the word is sees|sees|en+f1"},
    )
    qu = quarantined(
        {
            "clip_id": "cut",
            "reason": "low_alignment_confidence",
            "confidence": 0.47,
            "origin_id": "corpus:utt-7",
        },
    )
    queue = rank(v, qu)
    assert dict(zip(queue["clip_id"], queue["origin"], strict=True)) == {
        "tts": "tts|the word is sees|sees|en+f1",
        "cut": "corpus:utt-7",
    }


def test_clips_per_reason_counts_most_first():
    queue = pl.DataFrame({"reason": ["b", "a", "b", "c", "a", "b"]})
    counts = q.clips_per_reason(queue)
    assert counts.rows() == [("b", 3), ("a", 2), ("c", 1)]
