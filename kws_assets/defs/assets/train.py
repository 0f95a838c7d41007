"""Train: each model family on the train split, early-stopped on the validation split — the
DS-CNN on MFCC (kws_model), the head over the speech embedding (embedding_model), and the DS-CNN
distilled from that head (student_model: the embedding head's transfer in a microcontroller's
network)."""

import dagster as dg
import numpy as np
import polars as pl
import torch

from kws_assets.core.audio.features import FeatureSpec, compute_norm_stats, normalize
from kws_assets.core.model.checkpoint import EMBEDDING_FAMILY, MFCC_FAMILY, ModelCheckpoint
from kws_assets.core.model.embedding_head import build_head, train_head
from kws_assets.core.model.embedding_table import EMBEDDING_COLUMN, embedding_split_arrays
from kws_assets.core.model.feature_table import split_arrays
from kws_assets.core.model.plots import confusion_matrix_png, png_markdown
from kws_assets.core.model.training import (
    EmbeddingAugment,
    EvalReport,
    MfccAugment,
    TrainResult,
    align_teacher_logits,
    evaluate,
    predict_logits,
    train_model,
    train_student,
)
from kws_assets.core.tables import SPLITS
from kws_assets.defs.assets.features import embedding_front_end
from kws_assets.lib.metadata import confusion_table
from kws_assets.lib.resources import KwsSettings
from kws_assets.settings import KwsConfig


@dg.asset(
    group_name="train",
    kinds={"pytorch"},
    io_manager_key="model_io_manager",
    code_version="1",
    owners=["team:kws-ml"],
    description="DS-CNN (MLPerf Tiny reference shape) trained on the train split with "
    "validation-based early stopping; accuracy per split and the test confusion "
    "matrix as metadata. Normalisation stats come from the train split only.",
)
def kws_model(
    context: dg.AssetExecutionContext, settings: KwsSettings, mfcc_table: pl.DataFrame
) -> ModelCheckpoint:
    cfg = settings.config
    labels = cfg.labels
    spec, data = _normalised_mfcc(cfg, mfcc_table, "kws_model")
    result = train_model(
        *data["train"],
        *data["val"],
        labels,
        cfg.model,
        cfg.train,
        log=context.log.info,
        augment=MfccAugment.from_settings(cfg.train.spec_augment),
    )
    accuracy, test_report, trained = _training_report(result, data, labels)
    context.add_output_metadata(
        {
            **trained,
            "rows_per_split": dg.MetadataValue.json({s: len(data[s][1]) for s in SPLITS}),
            "test_confusion_matrix": (
                confusion_table(labels, test_report.confusion)
                if test_report
                else dg.MetadataValue.text("no test rows")
            ),
        }
    )
    return ModelCheckpoint(
        family=MFCC_FAMILY,
        labels=labels,
        state_dict=result.model.state_dict(),
        network=cfg.model.model_dump(mode="json"),
        front_end=spec.model_dump(mode="json"),
        accuracy=accuracy,
        history=[dict(epoch.__dict__) for epoch in result.history],
        best_epoch=result.best_epoch,
    )


