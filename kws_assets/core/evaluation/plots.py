"""Pictures a user looks at in the Dagster UI: the confusion matrix as a PNG image, and the
PNG rendering every plot of the project shares.

Rendered with matplotlib's non-interactive Agg backend (no display needed).  Cells are shaded by
the share of each true label's clips (row-normalised), annotated with the raw counts.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib
import numpy as np

from kws_assets.core.text_safety import escape_markdown, plot_label

matplotlib.use("Agg")  # before pyplot: render to memory, never open a window

CELL_INCHES = 0.55
MIN_SIDE_INCHES = 3.5
DPI = 110
DARK_CELL_SHARE = 0.5  # cells above this share get white text


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
