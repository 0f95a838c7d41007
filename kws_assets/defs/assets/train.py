"""Train: a DS-CNN on the train split, early-stopped on the validation split."""


import dagster as dg
import polars as pl

from kws_assets.core.model.feature_table import split_arrays
from kws_assets.core.audio.features import FeatureSpec, compute_norm_stats, normalize
from kws_assets.core.model.checkpoint import MFCC_DSCNN, ModelCheckpoint
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
        family=MFCC_DSCNN, labels=labels, state_dict=result.model.state_dict(),
        network=cfg.model.model_dump(mode="json"), front_end=spec.model_dump(mode="json"),
        accuracy=accuracy, history=[dict(epoch.__dict__) for epoch in result.history],
        best_epoch=result.best_epoch)


def _confusion_image(labels: list[str], confusion: list[list[int]],
                     accuracy: float) -> dict[str, dg.MetadataValue]:
    """The test confusion matrix as a PNG inline in the UI."""
    png = confusion_matrix_png(labels, confusion, title=f"test split, accuracy {accuracy:.3f}")
    return {"test_confusion_matrix_plot": dg.MetadataValue.md(png_markdown(png, "test confusion matrix"))}
