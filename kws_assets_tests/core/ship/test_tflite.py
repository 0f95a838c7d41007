"""The full-integer int8 TFLite export: int8 in/out, agreement with the int8 ONNX model, arena."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kws_assets.core.model.networks import DSCNN
from kws_assets.core.ship.export import onnx_logits
from kws_assets.core.ship.tflite import (
    TfliteClassifier,
    arena_plan,
    export_int8_tflite,
    int8_weight_bytes,
    tensor_arena_bytes,
)
from kws_assets.settings import ModelSettings

MIN_AGREEMENT = 0.99


def test_tflite_int8_agrees_with_onnx_int8(ship_model) -> None:
    classifier = TfliteClassifier(ship_model.tflite)
    probs = classifier.classify_features(ship_model.x_test)
    onnx_top1 = onnx_logits(ship_model.onnx_int8, ship_model.x_test).argmax(axis=1)
    agreement = float((probs.argmax(axis=1) == onnx_top1).mean())
    print(f"TFLite int8 vs ONNX int8 top-1 agreement: {agreement:.4f} on {len(onnx_top1)} rows")
    assert agreement >= MIN_AGREEMENT
    assert float((probs.argmax(axis=1) == ship_model.y_test).mean()) >= 0.9
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_tflite_is_full_integer_and_close_to_float(ship_model) -> None:
    classifier = TfliteClassifier(ship_model.tflite)
    assert classifier._input["dtype"] == np.int8 and classifier._output["dtype"] == np.int8
    assert classifier.input_shape == tuple(ship_model.spec.shape)
    with torch.no_grad():
        float_logits = ship_model.model.eval()(torch.from_numpy(ship_model.x_test)).numpy()
    int8_logits = classifier.logits(ship_model.x_test)
    # int8 logits track the float ones within a few output quantisation steps
    err = np.abs(int8_logits - float_logits).mean()
    assert err < 8 * classifier.output_scale, (err, classifier.output_scale)


def test_arena_plan_bounds(ship_model) -> None:
    plan = arena_plan(ship_model.tflite)
    # the depthwise conv reads and writes a [25, 6, 24] int8 map at once: both must fit
    n_filters = ship_model.model.settings.n_filters
    feature_map = 25 * 6 * n_filters
    assert plan.planned_bytes >= 2 * feature_map
    assert plan.planned_bytes <= plan.activation_bytes
    assert plan.recommended_bytes > plan.planned_bytes
    assert tensor_arena_bytes(ship_model.tflite) == plan.planned_bytes
    assert int8_weight_bytes(ship_model.tflite) < ship_model.tflite.stat().st_size


def test_export_rejects_bad_input(ship_model, tmp_path) -> None:
    with pytest.raises(ValueError, match="calibration must be"):
        export_int8_tflite(
            ship_model.model, ship_model.spec, ship_model.x_test[:, :10], tmp_path / "m.tflite"
        )
    bad = ship_model.x_test[:4].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        export_int8_tflite(ship_model.model, ship_model.spec, bad, tmp_path / "m.tflite")
    with pytest.raises(TypeError, match="DSCNN"):
        export_int8_tflite(
            torch.nn.Linear(10, 4), ship_model.spec, ship_model.x_test[:4], tmp_path / "m.tflite"
        )
    with pytest.raises(ValueError, match="features must be"):
        TfliteClassifier(ship_model.tflite).classify_features(ship_model.x_test[:, :, :5])
    with pytest.raises(FileNotFoundError):
        TfliteClassifier(tmp_path / "missing.tflite")
    assert not list(tmp_path.iterdir())


def test_export_refuses_a_wrong_rebuild(ship_model, tmp_path, monkeypatch) -> None:
    """A layer mapping bug (here: batch norm not folded) is caught before conversion."""
    from kws_assets.core.ship import tflite

    def unfolded(conv, bn):
        layer = original(conv, bn)
        return tflite._Layer(
            layer.kind, layer.weight * 1.5, layer.bias, layer.stride, layer.padding
        )

    original = tflite._conv_layer
    monkeypatch.setattr(tflite, "_conv_layer", unfolded)
    with pytest.raises(tflite.TfliteExportError, match="differs from the torch model"):
        export_int8_tflite(
            ship_model.model, ship_model.spec, ship_model.x_test[:8], tmp_path / "m.tflite"
        )
    assert not (tmp_path / "m.tflite").exists()


def test_other_shapes_export(tmp_path) -> None:
    """Two blocks and an odd stem stride still rebuild exactly (the float check passes)."""
    from kws_assets.core.features.mfcc import FeatureSpec
    from kws_assets.settings import AudioSettings, FeatureSettings

    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
    torch.manual_seed(1)
    model = DSCNN(
        3, ModelSettings(n_filters=8, n_blocks=2, first_kernel=(5, 3), first_stride=(1, 2))
    )
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding matters
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    x = np.random.default_rng(0).standard_normal((16, *spec.shape)).astype(np.float32)
    path = export_int8_tflite(model, spec, x, tmp_path / "m.tflite")
    assert TfliteClassifier(path).classify_features(x).shape == (16, 3)
