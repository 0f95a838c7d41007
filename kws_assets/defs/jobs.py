"""Jobs and schedules: the units a user launches, and a sensor or schedule requests.

A Dagster job runs assets of one partition set at a time, so the graph is cut where the
partitioning changes:

=================  ==================================================  ==================
job                assets                                              partitioned by
=================  ==================================================  ==================
``ingest_batch``   raw_corpus, unknown_clips                           ``corpus_batches``
``keyword_clips``  synthetic_clips, aligned_keywords                   ``keywords``
``curate_dataset`` validated_set, quarantined_clips, data_card         -
``retrain_model``  augmented_clips, mfcc_table, kws_model,             -
                   quantized_model, evaluation
``kws_pipeline``   validated_set ... quantized_model (curate to ship)  -
=================  ==================================================  ==================

``nightly_retrain`` runs ``kws_pipeline`` at 03:00 over whatever partitions are materialized by
then; it is off by default (turn it on in the UI when the deployment should rebuild nightly).
"""

from __future__ import annotations

import dagster as dg

from kws_assets.lib.partitions import CORPUS_BATCHES, KEYWORDS

INGEST_JOB = "ingest_batch"
KEYWORD_JOB = "keyword_clips"
CURATE_JOB = "curate_dataset"
RETRAIN_JOB = "retrain_model"
PIPELINE_JOB = "kws_pipeline"
NIGHTLY_SCHEDULE = "nightly_retrain"
NIGHTLY_CRON = "0 3 * * *"

INGEST_ASSETS = ("raw_corpus", "unknown_clips")
KEYWORD_ASSETS = ("synthetic_clips", "aligned_keywords")
CURATE_ASSETS = ("validated_set", "quarantined_clips", "data_card")
RETRAIN_ASSETS = (
    "augmented_clips",
    "mfcc_table",
    "kws_model",
    "quantized_model",
    "evaluation",
    "embedding_table",
    "embedding_model",
    "embedding_artifact",
    "transfer_evaluation",
    "student_model",
    "device_model",
)

ingest_batch = dg.define_asset_job(
    INGEST_JOB,
    selection=dg.AssetSelection.assets(*INGEST_ASSETS),
    partitions_def=CORPUS_BATCHES,
    description="Ingest one corpus batch: its utterances and their _unknown_ word clips.",
)
keyword_clips = dg.define_asset_job(
    KEYWORD_JOB,
    selection=dg.AssetSelection.assets(*KEYWORD_ASSETS),
    partitions_def=KEYWORDS,
    description="One keyword's clips: espeak-ng synthesis and the aligned corpus occurrences.",
)
curate_dataset = dg.define_asset_job(
    CURATE_JOB,
    selection=dg.AssetSelection.assets(*CURATE_ASSETS),
    description="Quality gate, quarantine and splits over every materialized partition.",
)
retrain_model = dg.define_asset_job(
    RETRAIN_JOB,
    selection=dg.AssetSelection.assets(*RETRAIN_ASSETS),
    description="Augmentation, features, training of both model families, int8 quantization and "
    "evaluation (real speech and the held-out engine first) from the current validated set.",
)
kws_pipeline = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.assets(*CURATE_ASSETS, *RETRAIN_ASSETS),
    description="Curate, featurize, train and ship over every materialized partition.",
)

JOBS = [ingest_batch, keyword_clips, curate_dataset, retrain_model, kws_pipeline]

nightly_retrain = dg.ScheduleDefinition(
    name=NIGHTLY_SCHEDULE,
    job=kws_pipeline,
    cron_schedule=NIGHTLY_CRON,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Nightly rebuild: re-curate every materialized partition, retrain, re-quantize.",
)

SCHEDULES = [nightly_retrain]
