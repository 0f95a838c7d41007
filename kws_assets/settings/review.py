"""Review settings: which clips a person is asked to hear, how many, and where the page listens."""

from __future__ import annotations

from pydantic import Field

from kws_assets.settings.base import StrictSettings


class ReviewSettings(StrictSettings):
    """The review queue (``review_queue``) and the page that serves it (``kws review``).

    The margins say how close to a threshold a clip must be to be worth a person's ear: an
    aligned clip whose confidence is within ``confidence_margin`` of ``alignment.min_confidence``
    (on either side: just kept or just quarantined), a keyword clip whose outlier score is within
    ``outlier_margin`` of ``outliers.threshold`` (either side), or a clip whose label the teacher
    model contradicts with at least ``disagreement_confidence``.
    """

    queue_size: int = Field(200, ge=1, description="Most clips the queue holds (top scores).")
    confidence_margin: float = Field(
        0.15,
        gt=0,
        le=1,
        description="Alignment confidences this close to alignment.min_confidence are queued.",
    )
    outlier_margin: float = Field(
        1.5, gt=0, description="Outlier scores this close to outliers.threshold are queued."
    )
    disagreement_confidence: float = Field(
        0.9,
        ge=0,
        le=1,
        description="The teacher's top-1 probability above which its disagreement with a label "
        "queues the clip.",
    )
    host: str = Field(
        "127.0.0.1", description="Address `kws review` listens on (local by default)."
    )
    port: int = Field(8765, ge=0, le=65535, description="Port of `kws review` (0: any free).")
