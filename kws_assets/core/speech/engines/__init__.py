"""Text-to-speech engines behind one interface (see ``base``), each declared by its own module in
the registry (see ``registry``).

Importing this package imports every engine module, which registers it.  ``ENGINES`` maps each
engine name to an adapter instance; :func:`available_engines` splits the requested names into
usable engines and ``{name: reason}`` for the others, so the asset graph can log and card-note a
skipped engine instead of failing.  The import order is the registration order, and so the order
of the licence table's engine rows (espeak and piper, in-process, first)."""

from __future__ import annotations

from collections.abc import Iterable

# Importing an engine module registers it; this order is the licence table's.
# isort: off
from kws_assets.core.speech.engines import espeak, piper, flite, festival  # noqa: F401

# isort: on
from kws_assets.core.speech.engines.base import (
    Rendered,
    TtsEngine,
    TtsEngineError,
)
from kws_assets.core.speech.engines.registry import (
    REGISTRY,
    EngineRegistration,
    EngineRegistry,
    register_engine,
)

ENGINES: dict[str, TtsEngine] = REGISTRY.adapters()


def get_engine(name: str) -> TtsEngine:
    try:
        return ENGINES[name]
    except KeyError:
        raise TtsEngineError(f"unknown TTS engine {name!r}; engines: {sorted(ENGINES)}") from None


def available_engines(
    names: Iterable[str], engines: dict[str, TtsEngine] | None = None
) -> tuple[list[TtsEngine], dict[str, str]]:
    """(usable engines in the requested order, {skipped name: reason}); never raises for a
    missing or unknown engine.  ``engines``: adapters by name (default ``ENGINES``; a test's own
    ``EngineRegistry().adapters()`` for engines the project does not register)."""
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
    "REGISTRY",
    "EngineRegistration",
    "EngineRegistry",
    "Rendered",
    "TtsEngine",
    "TtsEngineError",
    "available_engines",
    "get_engine",
    "register_engine",
]
