"""A blocking check on a validated set: enough ``_unknown_`` clips to train on, enough test clips
per label to measure.

A language without negatives used to give a dataset with no ``_unknown_`` at all, and a model
that calls every sound a keyword; a test split of three clips per label gives accuracies that
move by 30 points between runs.  :func:`unknown_share_problems` names both, with the setting to
change, so the asset graph can stop before training on such a set.
"""

from __future__ import annotations

from collections.abc import Mapping

from kws_assets.settings import UNKNOWN_LABEL

TRAIN_SPLIT = "train"
TEST_SPLIT = "test"


def unknown_share_problems(
    label_split_counts: Mapping[str, Mapping[str, int]],
    min_unknown_share: float,
    min_test_clips_per_label: int,
) -> list[str]:
    """Problems of a validated set, one message each (empty: fine).

    ``label_split_counts[label][split]`` is the clip count of a label in a split.  Problems: the
    ``_unknown_`` share of the train split below ``min_unknown_share`` (0-1); a label with fewer
    than ``min_test_clips_per_label`` clips in the test split.  Each message names the setting to
    change (the two minimums are ``DatasetGuardSettings`` in ``kws_assets/settings/dataset.py``)."""
    if not 0.0 <= min_unknown_share < 1.0:
        raise ValueError(f"min_unknown_share={min_unknown_share} must be in [0, 1)")
    if min_test_clips_per_label < 0:
        raise ValueError(f"min_test_clips_per_label={min_test_clips_per_label} must be >= 0")
    problems: list[str] = []
    train_total = sum(int(splits.get(TRAIN_SPLIT, 0)) for splits in label_split_counts.values())
    unknown_train = int(label_split_counts.get(UNKNOWN_LABEL, {}).get(TRAIN_SPLIT, 0))
    share = unknown_train / train_total if train_total else 0.0
    if share < min_unknown_share:
        problems.append(
            f"{UNKNOWN_LABEL} is {share:.1%} of the train split ({unknown_train} of {train_total} "
            f"clips), below the minimum {min_unknown_share:.1%}: raise negatives.unknown_ratio, "
            "negatives.other_words or negatives.speech_windows, add a corpus with non-keyword "
            "speech, or lower dataset_guard.min_unknown_share"
        )
    for label in sorted(label_split_counts):
        count = int(label_split_counts[label].get(TEST_SPLIT, 0))
        if count < min_test_clips_per_label:
            problems.append(
                f"label {label!r} has {count} clips in the test split, below the minimum "
                f"{min_test_clips_per_label}: raise splits.test_percent, add speakers "
                "(tts.sampled_speakers or a corpus), or lower "
                "dataset_guard.min_test_clips_per_label"
            )
    return problems
