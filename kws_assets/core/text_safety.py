"""Untrusted text stays text: escaping for Markdown and HTML rendering.

Transcripts, speaker ids, licenses, paths and reject details come from corpora and landed
batches, i.e. from anyone who can upload one.  Rendered as Markdown in the Dagster UI or the data
card they could inject links, images (which the browser fetches: a tracking pixel) or raw HTML.
:func:`escape_markdown` makes any value inert: Markdown punctuation is backslash-escaped, ``<``,
``>`` and ``&`` become HTML entities, newlines and control characters collapse to one space, bare
URLs get a zero-width space so GFM does not auto-link them, and very long values are cut with a
visible marker.  :func:`escape_cell` is the same for a table cell.
"""

from __future__ import annotations

import html
import re
import unicodedata

MAX_RENDERED_CHARS = 300  # longer values are cut: a table cell is not the place for a blob
TRUNCATION_MARKER = "…[+{hidden} chars]"
# The characters that open inline Markdown (emphasis, code, links, images, tables, headings,
# strike-through, maths).  ``-``, ``+``, ``.`` only matter at the start of a line, and a rendered
# value never starts one (newlines are collapsed), so numbers and dates stay readable.
MARKDOWN_PUNCTUATION = frozenset("\\`*_{}[]()#!|~$")
_WHITESPACE_RUN = re.compile(r"\s+")
# GFM turns bare ``http://x``, ``www.x`` and ``a@b.c`` into links even when every character is
# escaped; a zero-width space after the scheme's colon, the ``www`` and the ``@`` stops that.
ZERO_WIDTH_SPACE = "\u200b"
_AUTOLINK_TRIGGER = re.compile(r"(?i)(?<=[a-z0-9]:)(?=//)|(?<=www)(?=\.)|(?<=@)(?=\S)")


def _visible(char: str) -> str:
    """Control and format characters (incl. bidi overrides, zero-width joiners) as a space."""
    return " " if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} else char


def plain_text(value: object, max_chars: int = MAX_RENDERED_CHARS) -> str:
    """``value`` as one line of text: control characters and newlines collapsed to single
    spaces, cut to ``max_chars`` with a marker.  No escaping (for plot labels and logs)."""
    text = "".join(_visible(c) for c in str(value))
    text = _WHITESPACE_RUN.sub(" ", text).strip()
    if len(text) > max_chars:
        hidden = len(text) - max_chars
        text = text[:max_chars] + TRUNCATION_MARKER.format(hidden=hidden)
    return text


def escape_markdown(value: object, max_chars: int = MAX_RENDERED_CHARS) -> str:
    """``value`` as inert Markdown/HTML text (see the module docstring)."""
    text = _AUTOLINK_TRIGGER.sub(ZERO_WIDTH_SPACE, plain_text(value, max_chars))
    out = []
    for char in text:
        if char in "<>&":
            out.append(html.escape(char))
        elif char in MARKDOWN_PUNCTUATION:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def escape_cell(value: object, max_chars: int = MAX_RENDERED_CHARS) -> str:
    """``value`` for one Markdown table cell: :func:`escape_markdown` (which escapes ``|``, so
    the cell cannot split the row, and removes newlines, so it cannot end the table)."""
    return escape_markdown(value, max_chars)


PLOT_LABEL_CHARS = 40


def plot_label(value: object, max_chars: int = PLOT_LABEL_CHARS) -> str:
    """``value`` as a matplotlib label: one short line, ``$`` escaped so matplotlib does not parse
    it as mathtext (an unbalanced ``$`` in a corpus label would otherwise fail the rendering)."""
    return plain_text(value, max_chars).replace("$", r"\$")
