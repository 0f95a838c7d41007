"""Settings of the ``speech_embedding`` model family (front end, head, augmentation).

Section ``embedding`` of the pipeline config.  Field names match the core's arguments:
``SpeechEmbeddingFrontEnd(EmbeddingSpec(context_seconds=...), threads=..., batch_clips=...)``,
``train_head(..., kind=head, width=..., dropout=..., n_blocks=...)`` and
``EmbeddingAugment(**augment.model_dump())``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kws_assets.settings.base import StrictSettings


class EmbeddingAugmentSettings(StrictSettings):
    """SpecAugment-style masking of the embedding sequence while training the head."""

    max_shift_frames: int = Field(
        1, ge=0, description="Random shift of up to this many 80-ms embedding frames."
    )
    time_masks: int = Field(1, ge=0, description="Bands of embedding frames zeroed per clip.")
    max_time_mask_frames: int = Field(2, ge=0, description="Widest time band, in embedding frames.")
    feature_masks: int = Field(
        1, ge=0, description="Bands of embedding dimensions zeroed per clip."
    )
    max_feature_mask: int = Field(12, ge=0, description="Widest dimension band (of 96).")


class EmbeddingSettings(StrictSettings):
    """The frozen speech_embedding front end and the small head trained on it."""

    context_seconds: float = Field(
        2.0,
        ge=1.0,
        description="Each 1-s clip is padded with silence "
        "symmetrically to this length before embedding (2.0 -> 16 frames).",
    )
    batch_clips: int = Field(64, ge=1, description="Clips per onnxruntime call in the front end.")
    threads: int = Field(1, ge=1, description="onnxruntime intra-op threads of the front end.")
    head: Literal["dnn", "conv"] = Field(
        "dnn",
        description="dnn: openWakeWord-style MLP over the "
        "flattened sequence; conv: temporal conv + max over time.",
    )
    width: int = Field(128, ge=1, description="Hidden units (dnn) or channels (conv).")
    n_blocks: int = Field(2, ge=1, description="Hidden blocks of the head.")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout in the head.")
    augment: EmbeddingAugmentSettings = Field(
        default_factory=EmbeddingAugmentSettings, description="Masking of the embedding sequence."
    )
