"""DS-CNN keyword classifier (the MLPerf Tiny / ARM "Hello Edge" depthwise-separable CNN).

Layout: a strided full convolution over the MFCC "image", then ``n_blocks`` depthwise-separable
blocks (3x3 depthwise + 1x1 pointwise, each followed by batch norm and ReLU), dropout, global
average pooling and one linear layer producing logits.  With 64 filters, 4 blocks and 12 classes
(DS-CNN-S) it has about 23k parameters.

Training time goes to the convolutions and batch norms (about two thirds of a step) and, with
``nn.Dropout``, to drawing its mask (``bernoulli_`` draws element by element on the CPU: 15% of
a step on the stem's feature map); :class:`MaskDropout` draws the same Bernoulli mask from
64-bit draws 16 bits at a time instead (a quarter of the generator calls).
"""

from __future__ import annotations

import torch
from torch import nn

from kws_assets.settings import ModelSettings

DEPTHWISE_KERNEL = (3, 3)


def _same_padding(kernel: tuple[int, int]) -> tuple[int, int]:
    """Symmetric padding that keeps (for stride 1) or halves (for stride 2) the feature map size."""
    return (kernel[0] // 2, kernel[1] // 2)


MASK_LEVELS = 1 << 16
"""A mask element is one 16-bit draw: drop probabilities are multiples of 1/65536."""


class MaskDropout(nn.Module):
    """``nn.Dropout``'s maths (zero each element with probability ``p`` while training, scale the
    rest so the expectation is unchanged; the identity in eval mode, so exports hold no node for
    it), with the mask cut from 64-bit random draws 16 bits at a time: a quarter of the
    generator calls of ``bernoulli_``, about 4x faster on the CPU.  ``p`` is rounded to a multiple
    of 1/65536 (0.2 becomes 0.19999695).  No parameters: checkpoints are those of
    ``nn.Dropout``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must lie in [0, 1), got {p}")
        self.p = p
        self.dropped_levels = round(p * MASK_LEVELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.dropped_levels == 0:
            return x
        n = x.numel()
        draws = torch.randint(  # every int64 value: four uniform int16 draws each
            -(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device
        )
        levels = draws.view(torch.int16)[:n].view(x.shape)
        keep = levels >= self.dropped_levels - MASK_LEVELS // 2
        return x * keep * (MASK_LEVELS / (MASK_LEVELS - self.dropped_levels))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _conv_bn_relu(conv: nn.Conv2d) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels), nn.ReLU(inplace=True))


class DSCNN(nn.Module):
    """Depthwise-separable CNN over MFCCs ``[N, n_frames, n_mfcc]`` or
    ``[N, 1, n_frames, n_mfcc]``."""

    def __init__(self, n_classes: int, settings: ModelSettings | None = None) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError("a classifier needs at least 2 classes")
        settings = settings or ModelSettings()
        filters = settings.n_filters
        self.n_classes = n_classes
        self.settings = settings

        self.stem = nn.Sequential(
            *_conv_bn_relu(
                nn.Conv2d(
                    1,
                    filters,
                    kernel_size=settings.first_kernel,
                    stride=settings.first_stride,
                    padding=_same_padding(settings.first_kernel),
                    bias=False,
                )
            ),
            MaskDropout(settings.dropout),
        )
        blocks: list[nn.Module] = []
        for _ in range(settings.n_blocks):
            blocks.append(
                _conv_bn_relu(
                    nn.Conv2d(
                        filters,
                        filters,
                        kernel_size=DEPTHWISE_KERNEL,
                        padding=_same_padding(DEPTHWISE_KERNEL),
                        groups=filters,
                        bias=False,
                    )
                )
            )
            blocks.append(_conv_bn_relu(nn.Conv2d(filters, filters, kernel_size=1, bias=False)))
        self.blocks = nn.Sequential(*blocks)
        self.head_dropout = MaskDropout(settings.final_dropout)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(filters, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, n_classes]``."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        x = self.stem(x)
        x = self.blocks(x)
        x = self.head_dropout(x)
        x = self.pool(x).flatten(1)
        return self.classifier(x)


def build_model(n_classes: int, settings: ModelSettings | None = None) -> DSCNN:
    """A freshly initialised DS-CNN (seed torch first for reproducible weights)."""
    return DSCNN(n_classes, settings)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
