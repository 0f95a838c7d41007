"""The confusion-matrix and DET-curve PNGs shown in the UI."""

from __future__ import annotations

import base64
import io

import matplotlib.image as mpimg
import numpy as np
import pytest

from kws_assets.core.evaluation.det import DetCurve, OperatingPoint
from kws_assets.core.evaluation.plots import (
    confusion_matrix_png,
    det_curves_png,
    det_png,
    png_markdown,
)
from kws_assets.core.storage.atomic_files import write_file_atomic

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _decode(png: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(png), format="png")


def test_png_renders_and_grows_with_the_label_count():
    small = _decode(confusion_matrix_png(LABELS, np.eye(4, dtype=int) * 5))
    many = [f"w{i}" for i in range(16)]
    large = _decode(confusion_matrix_png(many, np.eye(16, dtype=int)))
    assert small.ndim == 3 and small.shape[2] in (3, 4)
    assert large.shape[0] > small.shape[0] and large.shape[1] > small.shape[1]


def _deep_blue_x_extent(img: np.ndarray) -> int:
    """Width in pixels of the region holding strongly shaded (deep blue) cells."""
    rgb = img[..., :3]
    deep = (rgb[..., 0] < 0.3) & (rgb[..., 2] > 0.4)
    xs = np.nonzero(deep.any(axis=0))[0]
    return int(xs.max() - xs.min() + 1) if len(xs) else 0


def test_shading_follows_the_counts():
    """Full cells are shaded: on the diagonal they span all columns, in one column only one."""
    perfect = _decode(confusion_matrix_png(LABELS, np.eye(4, dtype=int) * 10))
    constant = _decode(confusion_matrix_png(LABELS, [[0, 0, 10, 0]] * 4))
    one_column = _deep_blue_x_extent(constant)
    assert one_column > 0
    assert _deep_blue_x_extent(perfect) > 3 * one_column


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="4 labels"):
        confusion_matrix_png(LABELS, [[1, 0], [0, 1]])


def test_markdown_embeds_the_png_and_file_write_is_whole(tmp_path):
    png = confusion_matrix_png(LABELS, np.eye(4, dtype=int))
    md = png_markdown(png, "cm")
    assert md.startswith("![cm](data:image/png;base64,")
    assert base64.b64decode(md[md.index(",") + 1 : -1]) == png
    path = write_file_atomic(tmp_path / "reports" / "cm.png", png)
    assert path.read_bytes() == png
    assert [p.name for p in path.parent.iterdir()] == ["cm.png"]  # no temporary left behind


def test_det_png_renders_a_curve_with_zero_false_accepts():
    """The log-scale x axis cannot show 0 FA/h: the curve still renders (drawn at a floor)."""
    curve = DetCurve(np.array([0.5, 0.9]), np.array([3, 0]), np.array([1, 4]), 0.5, 5)
    image = _decode(det_png(curve, 1.0, "DET curve", OperatingPoint(0.9, 0.0, 0.8, 0, 4)))
    assert image.ndim == 3 and image.shape[0] > 100
    assert det_png(curve, 1.0)[:8] == b"\x89PNG\r\n\x1a\n"  # the curve's own point by default


def test_several_systems_curves_render_on_one_plot_with_their_points():
    """The shoot-out's plot: a curve per system, its shipped point marked, zero FA at a floor;
    a system without a point is drawn without one."""
    a = DetCurve(np.array([0.5, 0.9]), np.array([3, 0]), np.array([1, 4]), 0.5, 5)
    b = DetCurve(np.array([0.2, 0.6, 0.97]), np.array([9, 2, 1]), np.array([0, 1, 2]), 0.5, 5)
    png = det_curves_png({"ours": a, "theirs": b}, {"ours": a.point(1)}, "'alexa'")
    image = _decode(png)
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100
