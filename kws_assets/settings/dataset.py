"""Dataset settings: noise and silence, the quality gate, outliers, splits, augmentation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kws_assets.settings.base import SILENCE_LABEL, StrictSettings

NoiseKind = Literal["white", "pink", "brown"]
SplitName = Literal["train", "val", "test"]
NoiseSource = Literal["colored", "babble", "folder"]
NOISE_KINDS: tuple[NoiseKind, ...] = ("white", "pink", "brown")


def _every_noise_kind() -> list[NoiseKind]:
    return list(NOISE_KINDS)


def _train_split_only() -> list[SplitName]:
    return ["train"]


def _even_noise_sources() -> dict[NoiseSource, float]:
    return {"colored": 1.0, "babble": 1.0, "folder": 1.0}


class NoiseSettings(StrictSettings):
    """Background noise mixed into synthetic clips and used for the _silence_ class."""

    kinds: list[NoiseKind] = Field(default_factory=_every_noise_kind, min_length=1)
    snr_db_min: float = 5.0
    snr_db_max: float = 25.0
    noisy_copies_per_clip: int = Field(
        0,
        ge=0,
        description="Noise-mixed copies per clean clip "
        "(augmented_clips adds noise and more to the train split).",
    )
    silence_clips: int = Field(120, ge=0, description="_silence_ examples generated from noise.")
    silence_level_dbfs_min: float = -70.0
    silence_level_dbfs_max: float = -25.0

    @model_validator(mode="after")
    def _check(self) -> NoiseSettings:
        if self.snr_db_min > self.snr_db_max:
            raise ValueError("snr_db_min must not exceed snr_db_max")
        if self.silence_level_dbfs_min > self.silence_level_dbfs_max:
            raise ValueError("silence_level_dbfs_min must not exceed silence_level_dbfs_max")
        return self


class QualitySettings(StrictSettings):
    """Thresholds of the clip quality gate; a clip failing any of them is quarantined."""

    min_rms_dbfs: float = -55.0
    max_peak_dbfs: float = 0.0
    max_clipping_ratio: float = 0.01
    max_abs_dc_offset: float = 0.05
    min_snr_db: float = 3.0
    min_speech_ratio: float = 0.05
    duration_tolerance_s: float = 0.001


class OutlierSettings(StrictSettings):
    """Per-keyword outlier flagging on an MFCC-statistics embedding (MSWC's embedding-distance
    idea)."""

    enabled: bool = True
    quarantine: bool = Field(True, description="Quarantine flagged clips (reason 'outlier').")
    threshold: float = Field(
        6.0,
        gt=0,
        description="Robust z-score of a clip's distance to its keyword's median above "
        "which it is an outlier (3.5 is the usual 'look at it' level).",
    )
    min_clips: int = Field(10, ge=3, description="Keywords with fewer clips are not scored.")


class SplitSettings(StrictSettings):
    """Speaker-disjoint hash split, as TensorFlow's speech_commands input_data.py does it."""

    val_percent: float = Field(10.0, ge=0, le=100)
    test_percent: float = Field(10.0, ge=0, le=100)
    salt: str = "kws-split-v1"

    @model_validator(mode="after")
    def _check(self) -> SplitSettings:
        if self.val_percent + self.test_percent >= 100:
            raise ValueError("val_percent + test_percent must be below 100")
        return self


