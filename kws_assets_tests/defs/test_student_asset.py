"""The training assets invoked directly on small synthetic tables (handed over as scans, as the IO
manager does): kws_model and embedding_model train with the train split in memory or streamed;
student_model distils the teacher head's logits into a DS-CNN of the config's shape (streamed
too), starts from kws_model's weights when they fit, passes kws_model through when distillation
is off, and refuses a teacher that does not fit."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import torch

from kws_assets.core.families import REGISTRY
from kws_assets.core.families.mfcc_dscnn import NAME as MFCC_FAMILY
from kws_assets.core.families.mfcc_dscnn import normalised_data
from kws_assets.core.families.speech_embedding import NAME as EMBEDDING_FAMILY
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.embedding_head import build_head
from kws_assets.core.model.negative_windows import FEATURES, NEGATIVES_SCHEMA
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.storage.object_store import LocalObjectStore
from kws_assets.defs.assets.train import family_models, student_model_asset
from kws_assets.lib.family_assets import family_settings
from kws_assets.lib.io_managers import TorchCheckpointUPathIOManager
from kws_assets.lib.resources import MODELS as MODELS_DIR
from kws_assets.lib.resources import KwsSettings

MODELS = {asset.key.to_user_string(): asset for asset in family_models(REGISTRY)}
student_model = student_model_asset()
kws_model, embedding_model = MODELS["kws_model"], MODELS["embedding_model"]
LABELS = ["_silence_", "_unknown_", "yes", "no"]
N_FRAMES, N_MFCC = 49, 10  # the default MFCC front end
EMB_FRAMES, EMB_DIM = 2, 8
HEAD = {
    "head": "dnn",
    "width": 8,
    "dropout": 0.0,
    "n_blocks": 1,
    "n_frames": EMB_FRAMES,
    "dim": EMB_DIM,
}


def _config(
    tmp_path: Path, enabled: bool, stream_above_rows: int = 50_000, warm_epochs: int = 8
) -> KwsSettings:
    path = tmp_path / "kws.yaml"
    path.write_text(
        "keywords: [yes, no]\n"
        "model: {n_filters: 8, n_blocks: 1}\n"
        "train: {max_epochs: 2, min_epochs: 1, batch_size: 16, threads: 1, "
        f"stream_above_rows: {stream_above_rows}, shuffle_buffer: 20, "
        "warm_epochs: {max_epochs: 1, patience: 1}}\n"
        f"distill: {{enabled: {str(enabled).lower()}, temperature: 2.0, alpha: 0.5, "
        f"warm_epochs: {warm_epochs}}}\n"
        f"storage: {{root: {tmp_path / 'data'}}}\n"
    )
    return KwsSettings(config_path=str(path))


def _tables(seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """MFCC and embedding rows of the same clips, each class shifted so it is learnable."""
    rng = np.random.default_rng(seed)
    splits = ["train"] * 48 + ["val"] * 16 + ["test"] * 16
    y = np.tile(np.arange(len(LABELS)), len(splits) // len(LABELS))
    ids = [f"clip-{i}" for i in range(len(splits))]
    keys = {"clip_id": ids, "label": [LABELS[i] for i in y], "split": splits}
    mfcc = rng.normal(0, 1, (len(y), N_FRAMES, N_MFCC)).astype(np.float32) + y[:, None, None]
    emb = rng.normal(0, 1, (len(y), EMB_FRAMES, EMB_DIM)).astype(np.float32) + y[:, None, None]
    mfcc_table = pl.DataFrame(
        {**keys, "mfcc": mfcc}, schema_overrides={"mfcc": pl.Array(pl.Float32, (N_FRAMES, N_MFCC))}
    )
    backwards = {
        k: v[::-1] for k, v in keys.items()
    }  # row order must not matter: joined by clip id
    embedding_table = pl.DataFrame(
        {**backwards, "embedding": emb[::-1].copy()},
        schema_overrides={"embedding": pl.Array(pl.Float32, (EMB_FRAMES, EMB_DIM))},
    )
    return mfcc_table, embedding_table


def _teacher(labels: list[str] = LABELS) -> ModelCheckpoint:
    torch.manual_seed(0)
    head = build_head("dnn", EMB_FRAMES, EMB_DIM, len(labels), width=8, dropout=0.0, n_blocks=1)
    return ModelCheckpoint(
        family=EMBEDDING_FAMILY,
        labels=labels,
        state_dict=head.state_dict(),
        network=HEAD,
        front_end={},
        accuracy={"test": 0.5},
    )


def _kws_model() -> ModelCheckpoint:
    return ModelCheckpoint(
        family=MFCC_FAMILY,
        labels=LABELS,
        state_dict={},
        network={},
        front_end={},
        accuracy={"val": 0.4, "test": 0.3},
    )


def _run(
    tmp_path: Path,
    enabled: bool,
    teacher: ModelCheckpoint | None = None,
    embedding_table: pl.DataFrame | None = None,
    stream_above_rows: int = 50_000,
    kws: ModelCheckpoint | None = None,
    warm_epochs: int = 8,
    instance: dg.DagsterInstance | None = None,
) -> tuple[ModelCheckpoint, dict]:
    mfcc_table, embeddings = _tables()
    context = dg.build_asset_context(instance=instance)
    out = student_model(  # the IO manager hands the tables over as scans (pl.LazyFrame)
        context=context,
        settings=_config(tmp_path, enabled, stream_above_rows, warm_epochs),
        model_io_manager=_models(tmp_path),
        mfcc_table=mfcc_table.lazy(),
        embedding_table=(embeddings if embedding_table is None else embedding_table).lazy(),
        embedding_model=teacher or _teacher(),
        kws_model=kws or _kws_model(),
    )
    return out, context.get_output_metadata("result")


@pytest.mark.parametrize("streamed", [False, True])
def test_distils_into_a_dscnn_of_the_config_shape(tmp_path, streamed):
    student, meta = _run(tmp_path, enabled=True, stream_above_rows=0 if streamed else 50_000)
    assert meta["train_split_streamed"] is streamed
    assert meta["rows_per_split"].value == {"train": 48, "val": 16, "test": 16}
    assert student.family == MFCC_FAMILY and student.labels == LABELS
    assert student.network["n_filters"] == 8 and student.network["n_blocks"] == 1
    assert set(student.accuracy) == {"train", "val", "test"} and len(student.history) >= 1
    assert meta["distilled"] is True and meta["alpha"] == 0.5 and meta["temperature"] == 2.0
    assert meta["kws_model_accuracy_test"] == 0.3 and meta["teacher_accuracy_test"] == 0.5
    assert meta["train_rows_without_teacher"] == 0
    assert set(meta["teacher_agreement"].value) == {"train", "val", "test"}
    assert meta["warm_started_from_kws_model"] is False  # _kws_model() is no DS-CNN of it


def test_starts_from_kws_model_when_it_is_the_same_network_on_the_same_features(tmp_path):
    cfg = _config(tmp_path, enabled=True).config
    spec, _ = normalised_data(family_settings(cfg), _tables()[0].lazy(), "kws_model")
    torch.manual_seed(1)
    kws = ModelCheckpoint(
        family=MFCC_FAMILY,
        labels=LABELS,
        state_dict=DSCNN(len(LABELS), cfg.model).state_dict(),
        network=cfg.model.model_dump(mode="json"),
        front_end=spec.model_dump(mode="json"),
    )
    _, meta = _run(tmp_path, enabled=True, kws=kws, warm_epochs=1)
    assert meta["warm_started_from_kws_model"] is True
    assert meta["epochs_run"] == 1  # distill.warm_epochs, not train.max_epochs (2)
    _, meta = _run(tmp_path, enabled=True, warm_epochs=1)  # a kws_model that does not fit
    assert meta["warm_started_from_kws_model"] is False and meta["epochs_run"] == 2


def _models(tmp_path: Path) -> TorchCheckpointUPathIOManager:
    """The model IO manager of the config's storage root (where a re-run finds its checkpoint)."""
    return TorchCheckpointUPathIOManager(LocalObjectStore.at(str(tmp_path / "data" / MODELS_DIR)))


