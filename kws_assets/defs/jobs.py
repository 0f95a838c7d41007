"""Jobs and schedules: the units a user launches, and a sensor or schedule requests.

A Dagster job runs assets of one partition set at a time, so the graph is cut where the
partitioning changes:

=================  ==============================  =============================  ==================
job                groups                          assets (today)                 partitioned by
=================  ==============================  =============================  ==================
``ingest_batch``   ingest                          raw_corpus, unknown_clips      ``corpus_batches``
``keyword_clips``  keyword_clips                   synthetic_clips,               ``keywords``
                                                   aligned_keywords
``curate_dataset`` curate                          validated_set,                 -
                                                   quarantined_clips, data_card
``retrain_model``  features, train, ship, review   augmented_clips ... the        -
                                                   artifacts and evaluations,
                                                   review_queue
``kws_pipeline``   curate, features, train, ship,  curate to review               -
                   review
``review_clips``   review                          review_queue                   -
=================  ==============================  =============================  ==================

Each job selects asset groups (``dg.AssetSelection.groups``), not a list of names: a new asset
joins the job of its group.  ``kws_assets_tests/defs/test_jobs.py`` pins each job's assets.

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
REVIEW_JOB = "review_clips"
NIGHTLY_SCHEDULE = "nightly_retrain"
NIGHTLY_CRON = "0 3 * * *"

# Asset groups (each asset's ``group_name``): a job is the groups it runs, so an asset added to a
# group joins its job without a list to keep in step.
INGEST_GROUP = "ingest"
KEYWORD_GROUP = "keyword_clips"
CURATE_GROUP = "curate"
REVIEW_GROUP = "review"
# The review queue is re-ranked after every retrain: a new teacher contradicts other labels.
RETRAIN_GROUPS = ("features", "train", "ship", REVIEW_GROUP)

ingest_batch = dg.define_asset_job(
    INGEST_JOB,
    selection=dg.AssetSelection.groups(INGEST_GROUP),
    partitions_def=CORPUS_BATCHES,
    description="Ingest one corpus batch: its utterances and their _unknown_ word clips.",
)
keyword_clips = dg.define_asset_job(
    KEYWORD_JOB,
    selection=dg.AssetSelection.groups(KEYWORD_GROUP),
    partitions_def=KEYWORDS,
    description="One keyword's clips: espeak-ng synthesis and the aligned corpus occurrences.",
)
curate_dataset = dg.define_asset_job(
    CURATE_JOB,
    selection=dg.AssetSelection.groups(CURATE_GROUP),
    description="Quality gate, quarantine and splits over every materialized partition.",
)
retrain_model = dg.define_asset_job(
    RETRAIN_JOB,
    selection=dg.AssetSelection.groups(*RETRAIN_GROUPS),
    description="Augmentation, features, training of both model families, int8 quantization and "
    "evaluation (real speech and the held-out engine first) from the current validated set; "
    "then the review queue ranked with the new teacher.",
)
kws_pipeline = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.groups(CURATE_GROUP, *RETRAIN_GROUPS),
    description="Curate, featurize, train and ship over every materialized partition.",
)

review_clips = dg.define_asset_job(
    REVIEW_JOB,
    selection=dg.AssetSelection.groups(REVIEW_GROUP),
    description="Rank the clips a person should hear (review_queue) from the current validated "
    "set and teacher model; then `kws review` serves them.",
)

JOBS = [ingest_batch, keyword_clips, curate_dataset, retrain_model, kws_pipeline, review_clips]

nightly_retrain = dg.ScheduleDefinition(
    name=NIGHTLY_SCHEDULE,
    job=kws_pipeline,
    cron_schedule=NIGHTLY_CRON,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Nightly rebuild: re-curate every materialized partition, retrain, re-quantize.",
)

SCHEDULES = [nightly_retrain]
