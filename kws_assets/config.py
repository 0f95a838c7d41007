"""The pipeline's configuration as every entry point loads it: the settings file, plus the voices
of its language where it names none.

:mod:`kws_assets.settings` is a leaf that knows nothing of espeak-ng; the English defaults are
spelled out there.  A config in another language (``language: fr``) that leaves out ``tts.voices``,
``tts.accents``, ``tts.carrier_phrases``, a demo source's ``voices`` or
``evaluation.held_out_voices`` gets that language's espeak-ng speakers and carrier phrases here,
where the installed voices are known.  A field the file sets is never replaced.

The core never sees the whole ``KwsConfig``: it takes the sections it uses.  Where a core step
needs several, it takes a small frozen bundle of exactly those; the builders at the end of this
module make each bundle from a config, once, for the assets, sensors, CLI and tests.
"""

from __future__ import annotations

import os

from kws_assets.core.corpus.ingest import CorpusReading
from kws_assets.core.corpus.landing import LandingZone
from kws_assets.core.dataset.curation import CurationSettings
from kws_assets.core.dataset.data_card import CardSettings
from kws_assets.core.speech.fillers import carrier_phrases
from kws_assets.core.speech.languages import language_voices
from kws_assets.settings import (
    DemoCorpusSource,
    KwsConfig,
    config_path,
    load_settings,
    primary_language,
)

__all__ = [
    "card_settings",
    "config_path",
    "corpus_reading",
    "curation_settings",
    "landing_zone",
    "load_config",
    "with_language_voices",
]

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


def corpus_reading(cfg: KwsConfig) -> CorpusReading:
    """What :func:`kws_assets.core.corpus.ingest.load_corpus` reads sources with."""
    return CorpusReading(
        keywords=list(cfg.keywords),
        language=cfg.language,
        sample_rate=cfg.audio.sample_rate,
        ingest=cfg.ingest,
        quality=cfg.quality,
        storage=cfg.storage,
    )


def landing_zone(cfg: KwsConfig) -> LandingZone:
    """The config's landing zone (``automation``, read through ``storage``'s S3 settings)."""
    return LandingZone.from_settings(cfg.automation, cfg.storage)


def curation_settings(cfg: KwsConfig) -> CurationSettings:
    """What :func:`kws_assets.core.dataset.curation.curate` judges clips by."""
    return CurationSettings(
        keywords=list(cfg.keywords),
        audio=cfg.audio,
        features=cfg.features,
        quality=cfg.quality,
        min_confidence=cfg.alignment.min_confidence,
        outliers=cfg.outliers,
        splits=cfg.splits,
    )


def card_settings(cfg: KwsConfig) -> CardSettings:
    """The settings :func:`kws_assets.core.dataset.data_card.render_data_card` describes."""
    return CardSettings(
        keywords=list(cfg.keywords),
        sources=list(cfg.sources),
        audio=cfg.audio,
        quality=cfg.quality,
        ingest=cfg.ingest,
        outliers=cfg.outliers,
        splits=cfg.splits,
        tts=cfg.tts,
        held_out_engine=cfg.evaluation.held_out_engine,
    )
