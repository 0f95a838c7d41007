"""A streaming keyword network for 10-ms feature frames: one network, trained on whole clips,
run one stride of frames at a time on a device.

Why this shape.  microWakeWord's models (the ones ESPHome runs) read the TFLite-Micro front end's
40 features every 10 ms, three frames per inference (stride 3), and keep what earlier frames
contributed in ring buffers, so a step costs one column of each convolution instead of the whole
window.  This network is built so that the same weights run both ways:

- the *stem*: a convolution over ``stem_kernel`` frames with stride ``stride`` (features are its
  input channels), then batch norm and ReLU;
- ``blocks``: depthwise temporal convolutions (kernel ``k`` steps, valid) followed by a
  pointwise convolution, batch norm and ReLU (a depthwise-separable stack whose kernels grow, so
  the receptive field covers a word);
- a mean over the last ``pool_steps`` outputs, then a linear layer to the class logits.

On a clip of ``n_frames`` frames (:meth:`StreamingKws.forward`) every convolution is *valid* and
the pool takes exactly the steps left, so the one logit vector describes the whole clip — what
training and ``kws classify`` use.  Streaming (:meth:`StreamingKws.stream_logits`), each layer
sees a ring buffer of its last ``k - 1`` inputs (zeros at the start) and the pool a ring of its
last ``pool_steps`` outputs: the logits of step ``t`` are the clip logits of the window ending at
frame ``3t + 2``.  The TensorFlow Lite export (:mod:`kws_assets.core.ship.micro_wake_word`) keeps
those rings in resource variables, exactly as here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_STRIDE = 3
"""Frames per inference: microWakeWord's stride (ESPHome reads it from the input shape)."""


@dataclass(frozen=True)
class StreamingShape:
    """The network's shape, recorded in the checkpoint (``network``) and rebuilt from it."""

    n_features: int = 40
    n_frames: int = 98
    stride: int = DEFAULT_STRIDE
    stem_kernel: int = 5
    channels: int = 64
    block_kernels: tuple[int, ...] = (5, 9, 13)
    dropout: float = 0.1
    n_classes: int = 2

    def __post_init__(self) -> None:
        if self.stem_kernel < self.stride:
            raise ValueError(f"stem_kernel {self.stem_kernel} is shorter than the stride")
        if self.pool_steps < 1:
            raise ValueError(
                f"a {self.n_frames}-frame clip is shorter than the receptive field of "
                f"stem {self.stem_kernel}/{self.stride} and blocks {self.block_kernels}"
            )

    @property
    def stem_steps(self) -> int:
        """Stem outputs of one clip."""
        return (self.n_frames - self.stem_kernel) // self.stride + 1

    @property
    def pool_steps(self) -> int:
        """Steps the final mean covers: what is left of a clip after the valid convolutions."""
        return self.stem_steps - sum(k - 1 for k in self.block_kernels)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["block_kernels"] = list(self.block_kernels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> StreamingShape:
        values = dict(data)
        kernels = values.pop("block_kernels", cls.block_kernels)
        assert isinstance(kernels, Sequence)
        return cls(block_kernels=tuple(int(k) for k in kernels), **values)  # type: ignore[arg-type]


class Block(nn.Module):
    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, kernel, groups=channels)
        self.pointwise = nn.Conv1d(channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.pointwise(self.depthwise(x))))


class StreamingKws(nn.Module):
    """The network (see the module docstring); input ``[batch, frames, n_features]``."""

    def __init__(self, shape: StreamingShape) -> None:
        super().__init__()
        self.shape = shape
        self.stem = nn.Conv1d(
            shape.n_features, shape.channels, shape.stem_kernel, stride=shape.stride, bias=False
        )
        self.stem_bn = nn.BatchNorm1d(shape.channels)
        self.blocks = nn.ModuleList(Block(shape.channels, k) for k in shape.block_kernels)
        self.dropout = nn.Dropout(shape.dropout)
        self.classifier = nn.Linear(shape.channels, shape.n_classes)

    def _trunk(self, x: torch.Tensor, streaming: bool) -> torch.Tensor:
        """Per-step channels ``[batch, channels, steps]``; ``streaming`` pads every layer's input
        on the left with the zeros a fresh ring buffer holds."""
        h = x.transpose(1, 2)
        if streaming:
            h = F.pad(h, (self.shape.stem_kernel - self.shape.stride, 0))
        h = F.relu(self.stem_bn(self.stem(h)))
        for block, kernel in zip(self.blocks, self.shape.block_kernels, strict=True):
            if streaming:
                h = F.pad(h, (kernel - 1, 0))
            h = block(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, n_classes]`` of whole clips of ``n_frames`` frames."""
        if not torch.jit.is_tracing() and x.shape[1] != self.shape.n_frames:
            raise ValueError(f"expected {self.shape.n_frames} frames, got {x.shape[1]}")
        h = self._trunk(x, streaming=False)
        return self.classifier(self.dropout(h.mean(dim=2)))

    def stream_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, steps, n_classes]`` as the streaming model gives them, one per
        ``stride`` frames of ``x`` ``[batch, frames, n_features]`` from fresh (zero) state;
        trailing frames short of a stride are not used (the runtime waits for them)."""
        usable = x.shape[1] - x.shape[1] % self.shape.stride
        h = self._trunk(x[:, :usable], streaming=True)
        pooled = F.avg_pool1d(F.pad(h, (self.shape.pool_steps - 1, 0)), self.shape.pool_steps, 1)
        return self.classifier(pooled.transpose(1, 2))


def keyword_margin_probability(logits: torch.Tensor, keyword: int) -> torch.Tensor:
    """``sigmoid(z_k - max_{j != k} z_j)``: how far class ``keyword`` leads its strongest rival,
    squashed to [0, 1] — what the ESPHome model of that keyword outputs (its op set has a max
    pool and a logistic but no exp, so a softmax cannot run there).  Above 0.5 exactly when the
    keyword is the top class."""
    rivals = torch.cat([logits[..., :keyword], logits[..., keyword + 1 :]], dim=-1)
    return torch.sigmoid(logits[..., keyword] - rivals.max(dim=-1).values)


def margin_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """:func:`keyword_margin_probability` of every class ``[..., n_classes]`` (the family's
    class scores: the same function the device thresholds; they need not sum to 1)."""
    return torch.stack(
        [keyword_margin_probability(logits, k) for k in range(logits.shape[-1])], dim=-1
    )
