"""espeak-ng through the project's ctypes wrapper (``kws_assets.core.speech.tts``), unchanged.

Voices are espeak voice file names, optionally with a variant: ``"en-us"``, ``"en-us+f2"``.
``rate`` scales espeak's default 175 words per minute; ``pitch`` (a multiplier of mean F0) is
mapped onto espeak's 0-99 pitch parameter through a curve measured on en-us and en-us+f2 (F0 at
pitch 0/25/50/75/99 relative to 50: 0.72/0.80/1.00/1.27/1.63, the same for both within a few %).
Samples are not bit-exact across call orders (espeak's flutter oscillator keeps its phase)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kws_assets.core.license_terms import LicenseTerms
from kws_assets.core.speech import tts
from kws_assets.core.speech.engines.base import (
    DEFAULT_PITCH,
    DEFAULT_RATE,
    Rendered,
    TtsEngine,
    TtsEngineError,
    check_request,
)
from kws_assets.core.speech.engines.registry import register_engine

DEFAULT_WPM = 175
DEFAULT_ESPEAK_PITCH = 50
# measured F0 ratio (to espeak pitch 50) at espeak pitch 0, 25, 50, 75, 99
PITCH_PARAMS = (0.0, 25.0, 50.0, 75.0, 99.0)
PITCH_RATIOS = (0.72, 0.80, 1.00, 1.27, 1.63)
ENGINE_PARAMS = {"word_gap"}
SPEAKER_PREFIX = "tts:"
"""Speaker ids of espeak-ng voices: ``tts:en-us+f2`` (older than the other engines'
``<engine>:<voice>`` ids, kept so existing splits and tables keep their speakers)."""


def espeak_pitch(multiplier: float) -> int:
    """espeak's 0-99 pitch parameter that gives ``multiplier`` times the voice's default F0."""
    if not PITCH_RATIOS[0] <= multiplier <= PITCH_RATIOS[-1]:
        raise TtsEngineError(
            f"espeak pitch multiplier {multiplier} outside [{PITCH_RATIOS[0]}, {PITCH_RATIOS[-1]}]"
        )
    return round(float(np.interp(multiplier, PITCH_RATIOS, PITCH_PARAMS)))


class EspeakEngine(TtsEngine):
    name = "espeak"
    bit_exact = False

    def availability(self) -> str | None:
        try:
            tts.native_sample_rate()
        except (ImportError, OSError, tts.TtsError) as error:
            return f"espeak-ng unusable ({error}); install the PyPI package espeakng-loader"
        return None

    def voices(self, language: str) -> list[str]:
        """Base voices for ``language`` and each of them with every installed variant."""
        if self.availability() is not None:
            return []
        bases = tts.list_voices(language)
        variants = tts.list_variants()
        return sorted(bases + [f"{b}+{v}" for b in bases for v in variants])

    def render(
        self,
        text: str,
        voice: str,
        *,
        rate: float = DEFAULT_RATE,
        pitch: float = DEFAULT_PITCH,
        seed: int = 0,
        **engine_params: Any,
    ) -> Rendered:
        text = check_request(text, rate, pitch)
        self._reject_unknown_params(self.name, engine_params, ENGINE_PARAMS)
        wpm = round(DEFAULT_WPM * rate)
        if not tts.RATE_MIN_WPM <= wpm <= tts.RATE_MAX_WPM:
            raise TtsEngineError(
                f"espeak rate {rate} is {wpm} wpm, outside [{tts.RATE_MIN_WPM}, {tts.RATE_MAX_WPM}]"
            )
        espeak_pitch_value = espeak_pitch(pitch)
        word_gap = int(engine_params.get("word_gap", 0))
        try:
            synthesis = tts.synthesize(
                text, voice=voice, rate=wpm, pitch=espeak_pitch_value, word_gap=word_gap
            )
        except tts.TtsError as error:
            raise TtsEngineError(f"espeak: {error}") from error
        params = {
            "engine": self.name,
            "voice": voice,
            "rate": float(rate),
            "pitch": float(pitch),
            "seed": int(seed),
            "seed_used": False,
            "wpm": wpm,
            "espeak_pitch": espeak_pitch_value,
            "word_gap": word_gap,
        }
        return Rendered(samples=synthesis.samples, sample_rate=synthesis.sample_rate, params=params)


REGISTRATION = register_engine(
    EspeakEngine,
    license=LicenseTerms(
        "GPL-3.0-or-later",
        "PyPI espeakng-loader (bundles libespeak-ng 1.52 and espeak-ng-data); "
        "upstream https://github.com/espeak-ng/espeak-ng",
        "Loaded in-process through ctypes (core/speech/tts.py): the reason this project is "
        "GPL-3.0. Rendered audio is program output, not a covered work.",
    ),
    settings=None,  # the tts section drives espeak-ng: always on
    speaker_prefixes=(SPEAKER_PREFIX, f"{EspeakEngine.name}:"),
)
