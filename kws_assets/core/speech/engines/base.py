"""The one interface every text-to-speech engine adapter implements.

Models trained on one synthesiser learn that synthesiser, not speech; the dataset therefore mixes
several engines.  Each adapter (``espeak``, ``flite``, ``festival``, ``piper``) turns text into a
:class:`Rendered` clip at the engine's native sample rate (callers resample with
``kws_assets.core.audio.io.resample``) and records in ``Rendered.params`` exactly what was used, so
the data card can say per clip which engine, voice and settings produced it.

Common controls: ``rate`` > 1 speaks faster (duration roughly divided by ``rate``); ``pitch`` is a
multiplier of the voice's mean F0.  Voices whose engine has no pitch control say so through
:meth:`TtsEngine.pitch_control` and refuse ``pitch != 1`` (use ``core.dataset.perturb`` instead)
rather than silently ignoring it.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_RATE = 1.0
DEFAULT_PITCH = 1.0
RATE_MIN = 0.3  # beyond these the engines produce mush or refuse
RATE_MAX = 3.0
PITCH_MIN = 0.5
PITCH_MAX = 2.0
ENGLISH = "en"


class TtsEngineError(ValueError):
    """A render request an engine cannot serve: unknown voice, empty text, out-of-range control,
    missing package, engine crash or timeout.  The message names the fix where there is one."""


@dataclass(frozen=True)
class Rendered:
    """One synthesised utterance: float32 mono samples in [-1, 1] at the engine's native rate,
    and the parameters that produced it (engine, voice, rate, pitch, seed, engine specifics)."""

    samples: np.ndarray
    sample_rate: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / float(self.sample_rate)


def as_mono_float32(samples: np.ndarray) -> np.ndarray:
    """Engine output as the project's audio convention (mono float32 clipped to [-1, 1])."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    return np.clip(x, -1.0, 1.0).astype(np.float32, copy=False)


def check_request(text: str, rate: float, pitch: float) -> str:
    """Validate the controls every engine shares; returns the stripped text."""
    if not isinstance(text, str) or not text.strip():
        raise TtsEngineError("cannot synthesise empty text")
    for name, value, low, high in (
        ("rate", rate, RATE_MIN, RATE_MAX),
        ("pitch", pitch, PITCH_MIN, PITCH_MAX),
    ):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
            raise TtsEngineError(f"{name}={value!r} outside the supported range [{low}, {high}]")
    return text.strip()


def is_english(language: str) -> bool:
    """True for "en", "en-us", "en_US", "EN-gb"... (the engines other than espeak speak English
    only)."""
    return language.lower().replace("_", "-").split("-")[0] == ENGLISH


class TtsEngine(abc.ABC):
    """A text-to-speech engine.  Subclasses set ``name`` and implement the rest; the module
    registers the subclass with its licence terms (``registry.register_engine``).

    ``bit_exact`` says whether equal arguments give bit-identical samples in any call order
    (espeak-ng cannot promise this: see ``kws_assets.core.speech.tts``)."""

    name: str = ""
    bit_exact: bool = True

    @abc.abstractmethod
    def availability(self) -> str | None:
        """None when the engine can render here, else why not and which package to install."""

    @abc.abstractmethod
    def voices(self, language: str) -> list[str]:
        """Voice names this engine has for ``language`` (sorted; [] when none or unavailable)."""

    def pitch_control(self, voice: str) -> bool:
        """Whether ``render(..., pitch=...)`` can move this voice's F0 (default: yes)."""
        return True

    @abc.abstractmethod
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
        """Speak ``text`` with ``voice``; raises :class:`TtsEngineError` on any failure."""

    # helpers for subclasses -----------------------------------------------------------------
    def _require_available(self) -> None:
        reason = self.availability()
        if reason is not None:
            raise TtsEngineError(f"{self.name} is not usable: {reason}")

    def _require_pitch(self, voice: str, pitch: float) -> None:
        if pitch != DEFAULT_PITCH and not self.pitch_control(voice):
            raise TtsEngineError(
                f"{self.name} voice {voice!r} has no pitch control (pitch={pitch}); render at "
                "pitch=1.0 and shift with kws_assets.core.dataset.perturb"
            )

    @staticmethod
    def _reject_unknown_params(engine: str, given: dict[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(given) - allowed)
        if unknown:
            raise TtsEngineError(
                f"{engine} does not take {unknown}; its engine parameters are {sorted(allowed)}"
            )