def test_a_rerun_starts_from_the_previous_student_model_before_kws_model(tmp_path):
    """The previous student (already distilled, the same shape) is preferred to kws_model; the
    metadata names the materialization it came from."""
    instance = dg.DagsterInstance.ephemeral()
    first, meta = _run(tmp_path, enabled=True, instance=instance)
    assert meta["warm_started"] is False
    assert meta["warm_start"].value["reason"] == "no previous materialization of student_model"
    # what the model IO manager and the instance keep of that materialization
    path = tmp_path / "data" / MODELS_DIR / "student_model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(first.to_dict(), path)
    instance.report_runless_asset_event(
        dg.AssetMaterialization("student_model", metadata={"path": dg.MetadataValue.path(path)})
    )
    second, meta = _run(tmp_path, enabled=True, instance=instance)
    warm = meta["warm_start"].value
    assert meta["warm_started"] is True and warm["from"]["path"] == str(path)
    assert warm["labels_kept"] == len(LABELS) and warm["labels_added"] == []
    assert meta["warm_started_from_kws_model"] is False
    assert meta["epochs_run"] == 1  # train.warm_epochs, not train.max_epochs (2)
    assert second.labels == first.labels
    path.write_bytes(b"garbage")  # an unreadable checkpoint: from scratch, and why
    _, meta = _run(tmp_path, enabled=True, instance=instance)
    assert meta["warm_started"] is False and meta["epochs_run"] == 2
    assert "unreadable" in meta["warm_start"].value["reason"]


