"""Other TTS engines as speaker sources: which voices speak, what a keyword partition renders,
determinism, perturbation recorded per clip, and the held-out engine's evaluation set."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.dataset import engine_voices as ev
from kws_assets.core.speech.engines import ENGINES
from kws_assets.settings import (
    UNKNOWN_LABEL,
    AudioSettings,
    EngineVoiceSettings,
    NegativeSettings,
    SpeakerPerturbationSettings,
)

AUDIO = AudioSettings()
FLITE_MISSING = ENGINES["flite"].availability()
needs_flite = pytest.mark.skipif(FLITE_MISSING is not None, reason=str(FLITE_MISSING))


@needs_flite
def test_configured_voices_become_speakers_and_a_held_out_engine_is_left_out():
    engines = [
        EngineVoiceSettings(engine="flite", voices=["slt", "kal"]),
        EngineVoiceSettings(engine="festival"),
    ]
    voices, skipped = ev.engine_voices(engines, "en", exclude_engines=["festival"])
    assert [(v.engine.name, v.voice) for v in voices] == [("flite", "slt"), ("flite", "kal")]
    assert "festival" not in {v.engine.name for v in voices} and not skipped


@needs_flite
def test_a_language_an_engine_cannot_speak_is_skipped_with_a_reason():
    voices, skipped = ev.engine_voices([EngineVoiceSettings(engine="flite")], "fr")
    assert voices == [] and "flite" in skipped and "fr" in skipped["flite"]
    _, unknown_voice = ev.engine_voices(
        [EngineVoiceSettings(engine="flite", voices=["nobody"])], "en"
    )
    assert any("nobody" in key for key in unknown_voice)


def test_an_engine_that_is_not_installed_is_skipped_not_fatal(monkeypatch):
    monkeypatch.setattr(type(ENGINES["piper"]), "availability", lambda self: "install piper-tts")
    voices, skipped = ev.engine_voices([EngineVoiceSettings(engine="piper")], "en")
    assert voices == [] and skipped == {"piper": "install piper-tts"}


@needs_flite
def test_a_partition_renders_the_keyword_its_unknown_words_and_windows_per_voice():
    engines = [EngineVoiceSettings(engine="flite", voices=["slt", "kal"], renders_per_voice=3)]
    negatives = NegativeSettings(unknown_ratio=0.5, speech_windows=10)
    recipes, skipped = ev.partition_recipes(
        "yes", ["yes", "no"], engines, SpeakerPerturbationSettings(), negatives, "en", salt="s"
    )
    assert not skipped
    keyword = [r for r in recipes if r.label == "yes"]
    unknown = [r for r in recipes if r.label == UNKNOWN_LABEL]
    assert len(keyword) == 2 * 3 and {r.speaker for r in keyword} == {"flite:slt", "flite:kal"}
    windows = [r for r in unknown if r.crop_at is not None]
    assert len(unknown) - len(windows) == 3 and len(windows) == 3
    assert not {"yes", "no"} & {r.text for r in unknown if r.crop_at is None}
    # deterministic: the same partition gives the same recipes (and clip ids)
    again, _ = ev.partition_recipes(
        "yes", ["yes", "no"], engines, SpeakerPerturbationSettings(), negatives, "en", salt="s"
    )
    assert [r.clip_id for r in again] == [r.clip_id for r in recipes]
    assert len({r.clip_id for r in recipes}) == len(recipes)


@needs_flite
def test_a_render_is_a_centred_clip_and_its_perturbation_is_recorded():
    voice = ev.engine_voices([EngineVoiceSettings(engine="flite", voices=["slt"])], "en")[0]
    recipes = ev.word_recipes("hello", "hello", voice, 2, SpeakerPerturbationSettings(), salt="")
    assert all(r.perturbation is not None for r in recipes)
    assert all("|w" in r.origin_id and "|t" in r.origin_id for r in recipes)
    clip = recipes[0].render(AUDIO)
    assert clip.shape == (AUDIO.clip_samples,) and clip.dtype == np.float32
    assert np.isfinite(clip).all() and np.abs(clip).max() <= 1.0
    energy = clip.astype(np.float64) ** 2
    centre = float((energy * np.arange(len(clip))).sum() / energy.sum()) / len(clip)
    assert 0.3 < centre < 0.7  # the word sits in the middle of the clip
    plain = ev.word_recipes(
        "hello", "hello", voice, 1, SpeakerPerturbationSettings(enabled=False), salt=""
    )
    assert plain[0].perturbation is None and "|w" not in plain[0].origin_id


@needs_flite
def test_the_held_out_engine_set_speaks_every_keyword_and_unknown_word():
    spoken = ev.held_out_engine_set("flite", ["yes", "no"], ["maybe"], 1, "en", AUDIO)
    voices = len(ENGINES["flite"].voices("en"))
    assert spoken.labels.count("yes") == voices and spoken.labels.count("no") == voices
    assert spoken.labels.count(UNKNOWN_LABEL) == voices
    assert {s.split(":")[0] for s in spoken.speakers} == {"flite"}
    assert all(s.shape == (AUDIO.clip_samples,) for s in spoken.samples)
