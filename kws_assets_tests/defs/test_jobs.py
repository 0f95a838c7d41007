"""Jobs select asset groups; each job still runs exactly the assets it ran when they were
hand-kept name lists (the sets below are those lists, written out once as the expectation), plus
the assets added to those groups since (RELEASES: each family's artifact with its evaluated
operating point, in the ship group; MICRO: the micro_wake_word family's table, model and
artifact, in the features, train and ship groups; NEGATIVES: the negative material and the
embedding family's view of it, in the features group; REVIEW: the review queue, re-ranked after
every retrain and on its own by the review job)."""

from __future__ import annotations

from kws_assets.definitions import build_definitions
from kws_assets.defs import jobs
from kws_assets_tests.pipeline_runs import job_assets

RETRAIN_BEFORE = {
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
}
RELEASES = {"mfcc_release", "speech_embedding_release", "micro_wake_word_release"}
MICRO = {"micro_table", "micro_model", "micro_artifact"}
NEGATIVES = {"negative_material", "embedding_negatives"}
REVIEW = {"review_queue"}
CURATE_BEFORE = {"validated_set", "quarantined_clips", "data_card"}
BEFORE = {
    jobs.INGEST_JOB: {"raw_corpus", "unknown_clips"},
    jobs.KEYWORD_JOB: {"synthetic_clips", "aligned_keywords"},
    jobs.CURATE_JOB: CURATE_BEFORE,
    jobs.RETRAIN_JOB: RETRAIN_BEFORE | RELEASES | MICRO | NEGATIVES | REVIEW,
    jobs.PIPELINE_JOB: CURATE_BEFORE | RETRAIN_BEFORE | RELEASES | MICRO | NEGATIVES | REVIEW,
    jobs.REVIEW_JOB: REVIEW,
}


def test_each_job_runs_the_assets_its_name_list_ran(tiny_config_file):
    defs = build_definitions(tiny_config_file)
    for job, before in BEFORE.items():
        assert job_assets(defs, job) == before, job
        assert defs.resolve_job_def(job) is not None