def test_passes_kws_model_through_when_distillation_is_off(tmp_path):
    student, meta = _run(tmp_path, enabled=False)
    assert student == _kws_model() and meta["distilled"] is False


def test_refuses_a_teacher_that_does_not_fit(tmp_path):
    with pytest.raises(dg.Failure, match="teacher labels"):
        _run(tmp_path, enabled=True, teacher=_teacher(["_silence_", "_unknown_", "yes", "up"]))
    wrong_family = ModelCheckpoint(**{**_teacher().__dict__, "family": MFCC_FAMILY})
    with pytest.raises(dg.Failure, match="teacher must be"):
        _run(tmp_path, enabled=True, teacher=wrong_family)
    _, embeddings = _tables()
    strangers = embeddings.with_columns(pl.lit("other-").add(pl.col("clip_id")).alias("clip_id"))
    with pytest.raises(dg.Failure, match="no train clip"):
        _run(tmp_path, enabled=True, embedding_table=strangers)


def _negatives() -> pl.LazyFrame:
    """Two recordings of embedding frames (train, heldout), as embedding_negatives stores them."""
    rng = np.random.default_rng(3)
    frames = [rng.normal(size=(40, EMB_DIM)).astype(np.float32) for _ in range(2)]
    return pl.DataFrame(
        {
            "segment_id": ["n0", "n1"],
            "split": ["train", "heldout"],
            "kind": ["speech", "speech"],
            "seconds": [3.2, 3.2],
            "frames": [40, 40],
            FEATURES: [f.reshape(-1) for f in frames],
            "label": ["_unknown_", "_unknown_"],
        },
        schema=NEGATIVES_SCHEMA,
    ).lazy()


@pytest.mark.parametrize("streamed", [False, True])
def test_kws_model_and_embedding_model_train_in_memory_or_streamed(tmp_path, streamed):
    mfcc_table, embedding_table = _tables()
    settings = _config(tmp_path, enabled=True, stream_above_rows=0 if streamed else 50_000)
    for asset, inputs in (
        (kws_model, {"mfcc_table": mfcc_table.lazy()}),
        (
            embedding_model,
            {"embedding_table": embedding_table.lazy(), "embedding_negatives": _negatives()},
        ),
    ):
        context = dg.build_asset_context()
        checkpoint = asset(
            context=context, settings=settings, model_io_manager=_models(tmp_path), **inputs
        )
        assert context.get_output_metadata("result")["warm_started"] is False
        meta = context.get_output_metadata("result")
        assert meta["train_split_streamed"] is streamed
        assert meta["rows_per_split"].value == {"train": 48, "val": 16, "test": 16}
        assert set(checkpoint.accuracy) == {"train", "val", "test"}
        assert checkpoint.labels == LABELS and len(checkpoint.history) >= 1
        if asset is embedding_model:  # trained beside the negatives, one mining round
            rounds = meta["negative_rounds"].value
            assert [r["round"] for r in rounds] == [1, 2]
            assert rounds[0]["random_windows"] == 48 and rounds[0]["heldout"]["hours"] > 0
