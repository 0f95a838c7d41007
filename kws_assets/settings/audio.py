"""Audio and feature settings: sample rate, clip length, MFCC front end."""

from __future__ import annotations

from pydantic import Field, model_validator

from kws_assets.settings.base import StrictSettings


class AudioSettings(StrictSettings):
    sample_rate: int = Field(16000, gt=0, description="Sample rate of every clip, Hz.")
    clip_seconds: float = Field(1.0, gt=0, description="Length of every keyword clip, seconds.")
    fade_ms: float = Field(10.0, ge=0, description="Fade in/out applied when cutting a clip.")

    @property
    def clip_samples(self) -> int:
        return round(self.sample_rate * self.clip_seconds)


class FeatureSettings(StrictSettings):
    """MFCC settings; defaults follow the MLPerf Tiny / ARM DS-CNN convention (49x10)."""

    window_ms: float = Field(40.0, gt=0)
    hop_ms: float = Field(20.0, gt=0)
    n_mels: int = Field(40, gt=0)
    n_mfcc: int = Field(10, gt=0)
    f_min: float = Field(20.0, ge=0)
    f_max: float = Field(4000.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> FeatureSettings:
        if self.n_mfcc > self.n_mels:
            raise ValueError("n_mfcc must not exceed n_mels")
        if self.f_min >= self.f_max:
            raise ValueError("f_min must be below f_max")
        return self
