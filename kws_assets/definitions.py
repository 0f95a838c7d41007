"""Code location entry point (``workspace.yaml`` and ``dg`` load ``defs`` from here)."""

from kws_assets.defs import build_definitions

defs = build_definitions()
