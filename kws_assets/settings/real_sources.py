"""Settings of one real-speech evaluation source (``evaluation.real_sources: [...]``).

A real source is a manifest of recordings by people, kept out of training: the evaluation asset
scores the shipped artifact on it, because synthetic test splits say little about real voices.
Loaded by ``kws_assets.core.corpus.real_sources.load_real_source``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kws_assets.settings.base import StrictSettings

RealSourceKind = Literal["clips", "utterances"]


class RealSourceSettings(StrictSettings):
    """One manifest of real recordings used only to evaluate."""

    name: str = Field("real", min_length=1,
                      description="Name of the source in reports (and the default speaker id "
                                  "when the manifest has no speaker column).")
    manifest: str = Field("", description="CSV, TSV or JSONL manifest; relative paths resolve "
                                          "against the config file, paths inside it against the "
                                          "manifest's folder (absolute paths are kept).")
    kind: RealSourceKind = Field(
        "clips", description="clips: columns path,label[,speaker], one word per file; "
                             "utterances: columns path,transcript[,speaker], aligned and cut "
                             "like corpus utterances.")
    language: str = Field("en", min_length=1, description="Language spoken (picks the aligner "
                                                          "for utterances).")
    license: str = Field("unknown", description="License of the recordings, copied into reports.")
    max_clip_seconds: float = Field(
        5.0, gt=0, description="A labelled clip longer than this is rejected (too_long): a clip "
                               "file should hold one word, not a sentence.")
    trim_db: float = Field(
        30.0, gt=0, description="Labelled clips are trimmed to the frames within this many dB "
                                "of their loudest 10 ms frame, then centred in the clip (40 dB "
                                "keeps the breath after ktuberling's 'ball': 1.07 s instead of "
                                "0.36 s of speech).")
    min_peak_dbfs: float = Field(
        -60.0, description="A recording whose peak is below this is rejected as silent.")
