"""Train: each model family the config lists (``families``) on the train split, early-stopped on
the validation split — the head over the speech embedding (embedding_model), the streaming
network (micro_model), the DS-CNN on MFCC (kws_model) — and, with the DS-CNN, the DS-CNN distilled
from the embedding head (student_model: the head's transfer in a microcontroller's network).
:mod:`kws_assets.defs.family_graph` builds these from the config."""

import dagster as dg
import numpy as np
import polars as pl
import torch

from kws_assets.core.families import Registry
from kws_assets.core.families.base import EmptySplitError, Trained
from kws_assets.core.families.mfcc_dscnn import (
    MFCC_DSCNN,
    dscnn_checkpoint,
    normalised_data,
    warm_state,
)
from kws_assets.core.families.speech_embedding import SPEECH_EMBEDDING
from kws_assets.core.features.loader import TrainingData, split_clip_ids, table_logits
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.training import MfccAugment, align_teacher_logits, train_student
from kws_assets.core.tables import SPLITS
from kws_assets.lib.family_assets import (
    family_settings,
    model_asset,
    previous_checkpoint,
    training_metadata,
    warm_start_metadata,
    with_warm_start,
)
from kws_assets.lib.resources import KwsSettings


def family_models(registry: Registry) -> list[dg.AssetsDefinition]:
    """The model asset of every family of ``registry`` (the config's ``families``)."""
    return [model_asset(family) for family in registry]


def student_model_asset() -> dg.AssetsDefinition:
    """``student_model``: in the graph when the DS-CNN on MFCC trains (``families`` lists mfcc)."""
    return dg.asset(
        name="student_model",
        group_name="train",
        kinds={"pytorch"},
        io_manager_key="model_io_manager",
        code_version="2",
        owners=["team:kws-ml"],
        description="The DS-CNN (kws_model's shape, model settings) distilled from "
        "embedding_model: trained on the teacher head's posteriors at distill.temperature "
        "(alpha) plus the hard labels (1 - alpha), matched to mfcc_table by clip id, "
        "early-stopped on the validation hard labels. device_model ships it when "
        "distill.enabled (else this asset passes kws_model through). Metadata compares "
        "student, kws_model and teacher per split.",
    )(student_model)


def student_model(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    mfcc_table: pl.LazyFrame,
    embedding_table: pl.LazyFrame,
    embedding_model: ModelCheckpoint,
    kws_model: ModelCheckpoint,
    model_io_manager: dg.ResourceParam[dg.IOManager],
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
    if embedding_model.family != SPEECH_EMBEDDING.name:
        raise dg.Failure(
            f"the teacher must be a {SPEECH_EMBEDDING.name} checkpoint, got "
            f"{embedding_model.family!r}",
            allow_retries=False,
        )
    settings_ = family_settings(cfg)
    try:
        spec, data = normalised_data(settings_, mfcc_table, "student_model")
    except EmptySplitError as err:
        raise dg.Failure(str(err), allow_retries=False) from err
    # the teacher's logits (any temperature later) for every embedding row, matched by clip id
    teacher_ids, teacher_logits = table_logits(
        SPEECH_EMBEDDING.network(embedding_model), embedding_table, column=SPEECH_EMBEDDING.column
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
    # A re-run starts from the previous student (train.warm_from_previous: the same network
    # already distilled from a teacher on nearly the same labels) on the warm budget; else
    # kws_model is the same network on the same table: starting from it, the student needs a
    # third of the epochs (distill.warm_start); a kws_model of another shape trains it afresh
    budget = cfg.train.for_dscnn()
    previous, source = previous_checkpoint(context, model_io_manager, cfg.train.warm_from_previous)
    own = MFCC_DSCNN.warm_start(settings_, previous)
    warm = own.state
    if warm is not None:
        budget = budget.warm()
    elif cfg.distill.warm_start:
        warm = warm_state(kws_model, settings_, spec)
        budget = budget if warm is None else budget.within(cfg.distill.warm_epochs)
    context.log.info(
        f"warm start from the previous student_model: {own.reason}"
        if own.warm
        else f"not from the previous student_model ({source.get('problem') or own.reason}); "
        + ("from kws_model" if warm is not None else "from scratch")
    )
    result = train_student(
        **data.train_inputs(),
        teacher_logits=soft["train"],
        labels=labels,
        model_settings=cfg.model,
        train_settings=budget,
        distill=cfg.distill,
        log=context.log.info,
        augment=MfccAugment.from_settings(cfg.train.spec_augment),
        initial_state=warm,
        replay=own.replay(labels, cfg.train.warm_replay),
    )
    trained = Trained.scored(
        result,
        data,
        lambda accuracy: dscnn_checkpoint(settings_, spec, result, accuracy),
        {
            "warm_start": own.as_dict()
            | ({"started_from": "kws_model"} if warm is not None and not own.warm else {})
        },
    )
    checkpoint = with_warm_start(trained, source)
    context.add_output_metadata(
        {
            "distilled": True,
            **training_metadata(trained, labels),
            **{f"kws_model_accuracy_{split}": value for split, value in kws_model.accuracy.items()},
            **{
                f"teacher_accuracy_{split}": value
                for split, value in embedding_model.accuracy.items()
            },
            "teacher_agreement": dg.MetadataValue.json(_agreement(result.model, data, soft)),
            "train_rows_without_teacher": without_teacher,
            **warm_start_metadata(checkpoint),
            "warm_started_from_kws_model": warm is not None and not own.warm,
            "temperature": cfg.distill.temperature,
            "alpha": cfg.distill.alpha,
        }
    )
    return checkpoint


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
