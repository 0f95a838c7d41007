"""Pictures a user looks at in the Dagster UI: the confusion matrix and the DET curve as PNG
images, and the PNG rendering every plot of the project shares.

Rendered with matplotlib's non-interactive Agg backend (no display needed).  Cells are shaded by
the share of each true label's clips (row-normalised), annotated with the raw counts.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np

from kws_assets.core.evaluation.det import DetCurve, OperatingPoint
from kws_assets.core.text_safety import escape_markdown, plot_label

matplotlib.use("Agg")  # before pyplot: render to memory, never open a window

CELL_INCHES = 0.55
MIN_SIDE_INCHES = 3.5
DPI = 110
DARK_CELL_SHARE = 0.5  # cells above this share get white text
ZERO_FA_DRAWN_AT = 0.25
"""On the log-scale DET plot, zero false accepts are drawn as this fraction of one accept."""


def confusion_matrix_png(
    labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str = "confusion matrix"
) -> bytes:
    """A PNG of the confusion matrix (rows = true label, columns = predicted label)."""
    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix shape {counts.shape} does not match {n} labels")
    import matplotlib.pyplot as plt  # here, not at import: pyplot costs every run process a second

    labels = [plot_label(label) for label in labels]  # labels come from data: text, not mathtext

    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = max(MIN_SIDE_INCHES, CELL_INCHES * n + 1.8)
    fig, ax = plt.subplots(figsize=(side, side), dpi=DPI)
    try:
        ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(n), labels=list(labels), rotation=45, ha="right")
        ax.set_yticks(range(n), labels=list(labels))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(plot_label(title, max_chars=120))
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    str(int(counts[i, j])),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > DARK_CELL_SHARE else "black",
                )
        return figure_png(fig)
    finally:
        plt.close(fig)


def det_png(
    curve: DetCurve,
    target_fa_per_hour: float,
    title: str = "DET curve",
    point: OperatingPoint | None = None,
) -> bytes:
    """A PNG of the DET curve: false rejection rate against false accepts per hour (log x),
    with ``point`` (default: the curve's own lowest-FRR point at the target rate) marked."""
    import matplotlib.pyplot as plt  # here, not at import: pyplot costs every run process a second

    floor = ZERO_FA_DRAWN_AT / max(curve.negative_hours, 1e-9)  # where 0 FA/h is drawn (log x)
    fa = np.maximum(curve.fa_per_hour, floor)
    point = point or curve.at_fa_rate(target_fa_per_hour)
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=DPI)
    try:
        ax.step(fa, curve.frr * 100, where="post", color="tab:blue", label="int8 model")
        ax.axvline(target_fa_per_hour, color="0.6", linestyle="--", linewidth=1)
        ax.plot(
            [max(point.fa_per_hour, floor)],
            [point.frr * 100],
            "o",
            color="tab:red",
            label=f"{point.frr:.1%} FRR at {point.fa_per_hour:.2g} FA/h "
            f"(threshold {point.threshold:.6g})",
        )
        ax.set_xscale("log")
        ax.set_xlabel(
            f"false accepts per hour ({curve.negative_hours:.2f} h of negatives; "
            f"0 drawn at {floor:.2g})"
        )
        ax.set_ylabel(f"false rejection rate, % ({curve.positives} positives)")
        ax.set_ylim(-2, 102)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        return figure_png(fig)
    finally:
        plt.close(fig)


def det_curves_png(
    curves: Mapping[str, DetCurve],
    points: Mapping[str, OperatingPoint | Any],
    title: str = "DET curves",
) -> bytes:
    """A PNG of several detectors' DET curves on the same audio (the shoot-out beside the
    pretrained models), each with its shipped point marked (anything with ``fa_per_hour`` and
    ``frr``); zero false accepts are drawn at :data:`ZERO_FA_DRAWN_AT` of one accept."""
    import matplotlib.pyplot as plt  # here, not at import: pyplot costs every run process a second

    hours = min((c.negative_hours for c in curves.values()), default=1.0)
    floor = ZERO_FA_DRAWN_AT / max(hours, 1e-9)
    fig, ax = plt.subplots(figsize=(6.0, 4.5), dpi=DPI)
    try:
        for index, (name, curve) in enumerate(curves.items()):
            color = f"C{index}"
            label = plot_label(name)
            ax.step(
                np.maximum(curve.fa_per_hour, floor),
                curve.frr * 100,
                where="post",
                color=color,
                label=f"{label} ({curve.positives} positives)",
            )
            point = points.get(name)
            if point is not None:
                ax.plot(
                    [max(float(point.fa_per_hour), floor)],
                    [float(point.frr) * 100],
                    "o",
                    color=color,
                    label=f"{label} shipped: {float(point.frr):.1%} FRR at "
                    f"{float(point.fa_per_hour):.2g} FA/h",
                )
        ax.set_xscale("log")
        ax.set_xlabel(
            f"false accepts per hour ({hours:.2f} h of negatives; 0 drawn at {floor:.2g})"
        )
        ax.set_ylabel("false rejection rate, %")
        ax.set_ylim(-2, 102)
        ax.set_title(plot_label(title, max_chars=120))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper right", fontsize=7)
        return figure_png(fig)
    finally:
        plt.close(fig)


def figure_png(fig) -> bytes:  # noqa: ANN001 - a matplotlib Figure
    """The figure, laid out tightly, as PNG bytes (the caller closes it)."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown showing a PNG inline (a data URI: the UI needs no access to the file)."""
    return (
        f"![{escape_markdown(alt)}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
    )