def _normalised_mfcc(
    cfg: KwsConfig, mfcc_table: pl.DataFrame, asset: str
) -> tuple[FeatureSpec, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The MFCC front end with train-split normalisation stats, and every split normalised."""
    raw = {split: split_arrays(mfcc_table, cfg.labels, split) for split in SPLITS}
    _require_train_and_val(raw, asset)
    mean, std = compute_norm_stats(raw["train"][0])
    spec = FeatureSpec.from_settings(cfg.features, cfg.audio).with_stats(mean, std)
    return spec, {split: (normalize(x, spec), y) for split, (x, y) in raw.items()}


def _require_train_and_val(data: dict[str, tuple[np.ndarray, np.ndarray]], asset: str) -> None:
    """A clear, non-retried failure when a split a model needs is empty."""
    if len(data["train"][1]) == 0 or len(data["val"][1]) == 0:
        raise dg.Failure(
            f"{asset} needs train and val rows; got { {s: len(data[s][1]) for s in SPLITS} }",
            allow_retries=False,
        )


def _training_report(
    result: TrainResult, data: dict[str, tuple[np.ndarray, np.ndarray]], labels: list[str]
) -> tuple[dict[str, float], EvalReport | None, dict[str, object]]:
    """Accuracy per split, the test report, and the metadata every trained model shows: accuracy
    per split, epochs, parameters and the test confusion matrix."""
    reports = {
        split: evaluate(result.model, x, y, labels) for split, (x, y) in data.items() if len(y)
    }
    accuracy = {split: round(float(r.accuracy), 4) for split, r in reports.items()}
    test_report = reports.get("test")
    return (
        accuracy,
        test_report,
        {
            **{f"accuracy_{split}": value for split, value in accuracy.items()},
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "parameters": sum(p.numel() for p in result.model.parameters()),
            **(
                _confusion_image(labels, test_report.confusion, accuracy["test"])
                if test_report
                else {}
            ),
        },
    )


def _confusion_image(
    labels: list[str], confusion: list[list[int]], accuracy: float
) -> dict[str, dg.MetadataValue]:
    """The test confusion matrix as a PNG inline in the UI."""
    png = confusion_matrix_png(labels, confusion, title=f"test split, accuracy {accuracy:.3f}")
    return {
        "test_confusion_matrix_plot": dg.MetadataValue.md(
            png_markdown(png, "test confusion matrix")
        )
    }


@dg.asset(
    group_name="train",
    kinds={"pytorch"},
    io_manager_key="model_io_manager",
    code_version="1",
    owners=["team:kws-ml"],
    description="The speech_embedding family's head (embedding.head: an openWakeWord-style MLP "
    "over the flattened embedding sequence, or a temporal conv) trained on the train split "
    "of embedding_table with SpecAugment-style masks over frames and dimensions, "
    "early-stopped on the validation split.",
)
def embedding_model(
    context: dg.AssetExecutionContext, settings: KwsSettings, embedding_table: pl.DataFrame
) -> ModelCheckpoint:
    cfg = settings.config
    labels = cfg.labels
    data = {split: embedding_split_arrays(embedding_table, labels, split) for split in SPLITS}
    _require_train_and_val(data, "embedding_model")
    head = cfg.embedding
    result = train_head(
        *data["train"],
        *data["val"],
        labels,
        cfg.train,
        kind=head.head,
        width=head.width,
        dropout=head.dropout,
        n_blocks=head.n_blocks,
        augment=EmbeddingAugment(**head.augment.model_dump()),
        log=context.log.info,
    )
    accuracy, _, trained = _training_report(result, data, labels)
    front_end = embedding_front_end(cfg).spec
    context.add_output_metadata(trained)
    return ModelCheckpoint(
        family=EMBEDDING_FAMILY,
        labels=labels,
        state_dict=result.model.state_dict(),
        network={
            "head": head.head,
            "width": head.width,
            "dropout": head.dropout,
            "n_blocks": head.n_blocks,
            "n_frames": front_end.n_frames,
            "dim": front_end.dim,
        },
        front_end=front_end.to_dict(),
        accuracy=accuracy,
        history=[dict(epoch.__dict__) for epoch in result.history],
        best_epoch=result.best_epoch,
    )


def teacher_head(checkpoint: ModelCheckpoint) -> torch.nn.Module:
    """The embedding_model head rebuilt from its checkpoint (eval mode)."""
    if checkpoint.family != EMBEDDING_FAMILY:
        raise dg.Failure(
            f"the teacher must be a {EMBEDDING_FAMILY} checkpoint, got {checkpoint.family!r}",
            allow_retries=False,
        )
    net = checkpoint.network
    model = build_head(
        net["head"],
        net["n_frames"],
        net["dim"],
        len(checkpoint.labels),
        net["width"],
        net["dropout"],
        net["n_blocks"],
    )
    model.load_state_dict(checkpoint.state_dict)
    return model.eval()


@dg.asset(
    group_name="train",
    kinds={"pytorch"},
    io_manager_key="model_io_manager",
    code_version="1",
    owners=["team:kws-ml"],
    description="The DS-CNN (kws_model's shape, model settings) distilled from embedding_model: "
    "trained on the teacher head's posteriors at distill.temperature (alpha) plus the "
    "hard labels (1 - alpha), matched to mfcc_table by clip id, early-stopped on the "
    "validation hard labels. device_model ships it when distill.enabled (else this "
    "asset passes kws_model through). Metadata compares student, kws_model and "
    "teacher per split.",
)
def student_model(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    mfcc_table: pl.DataFrame,
    embedding_table: pl.DataFrame,
    embedding_model: ModelCheckpoint,
    kws_model: ModelCheckpoint,
) -> ModelCheckpoint:
    cfg = settings.config
    labels = cfg.labels
    if not cfg.distill.enabled:
        context.add_output_metadata({"distilled": False})
        return kws_model
    if embedding_model.labels != labels:
        raise dg.Failure(
            f"teacher labels {embedding_model.labels} differ from the config's "
            f"{labels}: rematerialize embedding_model",
            allow_retries=False,
        )
    spec, data = _normalised_mfcc(cfg, mfcc_table, "student_model")
    teacher = teacher_head(embedding_model)
    x_teacher = embedding_table[EMBEDDING_COLUMN].to_numpy().astype(np.float32)
    teacher_logits = predict_logits(teacher, x_teacher)  # logits: any temperature later
    train_ids = mfcc_table.filter(pl.col("split") == "train")["clip_id"].to_list()
    soft = align_teacher_logits(train_ids, embedding_table["clip_id"].to_list(), teacher_logits)
    without_teacher = int(np.isnan(soft).any(axis=1).sum())
    if without_teacher == len(train_ids):
        raise dg.Failure(
            "no train clip of mfcc_table is in embedding_table: rematerialize both "
            "from the same validated_set",
            allow_retries=False,
        )
    result = train_student(
        data["train"][0],
        data["train"][1],
        soft,
        *data["val"],
        labels,
        cfg.model,
        cfg.train,
        cfg.distill,
        log=context.log.info,
        augment=MfccAugment.from_settings(cfg.train.spec_augment),
    )
    accuracy, _, trained = _training_report(result, data, labels)
    context.add_output_metadata(
        {
            "distilled": True,
            **trained,
            **{f"kws_model_accuracy_{split}": value for split, value in kws_model.accuracy.items()},
            **{
                f"teacher_accuracy_{split}": value
                for split, value in embedding_model.accuracy.items()
            },
            "teacher_agreement": dg.MetadataValue.json(
                _agreement(result.model, data, mfcc_table, embedding_table, teacher_logits)
            ),
            "train_rows_without_teacher": without_teacher,
            "temperature": cfg.distill.temperature,
            "alpha": cfg.distill.alpha,
        }
    )
    return ModelCheckpoint(
        family=MFCC_FAMILY,
        labels=labels,
        state_dict=result.model.state_dict(),
        network=cfg.model.model_dump(mode="json"),
        front_end=spec.model_dump(mode="json"),
        accuracy=accuracy,
        history=[dict(epoch.__dict__) for epoch in result.history],
        best_epoch=result.best_epoch,
    )


def _agreement(
    student: torch.nn.Module,
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    mfcc_table: pl.DataFrame,
    embedding_table: pl.DataFrame,
    teacher_logits: np.ndarray,
) -> dict[str, float]:
    """Per split: the share of clips where the student's top class is the teacher's."""
    teacher_ids = embedding_table["clip_id"].to_list()
    out: dict[str, float] = {}
    for split, (x, _) in data.items():
        ids = mfcc_table.filter(pl.col("split") == split)["clip_id"].to_list()
        aligned = align_teacher_logits(ids, teacher_ids, teacher_logits)
        known = ~np.isnan(aligned).any(axis=1)
        if len(ids) and known.any():
            student_top = predict_logits(student, x[known]).argmax(axis=1)
            out[split] = round(float((student_top == aligned[known].argmax(axis=1)).mean()), 4)
    return out
