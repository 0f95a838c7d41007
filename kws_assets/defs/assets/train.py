"""Train: each model family on the train split, early-stopped on the validation split — the
DS-CNN on MFCC (kws_model) and the head over the speech embedding (embedding_model)."""


import dagster as dg
import polars as pl

from kws_assets.core.model.feature_table import split_arrays
from kws_assets.core.audio.features import FeatureSpec, compute_norm_stats, normalize
from kws_assets.core.model.checkpoint import EMBEDDING_FAMILY, MFCC_FAMILY, ModelCheckpoint
from kws_assets.core.model.embedding_head import train_head
from kws_assets.core.model.embedding_table import embedding_split_arrays
from kws_assets.core.model.training import EmbeddingAugment
from kws_assets.defs.assets.features import embedding_front_end
from kws_assets.core.model.plots import confusion_matrix_png, png_markdown
from kws_assets.core.model.training import MfccAugment, evaluate, train_model
from kws_assets.lib.metadata import confusion_md
from kws_assets.lib.resources import KwsSettings

from kws_assets.core.tables import SPLITS


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
def kws_model(context: dg.AssetExecutionContext, settings: KwsSettings,
              mfcc_table: pl.DataFrame) -> ModelCheckpoint:
    cfg = settings.config
    labels = cfg.labels
    raw = {split: split_arrays(mfcc_table, labels, split) for split in SPLITS}
    if len(raw["train"][1]) == 0 or len(raw["val"][1]) == 0:
        raise dg.Failure(f"kws_model needs train and val rows; got "
                         f"{ {s: len(raw[s][1]) for s in SPLITS} }", allow_retries=False)
    mean, std = compute_norm_stats(raw["train"][0])
    spec = FeatureSpec.from_settings(cfg.features, cfg.audio).with_stats(mean, std)
    data = {split: (normalize(x, spec), y) for split, (x, y) in raw.items()}
    result = train_model(*data["train"], *data["val"], labels, cfg.model, cfg.train,
                         log=context.log.info,
                         augment=MfccAugment.from_settings(cfg.train.spec_augment))
    reports = {split: evaluate(result.model, x, y, labels)
               for split, (x, y) in data.items() if len(y)}
    accuracy = {split: round(float(r.accuracy), 4) for split, r in reports.items()}
    test_report = reports.get("test")
    context.add_output_metadata({
        **{f"accuracy_{split}": value for split, value in accuracy.items()},
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "parameters": sum(p.numel() for p in result.model.parameters()),
        "rows_per_split": dg.MetadataValue.json({s: int(len(data[s][1])) for s in SPLITS}),
        "test_confusion_matrix": dg.MetadataValue.md(
            confusion_md(labels, test_report.confusion) if test_report else "_(no test rows)_"),
        **(_confusion_image(labels, test_report.confusion, accuracy["test"]) if test_report else {}),
    })
    return ModelCheckpoint(
        family=MFCC_FAMILY, labels=labels, state_dict=result.model.state_dict(),
        network=cfg.model.model_dump(mode="json"), front_end=spec.model_dump(mode="json"),
        accuracy=accuracy, history=[dict(epoch.__dict__) for epoch in result.history],
        best_epoch=result.best_epoch)


def _confusion_image(labels: list[str], confusion: list[list[int]],
                     accuracy: float) -> dict[str, dg.MetadataValue]:
    """The test confusion matrix as a PNG inline in the UI."""
    png = confusion_matrix_png(labels, confusion, title=f"test split, accuracy {accuracy:.3f}")
    return {"test_confusion_matrix_plot": dg.MetadataValue.md(png_markdown(png, "test confusion matrix"))}


@dg.asset(
    group_name="train",
    kinds={"pytorch"},
    io_manager_key="model_io_manager",
    code_version="1",
    owners=["team:kws-ml"],
    description="The speech_embedding family's head (embedding.head: an openWakeWord-style MLP over "
                "the flattened embedding sequence, or a temporal conv) trained on the train split "
                "of embedding_table with SpecAugment-style masks over frames and dimensions, "
                "early-stopped on the validation split.",
)
def embedding_model(context: dg.AssetExecutionContext, settings: KwsSettings,
                    embedding_table: pl.DataFrame) -> ModelCheckpoint:
    cfg = settings.config
    labels = cfg.labels
    data = {split: embedding_split_arrays(embedding_table, labels, split) for split in SPLITS}
    if len(data["train"][1]) == 0 or len(data["val"][1]) == 0:
        raise dg.Failure(f"embedding_model needs train and val rows; got "
                         f"{ {s: len(data[s][1]) for s in SPLITS} }", allow_retries=False)
    head = cfg.embedding
    result = train_head(*data["train"], *data["val"], labels, cfg.train, kind=head.head,
                        width=head.width, dropout=head.dropout, n_blocks=head.n_blocks,
                        augment=EmbeddingAugment(**head.augment.model_dump()), log=context.log.info)
    reports = {split: evaluate(result.model, x, y, labels) for split, (x, y) in data.items() if len(y)}
    accuracy = {split: round(float(r.accuracy), 4) for split, r in reports.items()}
    test_report = reports.get("test")
    front_end = embedding_front_end(cfg).spec
    context.add_output_metadata({
        **{f"accuracy_{split}": value for split, value in accuracy.items()},
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "parameters": sum(p.numel() for p in result.model.parameters()),
        **(_confusion_image(labels, test_report.confusion, accuracy["test"]) if test_report else {}),
    })
    return ModelCheckpoint(
        family=EMBEDDING_FAMILY, labels=labels, state_dict=result.model.state_dict(),
        network={"head": head.head, "width": head.width, "dropout": head.dropout,
                 "n_blocks": head.n_blocks, "n_frames": front_end.n_frames, "dim": front_end.dim},
        front_end=front_end.to_dict(), accuracy=accuracy,
        history=[dict(epoch.__dict__) for epoch in result.history], best_epoch=result.best_epoch)
