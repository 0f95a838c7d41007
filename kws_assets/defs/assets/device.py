"""Small devices: the DS-CNN as a full-integer int8 TFLite model for TensorFlow Lite Micro, with
its C array, a manifest (front end, operating point, tensor arena) and a model card.  The DS-CNN
shipped is student_model (distilled from the speech-embedding head) when ``distill.enabled``,
else kws_model."""

import json

import dagster as dg
import polars as pl
import torch

from kws_assets.core.dataset.data_card import speaker_engine
from kws_assets.core.evaluation.report import REPORT_FILE, measured_bounds
from kws_assets.core.evaluation.transfer import STUDENT, TRANSFER_REPORT_FILE
from kws_assets.core.families import get_family
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN, checkpoint_spec
from kws_assets.core.features.loader import collect_splits
from kws_assets.core.features.mfcc import FeatureSpec, normalize
from kws_assets.core.features.table import split_arrays
from kws_assets.core.licenses import license_rows
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.training import predict_logits
from kws_assets.core.model.warm_start import describe
from kws_assets.core.review.field import FalseWakeRate, confirmed_false_wakes, false_wake_rate
from kws_assets.core.ship.device_folder import MODEL_CARD_FILE, write_device_folder
from kws_assets.core.ship.export import KwsClassifier
from kws_assets.core.ship.manifest import OperatingPoint
from kws_assets.core.ship.model_card import LicenseEntry, ModelCardInputs, speaker_group_metrics
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.core.tables import is_augmented
from kws_assets.lib.resources import KwsSettings

INTENDED_USE = (
    "Always-on keyword spotting on a microcontroller (TensorFlow Lite Micro): 1-s "
    "windows of 16 kHz audio, MFCC front end, int8 DS-CNN."
)
LIMITATIONS = (
    "Trained on synthetic speech (TTS engines) and the configured corpora only; accuracy on real "
    "people is the real-source rows of the evaluation table, not the synthetic test split.",
    "The operating point was chosen on synthetic streams; re-check false accepts on your own "
    "audio before shipping.",
    "The tensor arena is planned on the host; confirm with MicroInterpreter::arena_used_bytes().",
)
STUDENT_LIMITATION = (
    "This DS-CNN is distilled from the speech_embedding head (student_model). The operating "
    "point and the rows marked 'kws_model' were measured on the undistilled DS-CNN, and the "
    "per-speaker-group metrics are the student's float (not int8) predictions on the test split."
)
UNDISTILLED = "kws_model"


def speaker_groups(rows: pl.DataFrame) -> dict[str, list[str]]:
    """Per clip: its engine, its voice family (espeak-ng accent or engine voice) and whether the
    render was speaker-perturbed."""
    speakers = rows["speaker"].to_list()
    origins = (
        rows["origin_id"].fill_null("").to_list()
        if "origin_id" in rows.columns
        else [""] * len(speakers)
    )
    engines = [speaker_engine(s) or "recorded" for s in speakers]
    families = [
        s.split(":", 1)[-1].split("+")[0] if e != "recorded" else "recorded"
        for s, e in zip(speakers, engines, strict=True)
    ]
    perturbed = ["perturbed" if "|w" in o else "plain" for o in origins]
    return {"engine": engines, "voice_family": families, "perturbation": perturbed}


def _evaluation_table(transfer: ArtifactFolder, family: str) -> dict[str, dict[str, float | None]]:
    table = json.loads(transfer.file(TRANSFER_REPORT_FILE).read_text())["table"]
    return {
        row["set"]: {
            "accuracy": row["accuracy"],
            "keyword_accuracy": row["keyword_accuracy"],
            "always_unknown": row["always_unknown"],
        }
        for row in table
        if row["family"] == family
    }


def _field_false_wakes(
    false_wakes: pl.DataFrame,
    mfcc_table: pl.LazyFrame,
    model: torch.nn.Module,
    spec: FeatureSpec,
    labels: list[str],
    keywords: list[str],
) -> FalseWakeRate | None:
    """How often the shipped network fires on the confirmed field false wakes (every split)."""
    rows = (
        mfcc_table.filter(pl.col("clip_id").is_in(false_wakes["clip_id"].to_list()))
        .select("clip_id", MFCC_DSCNN.column)
        .collect()
    )
    if rows.is_empty():
        return None
    logits = predict_logits(model, normalize(rows[MFCC_DSCNN.column].to_numpy(), spec))
    kept = false_wakes.join(rows.select("clip_id"), on="clip_id", how="semi")
    order = {c: i for i, c in enumerate(rows["clip_id"].to_list())}
    predicted = [labels[logits[order[c]].argmax()] for c in kept["clip_id"].to_list()]
    return false_wake_rate(kept, predicted, keywords)


def device_model_asset() -> dg.AssetsDefinition:
    """``device_model``: in the graph when the DS-CNN on MFCC trains (``families`` lists mfcc)."""
    return dg.asset(
        name="device_model",
        group_name="ship",
        kinds={"tflite"},
        io_manager_key="artifact_io_manager",
        code_version="1",
        owners=["team:kws-ml"],
        description="The small-device artifact: student_model (distill.enabled) or kws_model as "
        "a full-integer int8 .tflite (int8 input and output, calibrated on validation "
        "rows; TensorFlow Lite Micro ops only), its C array (the .tflite bytes, "
        "aligned), manifest.json (front end, labels, operating point from evaluation, "
        "int8 weight bytes, tensor arena) and MODEL_CARD.md (metrics per evaluation set "
        "and per speaker group, licenses).",
    )(device_model)


