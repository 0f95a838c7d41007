"""The pipeline's configuration as every entry point loads it: the settings file, plus the voices
of its language where it names none.

:mod:`kws_assets.settings` is a leaf that knows nothing of espeak-ng; the English defaults are
spelled out there.  A config in another language (``language: fr``) that leaves out ``tts.voices``,
``tts.accents``, ``tts.carrier_phrases``, a demo source's ``voices`` or
``evaluation.held_out_voices`` gets that language's espeak-ng speakers and carrier phrases here,
where the installed voices are known.  A field the file sets is never replaced.
"""

from __future__ import annotations

import os

from kws_assets.core.speech.fillers import carrier_phrases
from kws_assets.core.speech.languages import language_voices
from kws_assets.settings import (
    DemoCorpusSource,
    KwsConfig,
    config_path,
    load_settings,
    primary_language,
)

__all__ = ["config_path", "load_config", "with_language_voices"]

ENGLISH = "en"


def with_language_voices(cfg: KwsConfig) -> KwsConfig:
    """``cfg`` with its language's voices wherever it names none (English configs unchanged).
    Raises ``LanguageNotSpokenError`` when espeak-ng has no voice for the language."""
    if primary_language(cfg.language) == ENGLISH:
        return cfg
    voices = language_voices(cfg.language)
    tts_defaults = {
        "voices": voices.grid,
        "accents": [],
        "carrier_phrases": list(carrier_phrases(cfg.language)),
    }
    tts = cfg.tts.model_copy(
        update={k: v for k, v in tts_defaults.items() if k not in cfg.tts.model_fields_set}
    )
    sources = [
        s.model_copy(update={"voices": voices.demo})
        if isinstance(s, DemoCorpusSource) and "voices" not in s.model_fields_set
        else s
        for s in cfg.sources
    ]
    evaluation = cfg.evaluation
    if "held_out_voices" not in evaluation.model_fields_set:
        evaluation = evaluation.model_copy(update={"held_out_voices": voices.held_out})
    # Re-validate so the result is a config like any other (validators run, fields_set kept).
    data = cfg.model_dump(exclude_unset=True)
    data.update(tts=tts, sources=sources, evaluation=evaluation)
    return KwsConfig.model_validate(data)


def load_config(path: str | os.PathLike[str] | None = None) -> KwsConfig:
    """The config file in force (``$KWS_CONFIG``, else ``./kws.yaml``, else the defaults) with its
    language's voices filled in; see :func:`kws_assets.settings.load_settings`."""
    return with_language_voices(load_settings(path))
