"""The engine registry: an engine is one module that registers itself; a toy engine registered in
a test's own registry is usable like the real ones, and the settings' ``EngineName`` Literal
(settings cannot read the registry) names exactly the engines ``tts.engines`` may select."""

from __future__ import annotations

import typing
from typing import Any

import numpy as np
import pytest

from kws_assets.core.dataset.data_card import speaker_engine
from kws_assets.core.license_terms import LicenseTerms
from kws_assets.core.licenses import component_license
from kws_assets.core.speech.engines import (
    ENGINES,
    REGISTRY,
    EngineRegistry,
    Rendered,
    TtsEngine,
    TtsEngineError,
    available_engines,
)
from kws_assets.settings import EngineVoiceSettings
from kws_assets.settings.speech import EngineName

TOY_TERMS = LicenseTerms("CC0-1.0", "this test", "a sine wave per letter")


class ToyEngine(TtsEngine):
    """Speaks every text as a short tone: enough to be an engine."""

    name = "toy"

    def availability(self) -> str | None:
        return None

    def voices(self, language: str) -> list[str]:
        return ["beep"]

    def render(
        self,
        text: str,
        voice: str,
        *,
        rate: float = 1.0,
        pitch: float = 1.0,
        seed: int = 0,
        **engine_params: Any,
    ) -> Rendered:
        t = np.arange(800 * len(text)) / 8000
        samples = (0.3 * np.sin(2 * np.pi * 440 * pitch * t)).astype(np.float32)
        return Rendered(samples, 8000, {"engine": self.name, "voice": voice})


class MissingEngine(ToyEngine):
    name = "missing"

    def availability(self) -> str | None:
        return "install nothing, it is a test"


def toy_registry() -> EngineRegistry:
    registry = EngineRegistry()
    registry.register(ToyEngine, license=TOY_TERMS, settings=EngineVoiceSettings)
    registry.register(MissingEngine, license=TOY_TERMS, settings=EngineVoiceSettings)
    return registry


def test_a_toy_engine_in_a_test_registry_is_usable_through_available_engines():
    registry = toy_registry()
    assert registry.names() == ("toy", "missing")
    usable, skipped = available_engines(["toy", "missing", "espeak"], registry.adapters())
    assert [engine.name for engine in usable] == ["toy"]
    assert skipped["missing"] == "install nothing, it is a test"
    assert "unknown TTS engine" in skipped["espeak"]  # the test registry is its own
    clip = usable[0].render("yes", "beep")
    assert clip.sample_rate == 8000 and clip.samples.size == 2400
    assert registry.get("toy").speaks_as("toy:beep") and registry.speaker_engine("toy:x") == "toy"
    assert registry.speaker_engine("alice") is None
    assert "toy" not in ENGINES and "toy" not in REGISTRY  # the project's registry is untouched


def test_the_registry_refuses_a_second_engine_of_a_name_and_an_unnamed_one():
    registry = toy_registry()
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(ToyEngine, license=TOY_TERMS, settings=None)

    class Unnamed(ToyEngine):
        name = ""

    with pytest.raises(ValueError, match="no name"):
        registry.register(Unnamed, license=TOY_TERMS, settings=None)
    with pytest.raises(TtsEngineError, match="unknown TTS engine 'nonesuch'"):
        registry.get("nonesuch")


def test_settings_engine_names_are_the_registered_selectable_engines():
    """A new engine module that is not in settings' EngineName, or a name in EngineName that no
    module registers, fails here."""
    assert set(typing.get_args(EngineName)) == set(REGISTRY.selectable())
    assert set(REGISTRY.names()) == set(ENGINES)
    assert REGISTRY.always_on() and not set(REGISTRY.always_on()) & set(REGISTRY.selectable())


def test_every_engine_declares_its_licence_and_speaker_ids():
    for entry in REGISTRY:
        assert entry.module.startswith("kws_assets.core.speech.engines."), entry.name
        assert component_license(entry.name).license == entry.license.license
        assert entry.license.source and entry.license.note, entry.name
        for prefix in entry.speaker_prefixes:
            assert speaker_engine(f"{prefix}some-voice") == entry.name
    # The speaker ids the pipeline writes: espeak's "tts:" ones and "<engine>:<voice>".
    assert speaker_engine("tts:en-us+f2") == REGISTRY.always_on()[0]
    for name in REGISTRY.selectable():
        assert speaker_engine(f"{name}:voice") == name
    assert speaker_engine("cv-speaker-17") is None
    assert speaker_engine("nonesuch:voice") is None
