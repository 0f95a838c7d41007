"""The validated-set guard: too little _unknown_, too few test clips per label."""

from __future__ import annotations

import pytest

from kws_assets.core.dataset.unknown_guard import unknown_share_problems
from kws_assets.settings import DatasetGuardSettings


def _counts(unknown_train: int, test: int = 30) -> dict[str, dict[str, int]]:
    return {
        "_silence_": {"train": 100, "val": 10, "test": test},
        "_unknown_": {"train": unknown_train, "val": 10, "test": test},
        "yes": {"train": 200, "val": 20, "test": test},
        "no": {"train": 200, "val": 20, "test": test},
    }


def test_healthy_set_has_no_problems() -> None:
    assert unknown_share_problems(_counts(150), 0.2, 20) == []


def test_no_unknown_is_blocking_and_names_the_setting() -> None:
    problems = unknown_share_problems(_counts(0), 0.1, 20)
    assert len(problems) == 1
    assert "0.0%" in problems[0] and "negatives.unknown_ratio" in problems[0]
    assert "dataset_guard.min_unknown_share" in problems[0]


def test_share_threshold_is_of_the_train_split() -> None:
    # 50 of 550 train clips = 9.1 %: below 10 %, above 9 %.
    assert unknown_share_problems(_counts(50), 0.10, 0)
    assert unknown_share_problems(_counts(50), 0.09, 0) == []


def test_missing_unknown_label_counts_as_zero() -> None:
    counts = _counts(10)
    del counts["_unknown_"]
    assert "_unknown_ is 0.0%" in unknown_share_problems(counts, 0.05, 0)[0]


def test_too_few_test_clips_per_label() -> None:
    counts = _counts(150)
    counts["no"]["test"] = 4
    del counts["yes"]["test"]
    problems = unknown_share_problems(counts, 0.1, 20)
    assert len(problems) == 2
    assert "'no' has 4 clips" in problems[0] and "'yes' has 0 clips" in problems[1]
    assert all(
        "splits.test_percent" in p and "dataset_guard.min_test_clips_per_label" in p
        for p in problems
    )


def test_empty_set() -> None:
    assert len(unknown_share_problems({}, 0.1, 5)) == 1


@pytest.mark.parametrize(("share", "clips"), [(-0.1, 1), (1.0, 1), (0.1, -1)])
def test_bad_thresholds(share: float, clips: int) -> None:
    with pytest.raises(ValueError):
        unknown_share_problems(_counts(10), share, clips)


def test_settings_defaults_feed_the_guard() -> None:
    settings = DatasetGuardSettings()
    assert (
        unknown_share_problems(
            _counts(150), settings.min_unknown_share, settings.min_test_clips_per_label
        )
        == []
    )
    with pytest.raises(ValueError):
        DatasetGuardSettings(unknown=1)
