"""Small classifier heads over frozen speech embeddings ``[batch, n_frames, 96]``.

The front end (Google's ``speech_embedding``) stays frozen; only a head is trained, so a few
hundred clips suffice and the int8 head is tens of KiB.  Two kinds:

- ``dnn``: openWakeWord's classifier shape: the sequence flattened, a LayerNorm, then
  ``n_blocks`` of Linear -> LayerNorm -> ReLU -> Dropout, then the logits.  It sees absolute frame
  positions, which suits fixed, centred 1-s clips.
- ``conv``: a LayerNorm per frame, two temporal convolutions (kernel 3) with ReLU, a max over
  time and the logits: shift-tolerant and with fewer weights than ``dnn`` for long contexts.

Both are trained by :func:`kws_assets.core.model.training.train_model` through
:func:`train_head` (early stopping, class weights and cosine LR as for the DS-CNN).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from kws_assets.core.model.training import (
    EmbeddingAugment,
    Replay,
    TrainBatches,
    TrainResult,
    train_model,
)
from kws_assets.settings import ModelSettings, TrainSettings

HeadKind = Literal["dnn", "conv"]
HEAD_KINDS: tuple[str, ...] = ("dnn", "conv")
DEFAULT_WIDTH = 128
DEFAULT_DROPOUT = 0.3
DEFAULT_BLOCKS = 2
DEFAULT_AUGMENT = EmbeddingAugment()  # frozen: one shared default is safe
CONV_KERNEL = 3


class EmbeddingDNN(nn.Module):
    """Flattened sequence -> LayerNorm -> (Linear -> LayerNorm -> ReLU -> Dropout) x n -> logits."""

    def __init__(
        self,
        n_frames: int,
        dim: int,
        n_classes: int,
        width: int = DEFAULT_WIDTH,
        dropout: float = DEFAULT_DROPOUT,
        n_blocks: int = DEFAULT_BLOCKS,
    ) -> None:
        super().__init__()
        self.n_classes = n_classes
        layers: list[nn.Module] = [nn.Flatten(1), nn.LayerNorm(n_frames * dim)]
        width_in = n_frames * dim
        for _ in range(n_blocks):
            layers += [
                nn.Linear(width_in, width),
                nn.LayerNorm(width),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width_in = width
        layers.append(nn.Linear(width_in, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, n_classes]`` of embeddings ``[N, n_frames, dim]``."""
        return self.layers(x)


class EmbeddingTemporalConv(nn.Module):
    """Per-frame LayerNorm -> (Conv1d k3 -> ReLU) x n -> max over time -> Dropout -> logits."""

    def __init__(
        self,
        n_frames: int,
        dim: int,
        n_classes: int,
        width: int = DEFAULT_WIDTH,
        dropout: float = DEFAULT_DROPOUT,
        n_blocks: int = DEFAULT_BLOCKS,
    ) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.norm = nn.LayerNorm(dim)
        convs: list[nn.Module] = []
        channels = dim
        for _ in range(n_blocks):
            convs += [nn.Conv1d(channels, width, CONV_KERNEL, padding=CONV_KERNEL // 2), nn.ReLU()]
            channels = width
        self.convs = nn.Sequential(*convs)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, n_classes]`` of embeddings ``[N, n_frames, dim]``."""
        h = self.convs(self.norm(x).transpose(1, 2))  # [N, width, n_frames]
        return self.classifier(self.dropout(h.amax(dim=2)))


def build_head(
    kind: str,
    n_frames: int,
    dim: int,
    n_classes: int,
    width: int = DEFAULT_WIDTH,
    dropout: float = DEFAULT_DROPOUT,
    n_blocks: int = DEFAULT_BLOCKS,
) -> nn.Module:
    """A freshly initialised head of ``kind`` (``dnn`` or ``conv``; seed torch first)."""
    if n_classes < 2:
        raise ValueError("a classifier needs at least 2 classes")
    if n_frames < 1 or dim < 1 or width < 1 or n_blocks < 1:
        raise ValueError("n_frames, dim, width and n_blocks must be positive")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    if kind == "dnn":
        return EmbeddingDNN(n_frames, dim, n_classes, width, dropout, n_blocks)
    if kind == "conv":
        return EmbeddingTemporalConv(n_frames, dim, n_classes, width, dropout, n_blocks)
    raise ValueError(f"unknown head kind {kind!r}: expected one of {', '.join(HEAD_KINDS)}")


def train_head(
    x_train: np.ndarray | None,
    y_train: np.ndarray | None,
    x_val: np.ndarray,
    y_val: np.ndarray,
    labels: Sequence[str],
    train_settings: TrainSettings,
    kind: str = "dnn",
    width: int = DEFAULT_WIDTH,
    dropout: float = DEFAULT_DROPOUT,
    n_blocks: int = DEFAULT_BLOCKS,
    augment: EmbeddingAugment | None = DEFAULT_AUGMENT,
    log: Callable[[str], None] | None = None,
    train_batches: TrainBatches | None = None,
    train_class_counts: Sequence[int] | None = None,
    initial_state: Mapping[str, torch.Tensor] | None = None,
    replay: Replay | None = None,
) -> TrainResult:
    """Train a head on embeddings ``[n, n_frames, dim]`` with the DS-CNN's training loop
    (``train_batches``: the train split streamed; ``initial_state``: warm-start from a head of
    the same shape; see ``training.train_model``).  Adam runs fused: a head's step is so
    small that the optimiser's Python loop over its weights was a quarter of an epoch."""
    _, n_frames, dim = np.shape(x_val)

    def factory() -> nn.Module:
        return build_head(kind, n_frames, dim, len(labels), width, dropout, n_blocks)

    return train_model(
        x_train,
        y_train,
        x_val,
        y_val,
        labels,
        ModelSettings(),
        train_settings,
        log=log,
        augment=augment,
        model_factory=factory,
        train_batches=train_batches,
        train_class_counts=train_class_counts,
        initial_state=initial_state,
        fused_optimizer=True,
        replay=replay,
    )
