"""Untrusted corpus text renders as text: no live link, image or HTML in the data card's Markdown
or plot labels (metadata tables hold plain-text cells: defs/test_metadata_tables.py)."""

from __future__ import annotations

import re

import polars as pl

from kws_assets.core.dataset.data_card import md_table
from kws_assets.core.evaluation.plots import confusion_matrix_png
from kws_assets.core.text_safety import (
    MAX_RENDERED_CHARS,
    escape_cell,
    escape_markdown,
    plain_text,
    plot_label,
)

HOSTILE = "[x](http://e.vil) ![i](http://e.vil/a.png) <script>alert(1)</script>"


def live_markup(rendered: str) -> list[str]:
    """Markdown links/images/HTML tags/autolinks that a renderer would make live: an unescaped
    ``[`` or ``!``, a raw ``<``, or a bare scheme:// with nothing between colon and slashes."""
    unescaped = re.sub(r"\\.", "", rendered)  # drop every backslash-escaped character
    found = re.findall(r"!?\[[^\]]*\]\([^)]*\)", unescaped)
    found += re.findall(r"<[a-zA-Z/!]", rendered)
    found += re.findall(r"[a-z]+://", rendered)
    found += re.findall(r"\bwww\.", rendered)
    return found


def test_hostile_text_has_no_live_markup():
    for render in (escape_markdown, escape_cell):
        out = render(HOSTILE)
        assert live_markup(out) == [], out
        assert "&lt;script&gt;" in out and "\\[x\\]" in out and "\\!\\[i\\]" in out


def test_rendering_collapses_lines_and_truncates():
    out = escape_cell("a\nb\r\n| c |\x00\u202e" + "z" * 1000)
    assert "\n" not in out and "\r" not in out and "\x00" not in out and "\u202e" not in out
    assert "\\|" in out and "| c" not in out.replace("\\|", "")
    assert "+" in out and "chars" in out and len(out) < MAX_RENDERED_CHARS + 40
    assert plain_text("short") == "short"


def test_md_table_cells_cannot_break_the_table():
    table = md_table(pl.DataFrame({"speaker": [HOSTILE, "bob\n| x | y |"], "clips": [1, 2]}))
    lines = table.splitlines()
    assert len(lines) == 4  # header, rule, two rows: no row split or added
    assert all(len(re.split(r"(?<!\\)\|", line)) == 4 for line in lines)
    assert live_markup(table) == []


def test_plot_labels_are_plain_and_cannot_break_mathtext():
    assert plot_label("$\\frac{") == "\\$\\frac{"
    png = confusion_matrix_png(["$\\frac{", HOSTILE], [[1, 0], [0, 1]], title="$bad")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
