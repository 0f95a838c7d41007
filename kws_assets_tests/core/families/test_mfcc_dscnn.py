"""The mfcc family: its front end as the table runs it, the one network rebuild, its artifact
files and the folders it recognises."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from kws_assets.core.families.base import EmptySplitError, FamilySettings
from kws_assets.core.families.mfcc_dscnn import (
    MFCC_DSCNN,
    artifact_files,
    normalised_data,
    table_front_end,
    warm_state,
)
from kws_assets.core.features.mfcc import FeatureSpec, MfccExtractor, feature_config_hash
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.ship.export import C_HEADER_FILE, FEATURES_FILE, FRONT_END_FILE
from kws_assets.settings import EpochBudget, ModelSettings, TrainSettings

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _settings() -> FamilySettings:
    return FamilySettings(labels=LABELS, model=ModelSettings(n_filters=8, n_blocks=1))


def test_the_table_front_end_is_the_extractor_keyed_by_the_feature_config():
    front_end = MFCC_DSCNN.front_end(_settings())
    spec = front_end.spec
    assert isinstance(spec, FeatureSpec)
    assert front_end.column == MFCC_DSCNN.column and front_end.shape == spec.shape
    clips = np.random.default_rng(0).standard_normal((3, spec.clip_samples)).astype(np.float32)
    np.testing.assert_array_equal(front_end.features(clips), MfccExtractor(spec)(clips))
    stats = spec.with_stats([0.0] * spec.n_mfcc, [1.0] * spec.n_mfcc)
    assert table_front_end(stats).cache_key == front_end.cache_key == feature_config_hash(spec)


def test_network_rebuilds_the_trained_dscnn():
    settings = _settings()
    torch.manual_seed(0)
    trained = DSCNN(len(LABELS), settings.model).eval()
    spec = FeatureSpec.from_settings(settings.features, settings.audio).with_stats(
        [0.0] * 10, [1.0] * 10
    )
    checkpoint = ModelCheckpoint(
        family=MFCC_DSCNN.name,
        labels=LABELS,
        state_dict=trained.state_dict(),
        network=settings.model.model_dump(mode="json"),
        front_end=spec.model_dump(mode="json"),
    )
    rebuilt = MFCC_DSCNN.network(checkpoint)
    assert not rebuilt.training
    x = torch.randn(2, *spec.shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), trained(x))
    assert MFCC_DSCNN.spec_shape(checkpoint) == spec.shape


def test_a_student_warm_starts_only_from_the_same_network_on_the_same_features():
    settings = _settings()
    spec = FeatureSpec.from_settings(settings.features, settings.audio).with_stats(
        [0.0] * 10, [1.0] * 10
    )
    trained = DSCNN(len(LABELS), settings.model)
    checkpoint = ModelCheckpoint(
        family=MFCC_DSCNN.name,
        labels=LABELS,
        state_dict=trained.state_dict(),
        network=settings.model.model_dump(mode="json"),
        front_end=spec.model_dump(mode="json"),
    )
    state = warm_state(checkpoint, settings, spec)
    assert state is not None and state.keys() == trained.state_dict().keys()
    other_stats = spec.with_stats([0.5] * 10, [1.0] * 10)
    wider = FamilySettings(labels=LABELS, model=ModelSettings(n_filters=16, n_blocks=1))
    other_labels = FamilySettings(labels=[*LABELS, "up"], model=settings.model)
    assert warm_state(checkpoint, settings, other_stats) is None
    assert warm_state(checkpoint, wider, spec) is None
    assert warm_state(checkpoint, other_labels, spec) is None


def test_artifact_files_need_normalisation_stats():
    spec = FeatureSpec.from_settings(_settings().features, _settings().audio)
    with pytest.raises(ValueError, match="normalisation stats"):
        artifact_files(spec, LABELS, b"onnx")
    files = artifact_files(spec.with_stats([0.0] * 10, [1.0] * 10), LABELS, b"onnx")
    assert set(files) == {FEATURES_FILE, C_HEADER_FILE, "model_data.c"}
    assert json.loads(str(files[FEATURES_FILE]))["mean"] == [0.0] * 10


def test_an_empty_split_is_an_empty_split_error():
    table = pl.DataFrame(
        {
            "clip_id": ["a"],
            "label": ["yes"],
            "split": ["train"],
            "mfcc": pl.Series(
                [np.zeros((49, 10), np.float32)], dtype=pl.Array(pl.Float32, (49, 10))
            ),
        }
    )
    with pytest.raises(EmptySplitError, match="kws_model needs train and val rows"):
        normalised_data(_settings(), table.lazy(), "kws_model")


def _table(labels: list[str], seed: int = 0) -> pl.LazyFrame:
    """A learnable MFCC table: each class shifted by its index."""
    rng = np.random.default_rng(seed)
    splits = ["train"] * 32 + ["val"] * 8 + ["test"] * 8
    y = np.tile(np.arange(len(labels)), len(splits) // len(labels))
    x = rng.normal(0, 1, (len(y), 49, 10)).astype(np.float32) + y[:, None, None]
    return pl.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(len(y))],
            "label": [labels[i] for i in y],
            "split": splits,
            "mfcc": x,
        },
        schema_overrides={"mfcc": pl.Array(pl.Float32, (49, 10))},
    ).lazy()


def test_training_starts_from_the_previous_checkpoint_on_the_warm_budget():
    """kws_model's re-run after 'no' became 'up': the previous weights, 'up' a fresh row, the
    warm budget (one epoch here) instead of the full one; notes say so for the metadata."""
    train = TrainSettings(max_epochs=3, min_epochs=3, batch_size=16, threads=1)
    train = train.model_copy(update={"warm_epochs": EpochBudget(max_epochs=1, patience=1)})
    first = MFCC_DSCNN.train(
        FamilySettings(labels=LABELS, model=_settings().model, train=train),
        _table(LABELS),
        lambda _: None,
    )
    assert first.notes["warm_start"] == {"warm": False, "reason": "no previous checkpoint"}
    assert first.result.epochs_run == 3
    after = [*LABELS[:3], "up"]
    said: list[str] = []
    second = MFCC_DSCNN.train(
        FamilySettings(labels=after, model=_settings().model, train=train),
        _table(after),
        said.append,
        previous=first.checkpoint,
    )
    warm = second.notes["warm_start"]
    assert warm["warm"] and warm["labels_added"] == ["up"] and warm["labels_removed"] == ["no"]
    assert said[0].startswith("warm start: from the previous checkpoint: 3 labels kept")
    assert second.result.epochs_run == 1 and second.checkpoint.labels == after


def test_it_owns_folders_without_a_front_end_json(tmp_path):
    assert MFCC_DSCNN.owns_folder(tmp_path)
    (tmp_path / FRONT_END_FILE).write_text(json.dumps({"family": "other"}))
    assert not MFCC_DSCNN.owns_folder(tmp_path)
