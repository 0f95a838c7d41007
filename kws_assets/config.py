"""One configuration model for the whole pipeline, loaded from a YAML file.

The defaults of these models *are* the embedded demo configuration (``kws.yaml`` at the project
root spells them out).  ``load_config()`` reads the file named by ``$KWS_CONFIG``, else ``kws.yaml``
in the current directory, else falls back to the defaults.  Every number an asset needs lives here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

UNKNOWN_LABEL = "_unknown_"
SILENCE_LABEL = "_silence_"

SPEECH_COMMANDS_TEN = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudioSettings(_Strict):
    sample_rate: int = Field(16000, gt=0, description="Sample rate of every clip, Hz.")
    clip_seconds: float = Field(1.0, gt=0, description="Length of every keyword clip, seconds.")
    fade_ms: float = Field(10.0, ge=0, description="Fade in/out applied when cutting a clip.")

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))


class FeatureSettings(_Strict):
    """MFCC settings; defaults follow the MLPerf Tiny / ARM DS-CNN convention (49x10)."""

    window_ms: float = Field(40.0, gt=0)
    hop_ms: float = Field(20.0, gt=0)
    n_mels: int = Field(40, gt=0)
    n_mfcc: int = Field(10, gt=0)
    f_min: float = Field(20.0, ge=0)
    f_max: float = Field(4000.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "FeatureSettings":
        if self.n_mfcc > self.n_mels:
            raise ValueError("n_mfcc must not exceed n_mels")
        if self.f_min >= self.f_max:
            raise ValueError("f_min must be below f_max")
        return self


class TtsSettings(_Strict):
    """The espeak-ng grid used for synthetic keyword clips (voice x rate x pitch)."""

    voices: list[str] = Field(
        default_factory=lambda: [
            "en-us+m1", "en-us+m3", "en-us+f2", "en-us+f4",
            "en+m2", "en+f1", "en+m5", "en+f3",
            "en-gb-scotland+m4", "en-gb-x-rp+f5", "en-029+m6", "en-us-nyc+m7",
            "en-gb-x-gbclan+f2", "en-gb-x-gbcwmd+m3",
        ],
        min_length=1,
        description="espeak-ng voice names, optionally with a +variant. Each is one speaker.",
    )
    rates: list[int] = Field(default_factory=lambda: [140, 175], min_length=1,
                             description="Words per minute.")
    pitches: list[int] = Field(default_factory=lambda: [35, 60], min_length=1,
                               description="espeak-ng pitch, 0-99.")
    word_gap: int = Field(0, ge=0, description="Extra pause between words, in units of 10 ms.")


class NoiseSettings(_Strict):
    """Background noise mixed into synthetic clips and used for the _silence_ class."""

    kinds: list[Literal["white", "pink", "brown"]] = Field(
        default_factory=lambda: ["white", "pink", "brown"], min_length=1)
    snr_db_min: float = 5.0
    snr_db_max: float = 25.0
    noisy_copies_per_clip: int = Field(1, ge=0, description="Noise-mixed copies per clean clip.")
    silence_clips: int = Field(120, ge=0, description="_silence_ examples generated from noise.")
    silence_level_dbfs_min: float = -70.0
    silence_level_dbfs_max: float = -25.0

    @model_validator(mode="after")
    def _check(self) -> "NoiseSettings":
        if self.snr_db_min > self.snr_db_max:
            raise ValueError("snr_db_min must not exceed snr_db_max")
        if self.silence_level_dbfs_min > self.silence_level_dbfs_max:
            raise ValueError("silence_level_dbfs_min must not exceed silence_level_dbfs_max")
        return self


class DemoCorpusSource(_Strict):
    """A corpus generated once with TTS: carrier sentences containing the keywords."""

    kind: Literal["demo_tts"] = "demo_tts"
    name: str = "demo"
    voices: list[str] = Field(
        default_factory=lambda: [
            "en-us+m2", "en-us+f1", "en+m3", "en+f4", "en-gb-x-rp+m1", "en-us-nyc+f3",
        ],
        min_length=1,
    )
    sentences_per_keyword: int = Field(3, ge=1, description="Carrier sentences per keyword and voice.")
    rate: int = 160
    seed: int = 7


class ManifestSource(_Strict):
    """A user corpus: a folder with a CSV or JSONL manifest (path, transcript, speaker columns)."""

    kind: Literal["manifest"] = "manifest"
    name: str
    root: str = Field(description="Folder holding the manifest and the audio files.")
    manifest: str = Field("manifest.csv", description="Manifest file name inside root (.csv or .jsonl).")
    language: str = "en"
    license: str = "unknown"


CorpusSource = Annotated[DemoCorpusSource | ManifestSource, Field(discriminator="kind")]


class AlignmentSettings(_Strict):
    pad_seconds: float = Field(0.5, ge=0, description="Silence padded around utterances before aligning.")
    unknown_per_utterance: int = Field(1, ge=0, description="Non-keyword words cut as _unknown_ per utterance.")
    min_word_seconds: float = Field(0.08, gt=0, description="Shorter aligned words are treated as misses.")


class QualitySettings(_Strict):
    """Thresholds of the clip quality gate; a clip failing any of them is quarantined."""

    min_rms_dbfs: float = -55.0
    max_peak_dbfs: float = 0.0
    max_clipping_ratio: float = 0.01
    max_abs_dc_offset: float = 0.05
    min_snr_db: float = 3.0
    min_speech_ratio: float = 0.05
    duration_tolerance_s: float = 0.001


class SplitSettings(_Strict):
    """Speaker-disjoint hash split, as TensorFlow's speech_commands input_data.py does it."""

    val_percent: float = Field(10.0, ge=0, le=100)
    test_percent: float = Field(10.0, ge=0, le=100)
    salt: str = "kws-split-v1"

    @model_validator(mode="after")
    def _check(self) -> "SplitSettings":
        if self.val_percent + self.test_percent >= 100:
            raise ValueError("val_percent + test_percent must be below 100")
        return self


