"""The real dev sets beyond English (issue 15, item 4): the committed French, German and Spanish
ktuberling manifests are what ``write_dev_manifest`` writes for each config's keywords, and every
row is a readable recording labelled with the keyword it says (or ``_unknown_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kws_assets.config import load_config
from kws_assets.core.corpus.ktuberling import (
    KLETTRES_DIR,
    KTUBERLING_SOUNDS_DIR,
    write_dev_manifest,
)
from kws_assets.core.corpus.real_sources import load_real_source
from kws_assets.settings import UNKNOWN_LABEL, AudioSettings

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
# Per language: how the keywords name recordings (de: {German word: English object id}, as the
# comment in configs/ktuberling_de.yaml), klettres languages added as _unknown_, the theme's
# recording count, and keywords said more than once.
DEV_SETS: dict[str, dict[str, Any]] = {
    "fr": {"klettres": ["fr"], "recordings": 190, "repeated": {"ballon": 3}},
    "de": {
        "klettres": ["de"],
        "recordings": 71,
        "repeated": {},
        "ids": {
            "ball": "ball",
            "hut": "hat",
            "nase": "nose",
            "käse": "pizzeria_cheese",
            "kamel": "egypt_camel",
            "esel": "egypt_donkey",
            "rakete": "moon_rocket",
            "tomate": "pizzeria_tomato",
            "blume": "flower",
            "zwiebel": "pizzeria_onion",
        },
    },
    "es": {"klettres": ["es"], "recordings": 12, "repeated": {}},
}


def _installed(language: str) -> bool:
    return (KTUBERLING_SOUNDS_DIR / f"{language}.soundtheme").is_file() and all(
        (KLETTRES_DIR / k / "sounds.xml").is_file() for k in DEV_SETS[language]["klettres"]
    )


def _keywords(language: str) -> list[str] | dict[str, str]:
    cfg = load_config(CONFIGS / f"ktuberling_{language}.yaml")
    ids = DEV_SETS[language].get("ids")
    if ids is None:
        return cfg.keywords
    assert list(ids) == cfg.keywords, "the id map must name exactly the config's keywords"
    return ids


@pytest.mark.parametrize("language", sorted(DEV_SETS))
def test_committed_dev_manifest_is_current(language: str, tmp_path: Path) -> None:
    if not _installed(language):
        pytest.skip("Debian ktuberling-data / klettres-data is not installed")
    spec = DEV_SETS[language]
    cfg = load_config(CONFIGS / f"ktuberling_{language}.yaml")
    (source,) = cfg.evaluation.real_sources
    assert source.language == language and source.name == f"ktuberling_{language}"
    fresh = write_dev_manifest(
        language, _keywords(language), tmp_path, klettres_languages=spec["klettres"]
    )
    assert (CONFIGS / source.manifest).read_text(encoding="utf-8") == fresh.path.read_text(
        encoding="utf-8"
    )
    for keyword in cfg.keywords:
        assert fresh.label_counts[keyword] == spec["repeated"].get(keyword, 1), keyword


@pytest.mark.parametrize("language", sorted(DEV_SETS))
def test_dev_set_rows_are_labelled_recordings(language: str) -> None:
    if not _installed(language):
        pytest.skip("Debian ktuberling-data / klettres-data is not installed")
    spec = DEV_SETS[language]
    cfg = load_config(CONFIGS / f"ktuberling_{language}.yaml")
    (source,) = cfg.evaluation.real_sources
    source = source.model_copy(update={"manifest": str(CONFIGS / source.manifest)})
    clips = load_real_source(source, cfg.keywords, AudioSettings())
    assert clips.rejections == []
    rows = list(zip(clips.labels, clips.speakers, strict=True))
    theme = [label for label, who in rows if who.startswith("ktuberling")]
    keyword_rows = sum(spec["repeated"].get(k, 1) for k in cfg.keywords)
    assert len(theme) == spec["recordings"]
    assert theme.count(UNKNOWN_LABEL) == spec["recordings"] - keyword_rows
    assert set(theme) == {UNKNOWN_LABEL, *cfg.keywords}
    letters = [label for label, who in rows if who.startswith("klettres")]
    assert letters and set(letters) == {UNKNOWN_LABEL}  # no klettres syllable is a keyword
    labelled = dict(zip(clips.words, clips.labels, strict=True))
    if language == "de":  # the German files are named by the English id
        assert labelled["nose"] == "nase" and labelled["egypt_camel"] == "kamel"
        assert labelled["eyebrow"] == UNKNOWN_LABEL
    if language == "fr":
        assert labelled["tv_ball"] == "ballon" and labelled["egypt_camel"] == UNKNOWN_LABEL
    if language == "es":
        assert labelled["hat"] == "sombrero" and labelled["eye"] == UNKNOWN_LABEL
    peaks = np.abs(clips.samples).max(axis=1)
    assert peaks.min() > 0.01  # a word in every clip, not padding
