"""The decisions table: every decision is kept (also when reviewers write at the same time, on a
local folder and on S3), a later decision about a clip supersedes an earlier one, bad decisions
are refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from kws_assets.core.review.decisions import (
    KEEP,
    REJECT,
    RELABEL,
    Decision,
    DecisionError,
    latest_decisions,
    read_decisions,
    record_decision,
)
from kws_assets.core.storage.object_store import LocalObjectStore, S3ObjectStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def decision(clip: str, action: str = KEEP, reviewer: str = "ana", **kw: object) -> Decision:
    return Decision.make(
        clip_id=clip,
        data_version="v1",
        action=action,
        old_label="yes",
        reason="near_min_confidence",
        reviewer=reviewer,
        **kw,  # type: ignore[arg-type]
    )


def test_concurrent_reviewers_lose_no_decision(tmp_path):
    store = LocalObjectStore.at(tmp_path)
    # 8 reviewers x 25 decisions, many about the same clips, all at once.
    jobs = [(f"r{r}", f"clip{i % 5}") for r in range(8) for i in range(25)]
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda j: record_decision(store, decision(j[1], reviewer=j[0])), jobs))
    table = read_decisions(store)
    assert len(set(keys)) == len(jobs) == table.height
    assert sorted(table["key"].to_list()) == sorted(keys)
    assert table.group_by("reviewer").len()["len"].to_list() == [25] * 8


def test_the_latest_decision_about_a_clip_wins(tmp_path):
    store = LocalObjectStore.at(tmp_path)
    record_decision(store, decision("a", RELABEL, new_label="no", now=T0))
    record_decision(store, decision("a", REJECT, now=T0 + timedelta(seconds=5)))
    record_decision(store, decision("b", KEEP, now=T0))
    latest = latest_decisions(read_decisions(store))
    assert latest.select("clip_id", "action", "new_label").rows() == [
        ("a", REJECT, None),
        ("b", KEEP, "yes"),
    ]


def test_decisions_go_through_s3_too(s3_server):
    store = S3ObjectStore(s3_server.client(), s3_server.bucket, "review-test/clips")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: record_decision(store, decision(f"c{i}")), range(12)))
    assert read_decisions(store).height == 12


@pytest.mark.parametrize(
    ("action", "new_label", "reviewer"),
    [("delete", None, "ana"), (RELABEL, None, "ana"), (KEEP, None, "  ")],
)
def test_a_bad_decision_is_refused(action, new_label, reviewer):
    with pytest.raises(DecisionError):
        decision("a", action, reviewer=reviewer, new_label=new_label)