class ModelSettings(_Strict):
    """DS-CNN, MLPerf Tiny reference shape (DS-CNN-S)."""

    n_filters: int = Field(64, gt=0)
    n_blocks: int = Field(4, ge=1)
    first_kernel: tuple[int, int] = (10, 4)
    first_stride: tuple[int, int] = (2, 2)
    dropout: float = Field(0.2, ge=0, lt=1)
    final_dropout: float = Field(0.4, ge=0, lt=1)


class TrainSettings(_Strict):
    max_epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(8, ge=1, description="Epochs without val improvement before stopping.")
    min_epochs: int = Field(12, ge=1, description="Never stop early before this epoch: validation "
                            "accuracy sits at chance while BatchNorm statistics warm up.")
    seed: int = 0
    threads: int = Field(2, ge=1)


class QuantizeSettings(_Strict):
    calibration_rows: int = Field(256, ge=1, description="Validation rows used to calibrate int8.")
    per_channel: bool = True


class StorageSettings(_Strict):
    root: str = Field(".kws_data", description="Clip store, tables and artifacts live under here.")


class KwsConfig(_Strict):
    keywords: list[str] = Field(default_factory=lambda: list(SPEECH_COMMANDS_TEN), min_length=1)
    language: str = "en"
    sources: list[CorpusSource] = Field(default_factory=lambda: [DemoCorpusSource()])
    audio: AudioSettings = Field(default_factory=AudioSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    noise: NoiseSettings = Field(default_factory=NoiseSettings)
    alignment: AlignmentSettings = Field(default_factory=AlignmentSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    splits: SplitSettings = Field(default_factory=SplitSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    quantize: QuantizeSettings = Field(default_factory=QuantizeSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)

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
    def _unique_source_names(self) -> "KwsConfig":
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"corpus source names must be unique: {names}")
        return self

    @property
    def labels(self) -> list[str]:
        """Class labels in model output order: silence, unknown, then the keywords."""
        return [SILENCE_LABEL, UNKNOWN_LABEL, *self.keywords]

    def storage_path(self, *parts: str) -> Path:
        return Path(self.storage.root).expanduser().resolve().joinpath(*parts)

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


class _Yaml12BoolLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 reads ``yes``, ``no``, ``on`` and ``off`` as booleans — four of the Speech Commands
    keywords — so an unquoted keyword list would silently turn into True/False.
    """


_Yaml12BoolLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12BoolLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def parse_yaml(text: str) -> object:
    return yaml.load(text, Loader=_Yaml12BoolLoader)  # noqa: S506 - a SafeLoader subclass


DEFAULT_CONFIG_NAME = "kws.yaml"
CONFIG_ENV_VAR = "KWS_CONFIG"


def config_path() -> Path | None:
    """The config file in force: ``$KWS_CONFIG``, else ``./kws.yaml`` if present, else None."""
    env = os.environ.get(CONFIG_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV_VAR}={env} does not name a file")
        return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def load_config(path: str | os.PathLike[str] | None = None) -> KwsConfig:
    """Load and validate a config file; relative storage roots resolve against the file's folder."""
    if path is None:
        path = config_path()
    if path is None:
        return KwsConfig()
    path = Path(path)
    raw = parse_yaml(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    base = path.resolve().parent
    storage = raw.setdefault("storage", {}) or {}
    root = storage.get("root", StorageSettings().root)
    if "://" not in root and not Path(root).expanduser().is_absolute():
        storage["root"] = str(base / root)
    raw["storage"] = storage
    for src in raw.get("sources", []) or []:
        if isinstance(src, dict) and "root" in src and "://" not in src["root"]:
            if not Path(src["root"]).expanduser().is_absolute():
                src["root"] = str(base / src["root"])
    return KwsConfig.model_validate(raw)
