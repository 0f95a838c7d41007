"""Text-to-speech engines behind one interface (see ``base``), and a registry.

``ENGINES`` maps each engine name to an adapter instance; :func:`available_engines` splits the
requested names into usable engines and ``{name: reason}`` for the others, so the asset graph can
log and card-note a skipped engine instead of failing."""

from __future__ import annotations

from collections.abc import Iterable

from kws_assets.core.speech.engines.base import (
    Rendered,
    TtsEngine,
    TtsEngineError,
)
from kws_assets.core.speech.engines.espeak import EspeakEngine
from kws_assets.core.speech.engines.festival import FestivalEngine
from kws_assets.core.speech.engines.flite import FliteEngine
from kws_assets.core.speech.engines.piper import PiperEngine

ENGINES: dict[str, TtsEngine] = {
    engine.name: engine
    for engine in (EspeakEngine(), FliteEngine(), FestivalEngine(), PiperEngine())
}


def get_engine(name: str) -> TtsEngine:
    try:
        return ENGINES[name]
    except KeyError:
        raise TtsEngineError(f"unknown TTS engine {name!r}; engines: {sorted(ENGINES)}") from None


def available_engines(
    names: Iterable[str], engines: dict[str, TtsEngine] | None = None
) -> tuple[list[TtsEngine], dict[str, str]]:
    """(usable engines in the requested order, {skipped name: reason}); never raises for a
    missing or unknown engine."""
    registry = ENGINES if engines is None else engines
    usable: list[TtsEngine] = []
    skipped: dict[str, str] = {}
    for name in names:
        engine = registry.get(name)
        if engine is None:
            skipped[name] = f"unknown TTS engine; engines: {sorted(registry)}"
            continue
        try:
            reason = engine.availability()
        except Exception as error:
            reason = f"availability check failed: {error!r}"
        if reason is None:
            usable.append(engine)
        else:
            skipped[name] = reason
    return usable, skipped


__all__ = [
    "ENGINES",
    "Rendered",
    "TtsEngine",
    "TtsEngineError",
    "available_engines",
    "get_engine",
]
