"""The licence registry covers what the pipeline runs, and agrees with LICENSE, pyproject,
README."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from kws_assets.core.features.speech_embedding import FAMILY as EMBEDDING_FAMILY
from kws_assets.core.licenses import (
    COMPONENT_LICENSES,
    KINDS,
    PROJECT_LICENSE,
    ComponentLicense,
    UnknownComponentError,
    component_license,
    license_rows,
)
from kws_assets.core.speech.engines import ENGINES

ROOT = Path(__file__).resolve().parents[2]


def test_every_tts_engine_and_the_embedding_front_end_have_an_entry():
    for name in ENGINES:
        assert component_license(name).kind == "tts_engine", name
    assert component_license(EMBEDDING_FAMILY).kind == "model"
    assert component_license(EMBEDDING_FAMILY).license == "Apache-2.0"


def test_entries_are_unique_and_complete():
    names = [entry.name for entry in COMPONENT_LICENSES]
    assert len(names) == len(set(names))
    for entry in COMPONENT_LICENSES:
        assert entry.kind in KINDS and entry.license and entry.source and entry.note, entry.name
    with pytest.raises(ValueError, match="kind"):
        ComponentLicense("x", "font", "MIT", "somewhere", "")
    with pytest.raises(UnknownComponentError, match="COMPONENT_LICENSES"):
        component_license("no-such-engine")


def test_the_gpl_pieces_are_the_ones_that_run_in_process():
    gpl3 = {e.name for e in COMPONENT_LICENSES if e.license.startswith("GPL-3.0")}
    assert gpl3 == {"espeak", "piper"}
    assert PROJECT_LICENSE == "GPL-3.0-or-later"


def test_card_rows_filter_by_kind():
    voices = license_rows(("voice",))
    assert voices and {row["kind"] for row in voices} == {"voice"}
    assert set(voices[0]) == {"name", "kind", "license", "source", "note"}
    assert len(license_rows()) == len(COMPONENT_LICENSES)
    with pytest.raises(ValueError, match="kinds"):
        license_rows(("fonts",))


def test_license_file_pyproject_and_readme_agree_with_the_registry():
    assert (
        "GNU GENERAL PUBLIC LICENSE\n                       Version 3"
        in (ROOT / "LICENSE").read_text()
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == PROJECT_LICENSE
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Licenses\n(.*?)(?=^## )", readme, re.S | re.M)
    assert section, "README.md needs a '## Licenses' section"
    missing = [e.name for e in COMPONENT_LICENSES if f"`{e.name}`" not in section.group(1)]
    assert not missing, f"README 'Licenses' table lacks {missing}"
