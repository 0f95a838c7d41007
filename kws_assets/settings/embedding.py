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
from kws_assets.settings.model import EpochBudget, TrainSettings


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


class HeadNegativeSettings(StrictSettings):
    """How the head trains on the negative material's windows, and mines its own false accepts.

    Round 1 trains on the clips plus ``window_ratio`` random windows of the train material per
    train row (as ``_unknown_``, at most ``max_windows``); each mining round scores every
    window of that material with the previous round's head, keeps the ``mined_max`` windows
    whose keyword score is at least ``mining_threshold`` (one per ``mining_gap_windows``, the
    local peak), and retrains with them repeated ``mined_repeat`` times beside fresh random
    windows."""

    window_ratio: float = Field(
        1.0,
        ge=0,
        description="Random windows of the train material per train-split row of the table, "
        "per training round (0: clips only).",
    )
    max_windows: int = Field(
        20_000, ge=0, description="At most this many random windows per round (memory)."
    )
    mining_rounds: int = Field(1, ge=0, description="Rounds of hard-negative mining after round 1.")
    mining_threshold: float = Field(
        0.2, gt=0, lt=1, description="Keyword score at which a window is a hard negative."
    )
    mined_max: int = Field(3000, ge=1, description="Most hard windows kept per round.")
    mined_repeat: int = Field(
        3, ge=1, description="Copies of each hard window per round: its weight in the loss."
    )
    mining_gap_windows: int = Field(
        3, ge=1, description="Hard windows closer than this (80-ms steps) count as one."
    )
    report_threshold: float = Field(
        0.5, gt=0, le=1, description="Threshold of the held-out FA/h reported per round."
    )
    mining_epochs: int = Field(
        10,
        ge=1,
        description="Epoch budget of a mining round: it starts from the previous round's head "
        "(the clips are learnt; only the mined windows are new) and trains at most this many "
        "epochs, never more than train.max_epochs (nor train.warm_epochs when the first round "
        "was warm-started), its cosine schedule over them.",
    )


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
    negatives: HeadNegativeSettings = Field(
        default_factory=HeadNegativeSettings,
        description="Training on the negative material's windows and hard-negative mining.",
    )
    batch_scale: int = Field(
        1,
        ge=1,
        description="The head trains on batches of train.batch_size x batch_scale rows (and "
        "learning rate x lr_scale). Larger batches make an epoch cheaper (demo tables, 17.7k "
        "rows, 1 thread: 1.22 s of CPU at 64 rows a batch, 0.83 at 256, 0.66 at 512: the "
        "optimiser and the per-step calls are half of it at 64), but they learn less per "
        "epoch: at 256 (learning rate x 2, patience 6) test accuracy fell from 0.918 to 0.899 "
        "and held-out-engine accuracy from 0.68 to 0.59 (3 seeds each, issue 26), so 1.",
    )
    lr_scale: float = Field(
        1.0,
        gt=0,
        description="The head's learning rate is train.learning_rate x lr_scale (with "
        "batch_scale: the square root of batch_scale is Adam's usual rule).",
    )
    train_threads: int = Field(
        1,
        ge=1,
        description="Torch threads of the head's training, never more than train.threads. "
        "Its matmuls (64 x 1536 by 1536 x 128) are too small to share: with the 2 cores busy "
        "with other work (load 7) an epoch of the demo's 17.7k rows took 31-55 s with 2 "
        "threads against 1.6-2.2 s with 1, interleaved; at load 3, 1.29-1.60 s against "
        "0.80-0.85 s with 1 and Adam fused (whole trainings back to back; issue 26).",
    )
    budget: EpochBudget = Field(
        default_factory=lambda: EpochBudget(max_epochs=25, patience=12),
        description="The head's epoch budget (its first round, its cosine schedule over "
        "max_epochs; a mining round has negatives.mining_epochs), never more than "
        "train.max_epochs and train.patience. On the demo, 40 epochs (patience 12) ran 29 to "
        "50 epochs a training (3 seeds), 25 ran 29 to 35 with test accuracy 0.917 against "
        "0.918, held-out-engine accuracy 0.71 against 0.68 and the held-out material's false "
        "accepts 40 against 33/h (issue 26); patience 6 over 40 stopped on the plateau "
        "while the learning rate was still high and lost 12 points of held-out-engine "
        "accuracy (seed 0).",
    )

    def head_train(self, train: TrainSettings) -> TrainSettings:
        """``train`` as the head trains: its batch size and learning rate scaled
        (``batch_scale``, ``lr_scale``), its threads (``train_threads``) and its epoch budget
        (``budget``) in force."""
        scaled = train.model_copy(
            update={
                "batch_size": train.batch_size * self.batch_scale,
                "learning_rate": train.learning_rate * self.lr_scale,
                "threads": min(train.threads, self.train_threads),
            }
        )
        return scaled.within(self.budget.max_epochs, self.budget.patience)
