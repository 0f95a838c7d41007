"""Pictures a user looks at in the Dagster UI: the confusion matrix as a PNG image.

Rendered with matplotlib's non-interactive Agg backend (no display needed).  Cells are shaded by
the share of each true label's clips (row-normalised), annotated with the raw counts.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # before pyplot: render to memory, never open a window

CELL_INCHES = 0.55
MIN_SIDE_INCHES = 3.5
DPI = 110
DARK_CELL_SHARE = 0.5  # cells above this share get white text


def confusion_matrix_png(labels: Sequence[str], matrix: Sequence[Sequence[int]],
                         title: str = "confusion matrix") -> bytes:
    """A PNG of the confusion matrix (rows = true label, columns = predicted label)."""
    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix shape {counts.shape} does not match {n} labels")
    import matplotlib.pyplot as plt  # here, not at import: pyplot costs every run process a second

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
        ax.set_title(title)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > DARK_CELL_SHARE else "black")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown showing a PNG inline (a data URI: the UI needs no access to the file)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def write_file_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
