"""Language codes and the espeak-ng voices that speak them.

Corpora label utterances with BCP-47-like codes (``es``, ``es-MX``, ``fr_FR``, ``zh-CN``); espeak-ng
names its voices by file (``es``, ``es-419``, ``fr-be``, ``cmn``).  This module maps one onto the
other: which voice aligns a language (:func:`alignment_voice`) and which voice x variant list makes
a default speaker grid for synthetic clips (:func:`default_voices`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kws_assets.core.speech import tts

ENGLISH = "en"
# Corpus codes whose espeak-ng voice has another name (Common Voice uses zh-CN, zh-TW, zh-HK).
LANGUAGE_ALIASES = {"zh": "cmn", "zh-cn": "cmn", "zh-tw": "cmn", "zh-hk": "yue"}
# Voices that expect text in a romanisation or another script than the language's usual one.
ROMANISED_VOICE_MARKERS = ("-latn", "-shaw")
# Variants cycled over a language's voices to make distinct synthetic speakers.
DEFAULT_VARIANTS = (
    "m1",
    "f2",
    "m3",
    "f4",
    "m5",
    "f1",
    "m7",
    "f3",
    "m2",
    "f5",
    "m4",
    "m6",
    "michel",
    "anika",
    "pablo",
    "belinda",
)
DEFAULT_GRID_SIZE = 8


class LanguageNotSpokenError(ValueError):
    """espeak-ng has no voice for a language code."""


def normalize_language(code: str) -> str:
    """Lower-case code with ``-`` separators: ``"es_MX"`` -> ``"es-mx"``; aliases applied."""
    tag = str(code or "").strip().lower().replace("_", "-")
    return LANGUAGE_ALIASES.get(tag, tag)


def primary_subtag(code: str) -> str:
    """The language part of a code: ``"es-mx"`` -> ``"es"``."""
    return normalize_language(code).split("-", 1)[0]


def is_english(code: str) -> bool:
    return primary_subtag(code) == ENGLISH


def lookup(mapping: Mapping[str, object], code: str) -> object | None:
    """The value for ``code`` in a map keyed by language codes: the exact tag first, then its
    primary subtag (``{"es": x}`` serves ``es-MX``).  Keys are compared normalised."""
    by_tag = {normalize_language(k): v for k, v in mapping.items()}
    tag = normalize_language(code)
    if tag in by_tag:
        return by_tag[tag]
    return by_tag.get(primary_subtag(tag))


def voices_for(code: str) -> list[str]:
    """espeak-ng voices of a language, best match first: the exact tag (``es-419``), the primary
    subtag (``es``), then its regional voices; romanised-script voices are left out."""
    tag = normalize_language(code)
    primary = primary_subtag(tag)
    found = [
        v
        for v in tts.list_voices(primary)
        if (v == primary or v.startswith(primary + "-"))
        and not any(marker in v for marker in ROMANISED_VOICE_MARKERS)
    ]
    order = {tag: 0, primary: 1}
    return sorted(found, key=lambda v: (order.get(v, 2), v))


def alignment_voice(code: str, overrides: Mapping[str, str] | None = None) -> str:
    """The voice whose rendering a recording in language ``code`` is aligned against: the
    override for the code if configured, else the best match of :func:`voices_for`."""
    chosen = lookup(overrides or {}, code)
    if chosen:
        return str(chosen)
    voices = voices_for(code)
    if not voices:
        raise LanguageNotSpokenError(f"espeak-ng has no voice for language {code!r}")
    return voices[0]


def default_voices(code: str, count: int = DEFAULT_GRID_SIZE) -> list[str]:
    """``count`` distinct ``voice+variant`` speakers of a language: the language's voices in turn,
    each with the next variant of :data:`DEFAULT_VARIANTS`."""
    voices = voices_for(code)
    if not voices:
        raise LanguageNotSpokenError(f"espeak-ng has no voice for language {code!r}")
    combos = [f"{voices[i % len(voices)]}+{variant}" for i, variant in enumerate(DEFAULT_VARIANTS)]
    return list(dict.fromkeys(combos))[:count]


LANGUAGE_GRID_VOICES = 8  # synthetic grid voices of a non-English config without its own list
LANGUAGE_DEMO_VOICES = 4  # demo corpus voices of such a config (other variants than the grid's)
LANGUAGE_HELD_OUT_VOICES = 2  # evaluation voices of such a config (used by neither of the above)


@dataclass(frozen=True)
class LanguageVoices:
    """The espeak-ng speakers a config in one language uses where it names none: the synthetic
    grid, the demo corpus and the evaluation's held-out voices, all distinct."""

    grid: list[str]
    demo: list[str]
    held_out: list[str]


def language_voices(language: str) -> LanguageVoices:
    """Raises :class:`LanguageNotSpokenError` when espeak-ng has no voice for the language."""
    demo_end = LANGUAGE_GRID_VOICES + LANGUAGE_DEMO_VOICES
    speakers = default_voices(language, demo_end + LANGUAGE_HELD_OUT_VOICES)
    return LanguageVoices(
        grid=speakers[:LANGUAGE_GRID_VOICES],
        demo=speakers[LANGUAGE_GRID_VOICES:demo_end],
        held_out=speakers[demo_end:],
    )
