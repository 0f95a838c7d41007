"""The shipped configs of every language load (issue 15): ``load_config`` fills in the voices of
the config's language, and the Dagster definitions build from the file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from kws_assets.config import load_config
from kws_assets.core.speech.languages import voices_for
from kws_assets.definitions import build_definitions

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
LANGUAGE_CONFIGS = {
    "spanish.yaml": "es",
    "french.yaml": "fr",
    "german.yaml": "de",
    "ktuberling_en.yaml": "en",
    "ktuberling_fr.yaml": "fr",
    "ktuberling_de.yaml": "de",
    "ktuberling_es.yaml": "es",
}


def test_every_shipped_config_is_covered() -> None:
    assert {p.name for p in CONFIGS.glob("*.yaml")} == set(LANGUAGE_CONFIGS)


@pytest.mark.parametrize("name", sorted(LANGUAGE_CONFIGS))
def test_config_loads_with_its_language_voices(name: str) -> None:
    language = LANGUAGE_CONFIGS[name]
    cfg = load_config(CONFIGS / name)
    assert cfg.language == language
    assert cfg.keywords and len(set(cfg.keywords)) == len(cfg.keywords)
    voices = [
        *cfg.tts.voices,
        *cfg.evaluation.held_out_voices,
        *(v for s in cfg.sources for v in getattr(s, "voices", [])),
    ]
    assert voices and all(v.split("+")[0] in voices_for(language) for v in voices), voices
    assert not set(cfg.evaluation.held_out_voices) & set(cfg.tts.voices)
    for source in cfg.evaluation.real_sources:  # manifests are relative to the config's folder
        assert (CONFIGS / source.manifest).is_file(), source.manifest


@pytest.mark.parametrize("name", ["french.yaml", "german.yaml", "ktuberling_fr.yaml"])
def test_definitions_build_from_the_config(name: str) -> None:
    defs = build_definitions(CONFIGS / name)
    assert defs.resources["settings"].config.language == LANGUAGE_CONFIGS[name]
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("validated_set") in graph.get_all_asset_keys()
