"""CMU Flite (Debian ``flite``), one subprocess per utterance.

Voices: ``kal`` (8 kHz diphone), ``kal16`` (16 kHz diphone), ``awb``, ``rms``, ``slt`` (16 kHz
clustergen).  ``awb_time`` is a limited-domain (clock times) voice and is not offered.  ``rate``
sets ``duration_stretch = 1 / rate``; ``pitch`` sets ``int_f0_target_mean`` to the voice's mean F0
times ``pitch``.  The base means below are the ``int_f0_target_mean`` values that reproduce each
voice's default F0 (measured by autocorrelation on "yes no" with flite 2.2).  ``rms`` ignores the
feature, so it has no pitch control.  Flite silently falls back to its default voice for an
unknown name, hence the fixed voice list.  Output is deterministic."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kws_assets.core.license_terms import LicenseTerms
from kws_assets.core.speech.engines._subprocess import render_with_command
from kws_assets.core.speech.engines.base import (
    DEFAULT_PITCH,
    DEFAULT_RATE,
    Rendered,
    TtsEngine,
    TtsEngineError,
    check_request,
    is_english,
)
from kws_assets.core.speech.engines.registry import register_engine
from kws_assets.settings import EngineVoiceSettings

FLITE_BINARY = "flite"
BASE_F0_TARGET_HZ = {"kal": 94.0, "kal16": 94.0, "awb": 131.0, "rms": None, "slt": 172.0}


class FliteEngine(TtsEngine):
    name = "flite"

    def __init__(self, binary: str = FLITE_BINARY) -> None:
        self.binary = binary

    def availability(self) -> str | None:
        if shutil.which(self.binary) is None:
            return f"{self.binary!r} not on PATH; install the Debian package flite"
        return None

    def voices(self, language: str) -> list[str]:
        if not is_english(language) or self.availability() is not None:
            return []
        return sorted(BASE_F0_TARGET_HZ)

    def pitch_control(self, voice: str) -> bool:
        return BASE_F0_TARGET_HZ.get(voice) is not None

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
        self._reject_unknown_params(self.name, engine_params, set())
        if voice not in BASE_F0_TARGET_HZ:
            raise TtsEngineError(
                f"unknown flite voice {voice!r}; flite voices: {sorted(BASE_F0_TARGET_HZ)}"
            )
        self._require_available()
        self._require_pitch(voice, pitch)
        duration_stretch = 1.0 / rate
        base = BASE_F0_TARGET_HZ[voice]
        f0_target = None if base is None or pitch == DEFAULT_PITCH else round(base * pitch, 2)

        def args(text_path: Path, wav_path: Path) -> list[str]:
            command = [
                self.binary,
                "-voice",
                voice,
                "--setf",
                f"duration_stretch={duration_stretch:.6f}",
            ]
            if f0_target is not None:
                command += ["--setf", f"int_f0_target_mean={f0_target}"]
            return [*command, "-f", str(text_path), "-o", str(wav_path)]

        samples, sample_rate = render_with_command(self.name, args, text)
        params = {
            "engine": self.name,
            "voice": voice,
            "rate": float(rate),
            "pitch": float(pitch),
            "seed": int(seed),
            "seed_used": False,
            "duration_stretch": round(duration_stretch, 6),
            "int_f0_target_mean": f0_target,
        }
        return Rendered(samples=samples, sample_rate=sample_rate, params=params)


REGISTRATION = register_engine(
    FliteEngine,
    license=LicenseTerms(
        "LicenseRef-CMU-Flite",
        "Debian flite / libflite1 (CMU Flite 2.2, http://cmuflite.org)",
        "BSD-style CMU/Edinburgh licence (free use and redistribution, keep the notice, mark "
        "modifications); run as a subprocess. Voices kal, awb, rms, slt (CMU ARCTIC) under the "
        "same terms.",
    ),
    settings=EngineVoiceSettings,
)
