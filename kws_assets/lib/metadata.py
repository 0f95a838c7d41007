"""Small renderers for the metadata a user reads at a glance in the Dagster UI.

Every value rendered here may come from a corpus (labels, speakers, transcripts, reject details):
it goes through :func:`kws_assets.core.text_safety.escape_cell`, so it stays text.
"""

import polars as pl

from kws_assets.core.text_safety import escape_cell


def md_table(df: pl.DataFrame) -> str:
    """A polars DataFrame as a Markdown table."""
    if df.is_empty():
        return "_(empty)_"
    header = "| " + " | ".join(md_escape(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join([header, rule, *body])


def md_escape(text: object) -> str:
    """Text for a Markdown table cell: ``_silence_`` must not turn into italic *silence*, and a
    corpus value cannot become a link, an image or HTML."""
    return escape_cell(text)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return md_escape(str(value))


def label_counts_md(table: pl.DataFrame, by: str | None = None) -> str:
    """Clip counts per label (and per ``by`` column, pivoted), as Markdown."""
    if table.is_empty():
        return "_(no clips)_"
    if by is None:
        return md_table(table.group_by("label").len().sort("label").rename({"len": "clips"}))
    pivot = (
        table.group_by("label", by)
        .len()
        .pivot(on=by, index="label", values="len")
        .fill_null(0)
        .sort("label")
    )
    return md_table(pivot)


def confusion_md(labels: list[str], matrix: list[list[int]]) -> str:
    """Confusion matrix (rows = true label, columns = predicted) as Markdown."""
    header = "| true \\ pred | " + " | ".join(md_escape(label) for label in labels) + " |"
    rule = "|" + "|".join("---" for _ in range(len(labels) + 1)) + "|"
    body = [
        f"| {md_escape(label)} | " + " | ".join(str(v) for v in row) + " |"
        for label, row in zip(labels, matrix, strict=True)
    ]
    return "\n".join([header, rule, *body])
