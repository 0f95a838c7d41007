"""DS-CNN: output shape, input layouts, size of the reference configuration; its dropout's
mask drops the asked share and keeps the expectation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kws_assets.core.model.networks import (
    DSCNN,
    MASK_LEVELS,
    MaskDropout,
    build_model,
    count_parameters,
)
from kws_assets.settings import ModelSettings

N_FRAMES, N_MFCC = 49, 10


def test_forward_shape_for_both_input_layouts() -> None:
    torch.manual_seed(0)
    model = build_model(12, ModelSettings()).eval()
    x = torch.randn(5, N_FRAMES, N_MFCC)
    with torch.no_grad():
        three_d = model(x)
        four_d = model(x.unsqueeze(1))
    assert three_d.shape == (5, 12)
    torch.testing.assert_close(three_d, four_d)
    assert torch.isfinite(three_d).all()


def test_reference_ds_cnn_s_size() -> None:
    model = DSCNN(12, ModelSettings(n_filters=64, n_blocks=4))
    assert 20_000 <= count_parameters(model) <= 30_000
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    pointwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(depthwise) == len(pointwise) == 4
    assert all(m.groups == m.in_channels == 64 for m in depthwise)


def test_size_grows_with_filters_blocks_and_classes() -> None:
    base = count_parameters(DSCNN(12, ModelSettings(n_filters=32, n_blocks=2)))
    assert count_parameters(DSCNN(12, ModelSettings(n_filters=64, n_blocks=2))) > base
    assert count_parameters(DSCNN(12, ModelSettings(n_filters=32, n_blocks=3))) > base
    # one more class adds exactly one row of the final linear layer
    assert count_parameters(DSCNN(13, ModelSettings(n_filters=32, n_blocks=2))) == base + 32 + 1


def test_first_convolution_downsamples_the_feature_map() -> None:
    model = DSCNN(4, ModelSettings(n_filters=8, n_blocks=1)).eval()
    with torch.no_grad():
        stem_out = model.stem(torch.zeros(1, 1, N_FRAMES, N_MFCC))
    assert stem_out.shape[1] == 8
    assert stem_out.shape[2] == pytest.approx(N_FRAMES / 2, abs=1)
    assert stem_out.shape[3] == pytest.approx(N_MFCC / 2, abs=1)


def test_dropout_only_in_training_mode() -> None:
    torch.manual_seed(1)
    model = DSCNN(4, ModelSettings(n_filters=16, n_blocks=1, dropout=0.5, final_dropout=0.5))
    x = torch.randn(8, N_FRAMES, N_MFCC)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x))


def test_rejects_fewer_than_two_classes() -> None:
    with pytest.raises(ValueError):
        DSCNN(1)


@pytest.mark.parametrize("p", [0.2, 0.4, 0.05])
def test_mask_dropout_drops_p_and_keeps_the_mean(p: float) -> None:
    torch.manual_seed(1)
    n = 2_000_003  # not a multiple of the four masks one draw gives
    out = MaskDropout(p).train()(torch.ones(n))
    dropped = float((out == 0).float().mean())
    assert abs(dropped - p) < 4 * (p * (1 - p) / n) ** 0.5 + 1 / MASK_LEVELS
    assert abs(float(out.mean()) - 1.0) < 0.005
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, float(kept[0])))


def test_mask_dropout_is_the_identity_in_eval_and_at_zero() -> None:
    x = torch.randn(3, 5, 7, 2)
    assert torch.equal(MaskDropout(0.3).eval()(x), x)
    assert torch.equal(MaskDropout(0.0).train()(x), x)
    with pytest.raises(ValueError, match="dropout"):
        MaskDropout(1.0)
