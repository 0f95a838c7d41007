"""Settings: the pydantic models of ``kws.yaml`` and its YAML 1.2 loader.

A leaf package: nothing here imports ``kws_assets.core`` (a test keeps it so).  One module per
concern: ``audio`` (sample rate, MFCC), ``speech`` (TTS, negatives, alignment), ``corpus`` (sources,
ingest limits), ``dataset`` (noise, quality, outliers, splits, augmentation), ``model`` (network,
training, export, evaluation, gates), ``deploy`` (storage, automation); ``pipeline`` holds the root
``KwsConfig`` and ``loader`` the file loader.
"""

from kws_assets.settings.audio import AudioSettings, FeatureSettings
from kws_assets.settings.base import (
    SILENCE_LABEL,
    SPEECH_COMMANDS_TEN,
    UNKNOWN_LABEL,
    StrictSettings,
    primary_language,
)
from kws_assets.settings.corpus import (
    CommonVoiceSource,
    CorpusSource,
    DemoCorpusSource,
    IngestSettings,
    LibriSpeechSource,
    ManifestSource,
    SpeechCommandsSource,
)
from kws_assets.settings.dataset import (
    NOISE_KINDS,
    AugmentSettings,
    DatasetGuardSettings,
    NegativeMaterialSettings,
    NoiseKind,
    NoiseSettings,
    NoiseSource,
    OutlierSettings,
    QualitySettings,
    SplitName,
    SplitSettings,
)
from kws_assets.settings.deploy import AutomationSettings, ComputeSettings, StorageSettings
from kws_assets.settings.embedding import (
    EmbeddingAugmentSettings,
    EmbeddingSettings,
    HeadNegativeSettings,
)
from kws_assets.settings.loader import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_NAME,
    config_path,
    load_settings,
    parse_yaml,
)
from kws_assets.settings.micro import MicroWakeWordSettings
from kws_assets.settings.model import (
    DEFAULT_HELD_OUT_VOICES,
    MODEL_FAMILIES,
    DistillSettings,
    EpochBudget,
    EvalSettings,
    ModelFamily,
    ModelSettings,
    QuantGateSettings,
    QuantizeSettings,
    RealSourceSettings,
    SpecAugmentSettings,
    TrainSettings,
)
from kws_assets.settings.pipeline import KwsConfig
from kws_assets.settings.review import ReviewSettings
from kws_assets.settings.speech import (
    DEFAULT_CARRIER_PHRASES,
    DEFAULT_ENGLISH_ACCENTS,
    DEFAULT_VOICE_VARIANTS,
    AlignerKind,
    AlignmentSettings,
    DtwAlignmentSettings,
    EngineVoiceSettings,
    NegativeSettings,
    SpeakerPerturbationSettings,
    TtsSettings,
)

# The package is the one import path for settings classes (`from kws_assets.settings import X`).
__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CARRIER_PHRASES",
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_ENGLISH_ACCENTS",
    "DEFAULT_HELD_OUT_VOICES",
    "DEFAULT_VOICE_VARIANTS",
    "MODEL_FAMILIES",
    "NOISE_KINDS",
    "SILENCE_LABEL",
    "SPEECH_COMMANDS_TEN",
    "UNKNOWN_LABEL",
    "AlignerKind",
    "AlignmentSettings",
    "AudioSettings",
    "AugmentSettings",
    "AutomationSettings",
    "CommonVoiceSource",
    "ComputeSettings",
    "CorpusSource",
    "DatasetGuardSettings",
    "DemoCorpusSource",
    "DistillSettings",
    "DtwAlignmentSettings",
    "EmbeddingAugmentSettings",
    "EmbeddingSettings",
    "EngineVoiceSettings",
    "EpochBudget",
    "EvalSettings",
    "FeatureSettings",
    "HeadNegativeSettings",
    "IngestSettings",
    "KwsConfig",
    "LibriSpeechSource",
    "ManifestSource",
    "MicroWakeWordSettings",
    "ModelFamily",
    "ModelSettings",
    "NegativeMaterialSettings",
    "NegativeSettings",
    "NoiseKind",
    "NoiseSettings",
    "NoiseSource",
    "OutlierSettings",
    "QualitySettings",
    "QuantGateSettings",
    "QuantizeSettings",
    "RealSourceSettings",
    "ReviewSettings",
    "SpeakerPerturbationSettings",
    "SpecAugmentSettings",
    "SpeechCommandsSource",
    "SplitName",
    "SplitSettings",
    "StorageSettings",
    "StrictSettings",
    "TrainSettings",
    "TtsSettings",
    "config_path",
    "load_settings",
    "parse_yaml",
    "primary_language",
]