class AugmentSettings(StrictSettings):
    """Waveform augmentation of validated clips (torchaudio): each augmented copy keeps its source
    clip id and the parameters drawn.  Probabilities are per copy; ranges are min/max."""

    copies_per_clip: int = Field(1, ge=0, description="Augmented copies of each clip (0 = off).")
    splits: list[SplitName] = Field(default_factory=_train_split_only)
    skip_labels: list[str] = Field(default_factory=lambda: [SILENCE_LABEL])
    noise_probability: float = Field(0.8, ge=0, le=1)
    snr_db_range: tuple[float, float] = (5.0, 25.0)
    noise_source_weights: dict[NoiseSource, float] = Field(
        default_factory=_even_noise_sources,
        description="Relative odds of each noise source (folder only counts if noise_folder set).",
    )
    colored_kinds: list[NoiseKind] = Field(default_factory=_every_noise_kind, min_length=1)
    babble_talkers: tuple[int, int] = Field(
        (3, 7), description="Clips summed into babble, min/max."
    )
    noise_folder: str = Field(
        "",
        description="Folder of noise recordings (wav/flac/ogg), searched "
        "recursively; relative = to the config file.",
    )
    rir_probability: float = Field(0.4, ge=0, le=1)
    rt60_s_range: tuple[float, float] = (0.15, 0.8)
    shift_probability: float = Field(0.6, ge=0, le=1)
    max_shift_ms: float = Field(150.0, ge=0)
    gain_probability: float = Field(0.5, ge=0, le=1)
    gain_db_range: tuple[float, float] = (-15.0, 5.0)
    speed_probability: float = Field(0.3, ge=0, le=1)
    speed_range: tuple[float, float] = (0.88, 1.12)
    pitch_probability: float = Field(0.2, ge=0, le=1)
    pitch_semitones_range: tuple[float, float] = (-2.0, 2.0)
    telephone_probability: float = Field(0.15, ge=0, le=1, description="300-3400 Hz band-pass.")
    resample_8k_probability: float = Field(0.15, ge=0, le=1, description="Round trip via 8 kHz.")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> AugmentSettings:
        for name in (
            "snr_db_range",
            "babble_talkers",
            "rt60_s_range",
            "gain_db_range",
            "speed_range",
            "pitch_semitones_range",
        ):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"augment.{name}: min {low} exceeds max {high}")
        if self.speed_range[0] <= 0 or self.rt60_s_range[0] <= 0 or self.babble_talkers[0] < 1:
            raise ValueError("augment: speeds and rt60 must be positive, babble needs >= 1 talker")
        if any(w < 0 for w in self.noise_source_weights.values()):
            raise ValueError("augment.noise_source_weights must not be negative")
        return self


class DatasetGuardSettings(StrictSettings):
    """How much ``_unknown_`` and how many test clips a validated set needs before training."""

    min_unknown_share: float = Field(
        0.10,
        ge=0,
        lt=1,
        description="Smallest share of _unknown_ clips in the train split; a "
        "model trained with fewer calls every sound a keyword.",
    )
    min_test_clips_per_label: int = Field(
        5,
        ge=0,
        description="Fewest test-split clips of any label; below this the test "
        "accuracy of that label is noise.",
    )


def _other_languages() -> list[str]:
    return ["de", "fr", "es", "nl", "it"]


class NegativeMaterialSettings(StrictSettings):
    """Hours of keyword-free audio heard the way a detector hears it: long recordings cut into
    windows at every hop, not centred words (``negative_material``).  The train share feeds the
    families' training as ``_unknown_`` windows (and their hard-negative mining); the held-out
    share measures false accepts per hour before and after each mining round."""

    hours: float = Field(
        1.0,
        ge=0,
        description="Hours of train material (0: none, the families train on clips only). "
        "About 80 s of rendering and 20 s of embedding per hour on 2 cores.",
    )
    heldout_hours: float = Field(
        0.25, ge=0, description="Hours of held-out material (never trained on) for FA/h."
    )
    segment_seconds: float = Field(
        60.0, ge=5, le=600, description="Length of one stored recording of the material."
    )
    music_share: float = Field(0.1, ge=0, le=1, description="Share of music-like segments.")
    noise_share: float = Field(0.05, ge=0, le=1, description="Share of noise and babble segments.")
    other_language_share: float = Field(
        0.15, ge=0, le=1, description="Share of speech by voices of other languages."
    )
    other_languages: list[str] = Field(
        default_factory=_other_languages,
        description="espeak-ng languages whose voices speak their own everyday words "
        "(the config's language is skipped).",
    )
    fragments_per_minute: float = Field(
        3.0,
        ge=0,
        description="Cut-off keyword fragments (the first or last part of a train keyword "
        "clip) per minute of speech: the part-words a sliding window meets.",
    )
    noise_floor_dbfs: float = Field(-60.0, le=0, description="Pink noise under every segment.")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> NegativeMaterialSettings:
        if self.music_share + self.noise_share + self.other_language_share > 1.0:
            raise ValueError(
                "negative_material: music_share + noise_share + other_language_share exceed 1"
            )
        return self
