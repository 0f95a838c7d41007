"""DS-CNN size presets for small devices: shapes whose int8 weights fit a flash budget.

After int8 export (batch norm folded, per-channel int8 weights, int32 biases) a DS-CNN with ``F``
filters, ``B`` blocks, a ``kh x kw`` stem and ``C`` classes stores
``kh*kw*F + 4F`` (stem) + ``B * (9F + 4F + F*F + 4F)`` (depthwise + pointwise per block) +
``F*C + 4C`` (classifier) bytes of weights; :func:`dscnn_int8_weight_bytes` computes it and the
tests check it against the constant tensors of real ``.tflite`` exports.

Presets (for ``n_blocks=4`` and the default 10x4 stem):

* ``demo``: the 24-filter, 1-block net the fast tests and the demo train in seconds;
* ``tiny16k``: the widest multiple-of-8 filter count whose weights fit 16 KiB (Cortex-M0+ class
  parts with 32-64 KiB of flash);
* ``mlperf``: MLPerf Tiny's reference DS-CNN shape (64 filters, 4 blocks: DS-CNN-S), whose
  reference int8 ``.tflite`` is about 53.9 KB (the file: weights, per-channel scales and the
  flatbuffer framing).
"""

from __future__ import annotations

from kws_assets.settings import ModelSettings

DEPTHWISE_TAPS = 9
BIAS_BYTES = 4
FILTER_STEP = 8
"""Filter counts are kept to multiples of 8: CMSIS-NN / ESP-NN kernels vectorise by 4 or 8."""
TINY16K_BUDGET_BYTES = 16 * 1024
MLPERF_TFLITE_BYTES = 53_900
PRESET_NAMES = ("demo", "tiny16k", "mlperf")


def dscnn_int8_weight_bytes(n_classes: int, settings: ModelSettings) -> int:
    """Bytes of int8 weights + int32 biases of the exported DS-CNN (see the module docstring)."""
    if n_classes < 2:
        raise ValueError("a classifier needs at least 2 classes")
    f = settings.n_filters
    kh, kw = settings.first_kernel
    stem = kh * kw * f + BIAS_BYTES * f
    block = DEPTHWISE_TAPS * f + BIAS_BYTES * f + f * f + BIAS_BYTES * f
    head = f * n_classes + BIAS_BYTES * n_classes
    return stem + settings.n_blocks * block + head


def widest_filters(
    n_classes: int, budget_bytes: int, base: ModelSettings | None = None
) -> ModelSettings:
    """``base`` with the most filters (a multiple of 8) whose int8 weights fit ``budget_bytes``."""
    base = base or ModelSettings()
    best = None
    filters = FILTER_STEP
    while (
        dscnn_int8_weight_bytes(n_classes, base.model_copy(update={"n_filters": filters}))
        <= budget_bytes
    ):
        best = filters
        filters += FILTER_STEP
    if best is None:
        raise ValueError(
            f"no DS-CNN with {base.n_blocks} blocks fits {budget_bytes} bytes; "
            "use fewer blocks or a larger budget"
        )
    return base.model_copy(update={"n_filters": best})


def preset_settings(name: str, n_classes: int, base: ModelSettings | None = None) -> ModelSettings:
    """The DS-CNN shape of a preset (``demo``, ``tiny16k``, ``mlperf``) for ``n_classes``."""
    base = base or ModelSettings()
    if name == "demo":
        return base.model_copy(update={"n_filters": 24, "n_blocks": 1})
    if name == "tiny16k":
        return widest_filters(
            n_classes, TINY16K_BUDGET_BYTES, base.model_copy(update={"n_blocks": 4})
        )
    if name == "mlperf":
        return base.model_copy(update={"n_filters": 64, "n_blocks": 4})
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
