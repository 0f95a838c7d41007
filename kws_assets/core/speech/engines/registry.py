"""The TTS engine registry: each engine module declares itself here when it is imported.

Why: adding an engine used to mean editing five places (its module, a tuple of adapters, the
settings Literal, the licence table, the data card's speaker prefixes).  Now the engine's module
states its name (the adapter's ``name``), its adapter class, its licence terms, the speaker-id
prefixes its clips carry and the settings class that selects it, in one ``register_engine`` call;
``engines/__init__`` imports every engine module, and the licence table and the data card read
this registry.  ``settings/`` is a leaf and cannot read it, so its ``EngineName`` Literal is
checked against the registry by a test instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kws_assets.core.license_terms import LicenseTerms
from kws_assets.core.speech.engines.base import TtsEngine, TtsEngineError


@dataclass(frozen=True)
class EngineRegistration:
    """One engine as its module declares it.

    ``settings`` is the settings class of a ``tts.engines`` entry that switches the engine on
    (``EngineVoiceSettings``), or None for the engine the ``tts`` section itself drives and that
    is always on (espeak-ng, which speaks the keyword grid and the carrier phrases).
    ``speaker_prefixes``: a speaker id starting with one of them is a voice of this engine."""

    adapter: type[TtsEngine]
    license: LicenseTerms
    speaker_prefixes: tuple[str, ...]
    settings: type | None

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def module(self) -> str:
        """The module that declares the engine (the one place its name may be spelled)."""
        return self.adapter.__module__

    def speaks_as(self, speaker: str) -> bool:
        """Whether ``speaker`` is one of this engine's voices."""
        return speaker.startswith(self.speaker_prefixes)


class EngineRegistry:
    """Engine registrations by name, in registration order."""

    def __init__(self) -> None:
        self._entries: dict[str, EngineRegistration] = {}

    def register(
        self,
        adapter: type[TtsEngine],
        *,
        license: LicenseTerms,
        settings: type | None,
        speaker_prefixes: tuple[str, ...] = (),
    ) -> EngineRegistration:
        """Add ``adapter`` under its ``name``; ``speaker_prefixes`` default to ``"<name>:"``
        (the ids ``engine_voices`` gives an engine's voices).  A second engine of the same name
        is an error, not a silent replacement."""
        name = adapter.name
        if not name:
            raise ValueError(f"{adapter.__qualname__} has no name; set the class attribute")
        if name in self._entries:
            raise ValueError(
                f"TTS engine {name!r} registered twice ({self._entries[name].module} and "
                f"{adapter.__module__})"
            )
        entry = EngineRegistration(adapter, license, speaker_prefixes or (f"{name}:",), settings)
        self._entries[name] = entry
        return entry

    def __iter__(self) -> Iterator[EngineRegistration]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def get(self, name: str) -> EngineRegistration:
        try:
            return self._entries[name]
        except KeyError:
            raise TtsEngineError(
                f"unknown TTS engine {name!r}; engines: {sorted(self._entries)}"
            ) from None

    def adapters(self) -> dict[str, TtsEngine]:
        """One adapter instance per engine (default construction), keyed by name."""
        return {name: entry.adapter() for name, entry in self._entries.items()}

    def always_on(self) -> tuple[str, ...]:
        """Engines no ``tts.engines`` entry selects: the ``tts`` section drives them."""
        return tuple(entry.name for entry in self if entry.settings is None)

    def selectable(self) -> tuple[str, ...]:
        """Engines a ``tts.engines`` entry switches on (the settings' ``EngineName``)."""
        return tuple(entry.name for entry in self if entry.settings is not None)

    def speaker_engine(self, speaker: str) -> str | None:
        """The engine whose voice ``speaker`` is, None for a recorded speaker."""
        for entry in self:
            if entry.speaks_as(speaker):
                return entry.name
        return None


REGISTRY = EngineRegistry()
"""The project's engines; filled by importing ``kws_assets.core.speech.engines``."""
register_engine = REGISTRY.register
