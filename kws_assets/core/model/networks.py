"""DS-CNN keyword classifier (the MLPerf Tiny / ARM "Hello Edge" depthwise-separable CNN).

Layout: a strided full convolution over the MFCC "image", then ``n_blocks`` depthwise-separable
blocks (3x3 depthwise + 1x1 pointwise, each followed by batch norm and ReLU), dropout, global
average pooling and one linear layer producing logits.  With 64 filters, 4 blocks and 12 classes
(DS-CNN-S) it has about 23k parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from kws_assets.settings import ModelSettings

DEPTHWISE_KERNEL = (3, 3)


def _same_padding(kernel: tuple[int, int]) -> tuple[int, int]:
    """Symmetric padding that keeps (for stride 1) or halves (for stride 2) the feature map size."""
    return (kernel[0] // 2, kernel[1] // 2)


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
            nn.Dropout(settings.dropout),
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
        self.head_dropout = nn.Dropout(settings.final_dropout)
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
