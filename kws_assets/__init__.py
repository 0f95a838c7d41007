"""kws_assets: a Dagster asset graph that turns speech corpora and TTS into a keyword-spotting
dataset, an MFCC feature table, a DS-CNN model and an int8 ONNX artifact.

``kws_assets.core`` is the pure core (no Dagster imports); ``kws_assets.defs`` holds the thin
Dagster layer that wires it into software-defined assets.

The version has one source, ``pyproject.toml``'s ``[project] version``: installed, it is read
from the package metadata; run from a source tree that was never installed, from the file itself.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

DISTRIBUTION = "kws_assets"
UNKNOWN_VERSION = "0+unknown"


def _version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return UNKNOWN_VERSION


__version__ = _version()
