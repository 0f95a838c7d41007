"""The whole pipeline's configuration: one section per concern, each defined in its module.

``KwsConfig`` is what ``kws.yaml`` holds.  Sections are frozen and validated; a core function
takes the section(s) it uses.  Voices a non-English config leaves out are filled in where the
installed espeak-ng voices are known (:func:`kws_assets.config.load_config`), not here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator

from kws_assets.settings.audio import (
    AUTO_CLIP,
    AudioSettings,
    FeatureSettings,
    phrase_clip_seconds,
)
from kws_assets.settings.base import (
    SILENCE_LABEL,
    SPEECH_COMMANDS_TEN,
    UNKNOWN_LABEL,
    StrictSettings,
)
from kws_assets.settings.corpus import CorpusSource, DemoCorpusSource, IngestSettings
from kws_assets.settings.dataset import (
    AugmentSettings,
    DatasetGuardSettings,
    NegativeMaterialSettings,
    NoiseSettings,
    OutlierSettings,
    QualitySettings,
    SplitSettings,
)
from kws_assets.settings.deploy import AutomationSettings, ComputeSettings, StorageSettings
from kws_assets.settings.embedding import EmbeddingSettings
from kws_assets.settings.micro import MicroWakeWordSettings
from kws_assets.settings.model import (
    DEFAULT_FAMILIES,
    DistillSettings,
    EvalSettings,
    ModelFamily,
    ModelSettings,
    QuantGateSettings,
    QuantizeSettings,
    TrainSettings,
)
from kws_assets.settings.review import ReviewSettings
from kws_assets.settings.speech import AlignmentSettings, NegativeSettings, TtsSettings


def _demo_source_only() -> list[CorpusSource]:
    return [DemoCorpusSource()]


class KwsConfig(StrictSettings):
    keywords: list[str] = Field(default_factory=lambda: list(SPEECH_COMMANDS_TEN), min_length=1)
    language: str = "en"
    sources: list[CorpusSource] = Field(default_factory=_demo_source_only)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    noise: NoiseSettings = Field(default_factory=NoiseSettings)
    alignment: AlignmentSettings = Field(default_factory=AlignmentSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    splits: SplitSettings = Field(default_factory=SplitSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    families: list[ModelFamily] = Field(
        default_factory=lambda: list(DEFAULT_FAMILIES),
        min_length=1,
        description="The model families the graph trains, ships and evaluates (their assets "
        "exist only when listed; every family's feature table is built). Default: the head on "
        "the speech embedding (openWakeWord, the kws CLI) and the streaming network ESPHome "
        "runs (microWakeWord). Add mfcc for the DS-CNN on MFCC: kws_model, its int8 "
        "quantized_model, the student distilled from the head and device_model (TFLite Micro "
        "int8 + C array for a microcontroller); it adds the two DS-CNN trainings, about three "
        "minutes of make demo's five on 2 cores (issue 26), and on real speech both score "
        "below the head and the streaming network (README, Real speech).",
    )
    train: TrainSettings = Field(default_factory=TrainSettings)
    distill: DistillSettings = Field(default_factory=DistillSettings)
    quantize: QuantizeSettings = Field(default_factory=QuantizeSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    compute: ComputeSettings = Field(default_factory=ComputeSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    outliers: OutlierSettings = Field(default_factory=OutlierSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)
    negatives: NegativeSettings = Field(default_factory=NegativeSettings)
    augment: AugmentSettings = Field(default_factory=AugmentSettings)
    evaluation: EvalSettings = Field(default_factory=EvalSettings)
    quant_gate: QuantGateSettings = Field(default_factory=QuantGateSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    micro_wake_word: MicroWakeWordSettings = Field(default_factory=MicroWakeWordSettings)
    dataset_guard: DatasetGuardSettings = Field(default_factory=DatasetGuardSettings)
    negative_material: NegativeMaterialSettings = Field(default_factory=NegativeMaterialSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)

    @model_validator(mode="before")
    @classmethod
    def _clip_fits_the_phrases(cls, data: object) -> object:
        """``audio.clip_seconds`` left out or ``auto``: a window that fits the longest keyword
        phrase (:func:`~kws_assets.settings.audio.phrase_clip_seconds`), at most the speech
        embedding's context; single-word keywords keep 1 s.  A number is kept as written."""
        if not isinstance(data, dict):
            return data
        audio = data.get("audio", {})
        if not isinstance(audio, dict) or audio.get("clip_seconds", AUTO_CLIP) != AUTO_CLIP:
            return data
        keywords = data.get("keywords") or SPEECH_COMMANDS_TEN
        embedding = data.get("embedding", {})
        context = (
            embedding.context_seconds
            if isinstance(embedding, EmbeddingSettings)
            else EmbeddingSettings(**embedding).context_seconds
            if isinstance(embedding, dict)
            else EmbeddingSettings().context_seconds
        )
        seconds = phrase_clip_seconds([str(k).strip().lower() for k in keywords], context)
        return {**data, "audio": {**audio, "clip_seconds": seconds}}

    @field_validator("keywords")
    @classmethod
    def _normalise_keywords(cls, keywords: list[str]) -> list[str]:
        cleaned = [k.strip().lower() for k in keywords]
        if any(not k for k in cleaned):
            raise ValueError("keywords must be non-empty strings")
        if any(k.startswith("_") for k in cleaned):
            raise ValueError("keywords may not start with '_' (reserved for _unknown_/_silence_)")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"duplicate keywords: {cleaned}")
        return cleaned

    @model_validator(mode="after")
    def _families_hold_the_default(self) -> KwsConfig:
        if len(set(self.families)) != len(self.families):
            raise ValueError(f"families lists a family twice: {self.families}")
        if "speech_embedding" not in self.families:
            raise ValueError(
                "families must list speech_embedding: its head is the teacher the review queue "
                "ranks clips with and the other families learn from"
            )
        if self.model.family not in self.families:
            raise ValueError(
                f"model.family {self.model.family!r} (the default family) must be one of "
                f"families {self.families}: add it, or pick one of those"
            )
        return self

    @model_validator(mode="after")
    def _unique_source_names(self) -> KwsConfig:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"corpus source names must be unique: {names}")
        return self

    @property
    def labels(self) -> list[str]:
        """Class labels in model output order: silence, unknown, then the keywords."""
        return [SILENCE_LABEL, UNKNOWN_LABEL, *self.keywords]

    def storage_path(self, *parts: str) -> Path:
        return self.storage.local_path(*parts)

    def section_hash(self, *sections: str) -> str:
        """A short stable hash of some config sections: used as an asset code/data version."""
        payload = {s: _dump(getattr(self, s)) for s in sections}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return digest[:12]


def _dump(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value
