"""The terms of one licensed component, as the component's own module declares them.

A leaf (it imports nothing of the project) so that a TTS engine or corpus connector module can
state its licence beside its code, and ``core/licenses.py`` can assemble the one licence table
from the registries without the registries importing it back (no import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LicenseTerms:
    """What a user inherits from a component: its SPDX expression (or ``LicenseRef-...``), where
    it comes from (a PyPI wheel or a Debian package, and upstream) and what it means here."""

    license: str
    source: str
    note: str
