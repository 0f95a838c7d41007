"""Settings of the blocking check on the validated set (``core.dataset.unknown_guard``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DatasetGuardSettings(BaseModel):
    """How much ``_unknown_`` and how many test clips a validated set needs before training."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_unknown_share: float = Field(
        0.10, ge=0, lt=1, description="Smallest share of _unknown_ clips in the train split; a "
                                      "model trained with fewer calls every sound a keyword.")
    min_test_clips_per_label: int = Field(
        20, ge=0, description="Fewest test-split clips of any label; below this the test "
                              "accuracy of that label is noise.")
