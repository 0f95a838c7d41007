"""Shared fixtures: a tiny config written into a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def tiny_config_file(tmp_path: Path) -> Path:
    """The tiny pipeline config, copied so its storage root lands under tmp_path."""
    target = tmp_path / "kws.yaml"
    shutil.copy(FIXTURES / "tiny.yaml", target)
    return target
