"""How often a model still fires on the false wakes devices reported (and people confirmed).

A ``false_wake`` upload exists because the model on the device fired on it: before the retrain
the rate on those clips is, by construction, every one of them.  After the retrain the question
is how many the new model still takes for a keyword — the number the model card states, so a
retrain that learned nothing from the field shows as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from kws_assets.core.tables import FALSE_WAKE, TRAIN


@dataclass(frozen=True)
class FalseWakeRate:
    """Confirmed field false wakes (``clips``; ``in_training`` of them in the train split): the
    deployed model fired on ``fired_before`` of them (all: that is why they were uploaded), this
    model on ``fired_after`` (its top-1 label is a keyword)."""

    clips: int
    in_training: int
    fired_before: int
    fired_after: int

    @property
    def rate_before(self) -> float:
        return self.fired_before / self.clips

    @property
    def rate_after(self) -> float:
        return self.fired_after / self.clips


def confirmed_false_wakes(validated: pl.DataFrame) -> pl.DataFrame:
    """The validated rows that are field false wakes a person confirmed (kept or relabelled)."""
    if "field_tag" not in validated.columns:
        return validated.clear()
    return validated.filter((pl.col("field_tag") == FALSE_WAKE) & pl.col("review").is_not_null())


def false_wake_rate(
    false_wakes: pl.DataFrame, predicted: Sequence[str], keywords: Sequence[str]
) -> FalseWakeRate | None:
    """The rate over ``false_wakes`` (:func:`confirmed_false_wakes`) given the model's top-1
    label per row, in row order; None when there are none."""
    if false_wakes.is_empty():
        return None
    if len(predicted) != false_wakes.height:
        raise ValueError(f"{len(predicted)} predictions for {false_wakes.height} clips")
    words = set(keywords)
    return FalseWakeRate(
        clips=false_wakes.height,
        in_training=int((false_wakes["split"] == TRAIN).sum()),
        fired_before=false_wakes.height,
        fired_after=sum(label in words for label in predicted),
    )