def device_model(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    kws_model: ModelCheckpoint,
    student_model: ModelCheckpoint,
    mfcc_table: pl.LazyFrame,
    validated_set: pl.DataFrame,
    quantized_model: ArtifactFolder,
    evaluation: ArtifactFolder,
    transfer_evaluation: ArtifactFolder,
) -> dg.Output[ArtifactFolder]:
    cfg = settings.config
    distilled = cfg.distill.enabled
    shipped = student_model if distilled else kws_model
    labels = shipped.labels
    spec = checkpoint_spec(shipped)
    model = get_family(shipped.family).network(shipped)
    held = collect_splits(mfcc_table, ["val", "test"])
    x_val, _ = split_arrays(held, labels, "val", column=MFCC_DSCNN.column)
    summary = json.loads(evaluation.file(REPORT_FILE).read_text())["summary"]
    point = OperatingPoint(
        threshold=summary["threshold_at_target"],
        smoothing_windows=summary.get("smoothing_at_target", cfg.evaluation.smoothing_windows),
        refractory_seconds=summary.get("refractory_s_at_target", cfg.evaluation.refractory_s),
        target_fa_per_hour=cfg.evaluation.target_fa_per_hour,
        frr_at_target=summary["frr_at_target"],
        **measured_bounds(json.loads(evaluation.file(REPORT_FILE).read_text())),
    )
    test = held.filter((pl.col("split") == "test") & ~is_augmented()).join(
        validated_set.select("clip_id", "origin_id"), on="clip_id", how="left"
    )
    if not test.height:
        scores = None
    elif distilled:  # quantized_model is kws_model's: the student's own (float) predictions
        scores = predict_logits(model, normalize(test[MFCC_DSCNN.column].to_numpy(), spec))
    else:
        scores = KwsClassifier.load_mfcc(quantized_model.path).classify_features(
            normalize(test[MFCC_DSCNN.column].to_numpy(), spec)
        )
    predicted = [labels[i] for i in scores.argmax(axis=1)] if scores is not None else []
    groups = (
        speaker_group_metrics(test["label"].to_list(), predicted, speaker_groups(test))
        if predicted
        else []
    )
    counts = [
        (speaker_engine(s) or "recorded", src, int(n))
        for s, src, n in validated_set.filter(pl.col("split") == "train")
        .group_by("speaker", "source")
        .len()
        .iter_rows()
    ]
    by_engine: dict[tuple[str, str], int] = {}
    for engine, source, n in counts:
        by_engine[(engine, source)] = by_engine.get((engine, source), 0) + n
    measured = {
        **_evaluation_table(transfer_evaluation, MFCC_DSCNN.name),
        "held-out espeak-ng voices": {"accuracy": summary["unseen_voice_accuracy"]},
    }
    if distilled:  # the student's own rows (float weights), then the undistilled DS-CNN's
        measured = {
            **{
                f"student: {name}": row
                for name, row in _evaluation_table(transfer_evaluation, STUDENT).items()
            },
            **{f"{UNDISTILLED}: {name}": row for name, row in measured.items()},
        }
    card = ModelCardInputs(
        field_false_wakes=_field_false_wakes(
            confirmed_false_wakes(validated_set), mfcc_table, model, spec, labels, cfg.keywords
        ),
        model_name=f"kws DS-CNN int8{' distilled from speech_embedding' if distilled else ''} "
        f"({len(cfg.keywords)} keywords)",
        family=MFCC_DSCNN.name,
        keywords=cfg.keywords,
        intended_use=INTENDED_USE,
        limitations=(*LIMITATIONS, STUDENT_LIMITATION) if distilled else LIMITATIONS,
        training_counts=[(e, s, n) for (e, s), n in sorted(by_engine.items())],
        evaluation=measured,
        target_fa_per_hour=cfg.evaluation.target_fa_per_hour,
        frr_at_target=summary["frr_at_target"],
        threshold=summary["threshold_at_target"],
        group_metrics=groups,
        operating_point=point,
        beside_peers=json.loads(transfer_evaluation.file(TRANSFER_REPORT_FILE).read_text()).get(
            "beside_peers", []
        ),
        licenses=[LicenseEntry(r["kind"], r["name"], r["license"]) for r in license_rows()],
        training_start=describe(shipped.warm_start),
    )
    folder = ArtifactFolder.staging(prefix="kws-device-")
    write_device_folder(
        folder.path,
        model,
        spec,
        normalize(x_val, spec)[: cfg.quantize.calibration_rows],
        labels,
        point,
        cfg.evaluation.hop_ms / 1000.0,
        card=card,
    )
    manifest = json.loads(folder.file("manifest.json").read_text())
    return dg.Output(
        folder,
        metadata={
            "shipped": "student_model" if distilled else UNDISTILLED,
            "model_card": dg.MetadataValue.md(folder.file(MODEL_CARD_FILE).read_text()),
            "int8_weight_bytes": manifest["sizes"]["int8_weight_bytes"],
            "tflite_bytes": manifest["sizes"]["model_file_bytes"],
            "tensor_arena_bytes": manifest["sizes"]["tensor_arena_bytes"],
            "threshold": point.threshold,
        },
    )
