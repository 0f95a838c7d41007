"""The Festival Speech Synthesis System (Debian ``festival``) through ``text2wave``.

Voices: ``kal_diphone`` (festvox-kallpc16k), ``ked_diphone`` (festvox-kdlpc16k), both 16 kHz
diphone voices, and ``cmu_us_slt_arctic_hts`` (festvox-us-slt-hts, 32 kHz HTS).  Only voices whose
folder is installed are offered.

Safety: the text is written to a file that ``text2wave`` reads as text; it never enters a Scheme
expression.  The only ``-eval`` expressions are built from a voice name checked against the fixed
list and from formatted floats.

Controls: diphone voices take ``rate`` as ``Duration_Stretch = 1 / rate`` and ``pitch`` by
scaling the linear-regression intonation targets (``int_lr_params`` target mean and std, voice
defaults 105/14 and 105/15 Hz).  The HTS voice ignores ``Duration_Stretch``; its speed is
hts_engine's ``-r`` option.  It has no pitch control here (hts_engine's ``-fm`` half-tone option is
not passed through by Festival 2.5), so ``pitch != 1`` is refused.  Output is deterministic."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
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

TEXT2WAVE_BINARY = "text2wave"
FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")


@dataclass(frozen=True)
class FestivalVoice:
    folder: str  # under FESTIVAL_VOICE_ROOT
    debian_package: str
    f0_mean_hz: float | None  # int_lr_params target mean; None = no pitch control
    f0_std_hz: float | None
    hts: bool


FESTIVAL_VOICES = {
    "kal_diphone": FestivalVoice("english/kal_diphone", "festvox-kallpc16k", 105.0, 14.0, False),
    "ked_diphone": FestivalVoice("english/ked_diphone", "festvox-kdlpc16k", 105.0, 15.0, False),
    "cmu_us_slt_arctic_hts": FestivalVoice(
        "us/cmu_us_slt_arctic_hts", "festvox-us-slt-hts", None, None, True
    ),
}
INT_LR_MODEL = "(model_f0_mean 170) (model_f0_std 34)"  # the diphone voices' own model values


class FestivalEngine(TtsEngine):
    name = "festival"

    def __init__(
        self, binary: str = TEXT2WAVE_BINARY, voice_root: Path = FESTIVAL_VOICE_ROOT
    ) -> None:
        self.binary = binary
        self.voice_root = Path(voice_root)

    def availability(self) -> str | None:
        if shutil.which(self.binary) is None:
            return f"{self.binary!r} not on PATH; install the Debian package festival"
        if not self._installed():
            packages = " ".join(v.debian_package for v in FESTIVAL_VOICES.values())
            return f"no Festival voice installed; install one of the Debian packages {packages}"
        return None

    def _installed(self) -> list[str]:
        return sorted(
            n for n, v in FESTIVAL_VOICES.items() if (self.voice_root / v.folder).is_dir()
        )

    def voices(self, language: str) -> list[str]:
        if not is_english(language) or shutil.which(self.binary) is None:
            return []
        return self._installed()

    def pitch_control(self, voice: str) -> bool:
        spec = FESTIVAL_VOICES.get(voice)
        return spec is not None and spec.f0_mean_hz is not None

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
        spec = FESTIVAL_VOICES.get(voice)
        if spec is None:
            raise TtsEngineError(
                f"unknown festival voice {voice!r}; voices: {sorted(FESTIVAL_VOICES)}"
            )
        self._require_available()
        if voice not in self._installed():
            raise TtsEngineError(
                f"festival voice {voice!r} not installed; install the Debian package "
                f"{spec.debian_package}"
            )
        self._require_pitch(voice, pitch)
        expressions = [f"(voice_{voice})"]
        params: dict[str, Any] = {
            "engine": self.name,
            "voice": voice,
            "rate": float(rate),
            "pitch": float(pitch),
            "seed": int(seed),
            "seed_used": False,
        }
        if spec.hts:
            expressions.append(
                f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.6f}))))'
            )
            params["hts_speed"] = round(float(rate), 6)
        else:
            stretch = 1.0 / rate
            expressions.append(f"(Parameter.set 'Duration_Stretch {stretch:.6f})")
            params["duration_stretch"] = round(stretch, 6)
            if pitch != DEFAULT_PITCH:
                if spec.f0_mean_hz is None or spec.f0_std_hz is None:
                    raise TtsEngineError(
                        f"festival voice {voice!r} has no pitch control; render it at pitch "
                        f"{DEFAULT_PITCH} (see pitch_control())"
                    )
                mean, std = spec.f0_mean_hz * pitch, spec.f0_std_hz * pitch
                expressions.append(
                    f"(set! int_lr_params '((target_f0_mean {mean:.3f}) (target_f0_std {std:.3f}) "
                    f"{INT_LR_MODEL}))"
                )
                params["target_f0_mean"] = round(mean, 3)

        def args(text_path: Path, wav_path: Path) -> list[str]:
            command = [self.binary]
            for expression in expressions:
                command += ["-eval", expression]
            return [*command, str(text_path), "-o", str(wav_path)]

        samples, sample_rate = render_with_command(self.name, args, text)
        return Rendered(samples=samples, sample_rate=sample_rate, params=params)


REGISTRATION = register_engine(
    FestivalEngine,
    license=LicenseTerms(
        "LicenseRef-Festival",
        "Debian festival (Festival 2.5, CSTR University of Edinburgh, http://festvox.org)",
        "X11-style free licence (keep the notice, mark modifications, no endorsement); run as a "
        "subprocess (text2wave).",
    ),
    settings=EngineVoiceSettings,
)
