"""kws_assets: a Dagster asset graph that turns speech corpora and TTS into a keyword-spotting
dataset, an MFCC feature table, a DS-CNN model and an int8 ONNX artifact.

``kws_assets.core`` is the pure core (no Dagster imports); ``kws_assets.defs`` holds the thin
Dagster layer that wires it into software-defined assets.

The version has one source, ``pyproject.toml``'s ``[project] version``: installed, it is read
from the package metadata; run from a source tree that was never installed, from the file itself.
"""

from __future__ import annotations

import importlib.metadata
import os
import tomllib
from pathlib import Path

OMP_WAIT_POLICY = "OMP_WAIT_POLICY"
os.environ.setdefault(OMP_WAIT_POLICY, "PASSIVE")
"""Torch's OpenMP threads sleep when they have nothing to do instead of spinning for the next
kernel.  Set here, before anything imports torch (libgomp reads it once, when it loads), and
inherited by every worker process; an explicit setting in the environment wins.  On 2 cores
shared with other work, spinning threads take the time slices of the threads doing the work:
a DS-CNN training step ran 20x slower per row with torch's default (63.8 against 2.8-3.5
ms/row at 2 threads, same machine, same minutes) and the speech-embedding head's 12-s training
took 25 minutes."""

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
