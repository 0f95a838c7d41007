"""Settings of speaker perturbation (``kws_assets.core.dataset.perturb``): how far one rendered
voice is pushed towards other speakers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SpeakerPerturbationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Perturb rendered TTS clips into new speakers.")
    perturbations_per_clip: int = Field(
        1, ge=0, description="Perturbed copies drawn per rendered clip (0 = none)."
    )
    warp_factor: tuple[float, float] = Field(
        (0.9, 1.12),
        description="Formant (vocal-tract-length) warp range; <1 longer tract (lower formants), "
        ">1 shorter. Drawn log-uniformly.",
    )
    semitones: tuple[float, float] = Field(
        (-3.0, 3.0), description="Pitch shift range in semitones (formants kept). Drawn uniformly."
    )
    tempo: tuple[float, float] = Field(
        (0.9, 1.1),
        description="Tempo range (>1 faster, pitch kept). Drawn log-uniformly.",
    )

    @model_validator(mode="after")
    def _ordered_ranges(self) -> "SpeakerPerturbationSettings":
        for name in ("warp_factor", "semitones", "tempo"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} range ({low}, {high}) must be (low, high)")
        for name in ("warp_factor", "tempo"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"{name} must be positive")
        return self
