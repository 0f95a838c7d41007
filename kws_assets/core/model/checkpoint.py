"""A trained model as ``kws_model`` hands it over: weights plus everything needed to rebuild,
export and describe it, typed rather than a loose dict.

``family`` names the model family (a name of ``kws_assets.core.families``, which rebuilds
the network: ``get_family(checkpoint.family).network(checkpoint)``); ``network`` the settings
it is built from and ``front_end`` the feature spec its inputs were computed with
(normalisation stats included), so export and inference use the same features as training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kws_assets.core.features.mfcc import FAMILY as MFCC_FAMILY

CHECKPOINT_FORMAT = "kws-checkpoint-v1"


@dataclass(frozen=True)
class ModelCheckpoint:
    family: str
    labels: list[str]
    state_dict: dict[str, Any]
    network: dict[str, Any]
    front_end: dict[str, Any]
    accuracy: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    warm_start: dict[str, Any] = field(default_factory=dict)
    """How training started (:meth:`WarmStart.as_dict` of ``core/model/warm_start.py`` plus the
    previous materialization it came from), for the model card; empty: not recorded."""

    def to_dict(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCheckpoint:
        """A checkpoint from :meth:`to_dict`'s output; also reads the untyped dicts written before
        checkpoints were typed (DS-CNN only: ``model_settings`` / ``feature_spec`` keys)."""
        if data.get("format") == CHECKPOINT_FORMAT:
            fields = {k: v for k, v in data.items() if k != "format"}
            return cls(**fields)
        if {"state_dict", "labels", "model_settings", "feature_spec"} <= set(data):
            return cls(
                family=MFCC_FAMILY,
                labels=list(data["labels"]),
                state_dict=data["state_dict"],
                network=dict(data["model_settings"]),
                front_end=dict(data["feature_spec"]),
                accuracy=dict(data.get("accuracy") or {}),
                history=list(data.get("history") or []),
                best_epoch=int(data.get("best_epoch") or 0),
            )
        raise ValueError(f"not a model checkpoint (keys: {sorted(data)[:8]})")
