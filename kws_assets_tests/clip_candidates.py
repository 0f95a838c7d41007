"""Clip candidates backed by WAVs in a clip store, and the curation settings tests judge them by:
a fixture library shared by the curation and review tests (so no test module imports another).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kws_assets.config import curation_settings
from kws_assets.core.audio.io import apply_fades
from kws_assets.core.dataset import curation
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.settings import KwsConfig

SR = 16000


def burst_clip(seed: int, level: float = 0.3, noise: float = 0.003) -> np.ndarray:
    """A speech-like 1-s clip: harmonic bursts (random f0) over a quiet noise floor."""
    rng = np.random.default_rng(seed)
    x = noise * rng.standard_normal(SR)
    t = np.arange(int(0.2 * SR)) / SR
    f0 = rng.uniform(100, 220)
    burst = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 10))
    burst = apply_fades(burst / np.max(np.abs(burst)), SR, 10.0)
    for start in (0.3, 0.55):
        i = int(start * SR)
        x[i : i + burst.size] += level * burst
    return x.astype(np.float32)


class Candidates:
    """Builds candidate clip rows backed by WAVs in a clip store."""

    def __init__(self, tmp_path):
        self.store = ClipStore.at(tmp_path / "clips")
        self.rows: list[dict] = []

    def add(
        self,
        clip_id: str,
        samples: np.ndarray,
        label: str = "yes",
        speaker: str = "src:a",
        source: str = "src",
        **extra,
    ) -> str:
        uri = self.store.put(self.store.key_for(source, label, clip_id), samples, SR)
        self.rows.append(
            {
                "clip_id": clip_id,
                "uri": uri,
                "label": label,
                "source": source,
                "speaker": speaker,
                "language": "en",
                "origin_id": f"{source}:{clip_id}",
                "start_s": 0.0,
                "sample_rate": SR,
                "num_samples": len(samples),
                **extra,
            }
        )
        return clip_id

    def table(self) -> pl.DataFrame:
        return curation.clip_table(self.rows)


def config(**overrides) -> curation.CurationSettings:
    """What curation judges by, from a config with these sections overridden."""
    return curation_settings(
        KwsConfig.model_validate(
            {"keywords": ["yes", "no"], "outliers": {"enabled": False}, **overrides}
        )
    )
