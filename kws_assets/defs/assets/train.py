"""Train: each model family on the train split, early-stopped on the validation split — the
DS-CNN on MFCC (kws_model), the head over the speech embedding (embedding_model), and the DS-CNN
distilled from that head (student_model: the embedding head's transfer in a microcontroller's
network)."""

import dagster as dg
import numpy as np
import polars as pl
import torch

from kws_assets.core.evaluation.plots import confusion_matrix_png, png_markdown
from kws_assets.core.features.embedding_table import EMBEDDING_COLUMN
from kws_assets.core.features.loader import (
    TrainingData,
    split_clip_ids,
    streamed_norm_stats,
    table_logits,
    training_data,
)
from kws_assets.core.features.mfcc import FeatureSpec, compute_norm_stats, normalize
from kws_assets.core.model.checkpoint import EMBEDDING_FAMILY, MFCC_FAMILY, ModelCheckpoint
from kws_assets.core.model.embedding_head import build_head, train_head
from kws_assets.core.model.training import (
    EmbeddingAugment,
    EvalReport,
    MfccAugment,
    TrainResult,
    align_teacher_logits,
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
    context: dg.AssetExecutionContext, settings: KwsSettings, mfcc_table: pl.LazyFrame
) -> ModelCheckpoint:
    cfg = settings.config
    labels = cfg.labels
    spec, data = _normalised_mfcc(cfg, mfcc_table, "kws_model")
    result = train_model(
        **data.train_inputs(),
        labels=labels,
        model_settings=cfg.model,
        train_settings=cfg.train,
        log=context.log.info,
        augment=MfccAugment.from_settings(cfg.train.spec_augment),
    )
    accuracy, test_report, trained = _training_report(result, data, labels)
    context.add_output_metadata(
        {
            **trained,
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
    cfg: KwsConfig, mfcc_table: pl.LazyFrame, asset: str
) -> tuple[FeatureSpec, TrainingData]:
    """The MFCC front end with train-split normalisation stats, and every split normalised
    through it (the train split streamed when it is large: ``train.stream_above_rows``)."""
    raw = training_data(mfcc_table, cfg.labels, cfg.train)
    _require_train_and_val(raw, asset)
    if raw.streamed:  # one streamed pass; in memory: the same stats as ever, from the array
        mean, std = streamed_norm_stats(mfcc_table, cfg.labels, "train")
    else:
        mean, std = compute_norm_stats(raw.held["train"][0])
    spec = FeatureSpec.from_settings(cfg.features, cfg.audio).with_stats(mean, std)
    return spec, raw.normalised(lambda x: normalize(x, spec))


def _require_train_and_val(data: TrainingData, asset: str) -> None:
    """A clear, non-retried failure when a split a model needs is empty."""
    rows = {split: data.rows(split) for split in SPLITS}
    if rows["train"] == 0 or rows["val"] == 0:
        raise dg.Failure(f"{asset} needs train and val rows; got {rows}", allow_retries=False)


def _training_report(
    result: TrainResult, data: TrainingData, labels: list[str]
) -> tuple[dict[str, float], EvalReport | None, dict[str, object]]:
    """Accuracy per split, the test report, and the metadata every trained model shows: rows
    and accuracy per split, epochs, parameters, whether the train split streamed, and the test
    confusion matrix."""
    reports = {
        split: report
        for split in SPLITS
        if (report := data.report(result.model, split)) is not None
    }
    accuracy = {split: round(float(r.accuracy), 4) for split, r in reports.items()}
    test_report = reports.get("test")
    return (
        accuracy,
        test_report,
        {
            **{f"accuracy_{split}": value for split, value in accuracy.items()},
            "rows_per_split": dg.MetadataValue.json({s: data.rows(s) for s in SPLITS}),
            "train_split_streamed": data.streamed,
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
    context: dg.AssetExecutionContext, settings: KwsSettings, embedding_table: pl.LazyFrame
) -> ModelCheckpoint:
    cfg = settings.config
    labels = cfg.labels
    data = training_data(embedding_table, labels, cfg.train, column=EMBEDDING_COLUMN)
    _require_train_and_val(data, "embedding_model")
    head = cfg.embedding
    result = train_head(
        **data.train_inputs(),
        labels=labels,
        train_settings=cfg.train,
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
    mfcc_table: pl.LazyFrame,
    embedding_table: pl.LazyFrame,
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
    # the teacher's logits (any temperature later) for every embedding row, matched by clip id
    teacher_ids, teacher_logits = table_logits(
        teacher_head(embedding_model), embedding_table, column=EMBEDDING_COLUMN
    )
    soft = {
        split: align_teacher_logits(split_clip_ids(mfcc_table, split), teacher_ids, teacher_logits)
        for split in SPLITS
    }
    without_teacher = int(np.isnan(soft["train"]).any(axis=1).sum())
    if without_teacher == len(soft["train"]):
        raise dg.Failure(
            "no train clip of mfcc_table is in embedding_table: rematerialize both "
            "from the same validated_set",
            allow_retries=False,
        )
    result = train_student(
        **data.train_inputs(),
        teacher_logits=soft["train"],
        labels=labels,
        model_settings=cfg.model,
        train_settings=cfg.train,
        distill=cfg.distill,
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
            "teacher_agreement": dg.MetadataValue.json(_agreement(result.model, data, soft)),
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
    student: torch.nn.Module, data: TrainingData, soft: dict[str, np.ndarray]
) -> dict[str, float]:
    """Per split: the share of clips where the student's top class is the teacher's."""
    out: dict[str, float] = {}
    for split, aligned in soft.items():
        known = ~np.isnan(aligned).any(axis=1)
        if len(aligned) and known.any():
            _, logits = data.labels_and_logits(student, split)
            agree = logits[known].argmax(axis=1) == aligned[known].argmax(axis=1)
            out[split] = round(float(agree.mean()), 4)
    return out
