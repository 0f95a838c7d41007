"""Shared fixtures: a tiny config written into a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# Servers started and stopped by the tests (S3-compatible moto server, PostgreSQL): fixtures
# ``moto_server`` and ``s3_server``; see kws_assets_tests/servers.py.
from kws_assets_tests.servers import moto_server, s3_server  # noqa: F401 - fixtures, found by name

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def tiny_config_file(tmp_path: Path) -> Path:
    """The tiny pipeline config, copied so its storage root lands under tmp_path."""
    target = tmp_path / "kws.yaml"
    shutil.copy(FIXTURES / "tiny.yaml", target)
    return target
