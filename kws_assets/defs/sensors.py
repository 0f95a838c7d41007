"""Sensors: how a running deployment notices new work without anyone clicking.

1. ``landing_zone_sensor`` — new corpus batches.  Lists the configured sources and the landing
   zone (a folder or ``s3://`` prefix); registers a ``corpus_batches`` partition per new batch and
   requests its ``ingest_batch`` run; a batch whose manifest changed less than
   ``automation.landing_settle_s`` seconds ago is deferred (logged) to a later tick.  Its cursor
   holds each requested batch's fingerprint, so a batch is requested once, a corrected manifest
   is requested again, and any number of batches landing between two ticks are all requested on
   the next one.  A landed batch's run carries the hash of the manifest scanned
   (``kws/manifest_fingerprint``): ``raw_corpus`` refuses a batch whose manifest changed since.
2. ``keyword_sensor`` — keyword changes in ``kws.yaml``.  Re-reads the config each tick, adds a
   ``keywords`` partition per new keyword and requests its ``keyword_clips`` run; a keyword
   removed from the config has its partition deleted (the config is the source of truth).
3. ``retrain_on_validated_data`` — the data flywheel.  An asset sensor on ``validated_set``:
   new validated data requests ``retrain_model`` (features, training, int8 quantization), unless
   a model was already trained after that data (e.g. by ``kws_pipeline``, which does both).
4. ``apply_review_decisions`` — people's decisions (``kws review``).  Counts the objects of the
   ``review_decisions`` table (append-only: one object per decision); when there are more than
   at the last tick it requests ``curate_dataset``, whose ``validated_set`` applies them (a
   confirmed field false wake becomes a hard negative) — and sensor 3 then retrains on it.
5. ``kws_automation`` — evaluates the assets' ``AutomationCondition``s: ``unknown_clips``,
   ``aligned_keywords`` and ``validated_set`` are ``eager``, so corpus or keyword changes flow
   through to a new validated set (and from there, through sensor 3, to a new model).

All of them start **stopped**: a fresh ``dagster dev`` after ``make demo`` runs nothing until a
user turns a sensor on (Automation tab in the UI, or ``dagster sensor start``).
"""

from __future__ import annotations

import dagster as dg

from kws_assets.config import landing_zone, load_config
from kws_assets.core.corpus.batches import keyword_changes
from kws_assets.core.corpus.landing import (
    BatchCursor,
    configured_batches,
    landed_batches,
    landing_scan,
)
from kws_assets.core.families.speech_embedding import SPEECH_EMBEDDING
from kws_assets.core.review.decisions import DECISIONS_PREFIX
from kws_assets.defs.jobs import (
    CURATE_JOB,
    INGEST_JOB,
    KEYWORD_JOB,
    RETRAIN_JOB,
    curate_dataset,
    ingest_batch,
    keyword_clips,
    retrain_model,
)
from kws_assets.lib.partitions import (
    CORPUS_BATCHES,
    CORPUS_BATCHES_PARTITION,
    KEYWORDS,
    KEYWORDS_PARTITION,
)
from kws_assets.lib.resources import KwsSettings, storage_resources
from kws_assets.settings import KwsConfig

LANDING_SENSOR = "landing_zone_sensor"
KEYWORD_SENSOR = "keyword_sensor"
RETRAIN_SENSOR = "retrain_on_validated_data"
REVIEW_SENSOR = "apply_review_decisions"
AUTOMATION_SENSOR = "kws_automation"
BATCH_FINGERPRINT_TAG = "kws/batch_fingerprint"
# The hash of the exact manifest bytes the sensor scanned (landed batches only): raw_corpus
# refuses to ingest a batch whose manifest is no longer these bytes.
MANIFEST_FINGERPRINT_TAG = "kws/manifest_fingerprint"
MODEL_ASSET = dg.AssetKey(SPEECH_EMBEDDING.model.key)  # trained whatever families lists
VALIDATED_ASSET = dg.AssetKey("validated_set")


def _fresh_config(settings: KwsSettings) -> KwsConfig:
    """The config as it is on disk now (sensors must see edits without a code reload)."""
    return load_config(settings.config_path or None)


def landing_zone_tick(context: dg.SensorEvaluationContext, cfg: KwsConfig) -> dg.SensorResult:
    """One evaluation of the landing-zone sensor (separate from the decorator for tests)."""
    cursor = BatchCursor.from_json(context.cursor)
    # automation.landing_settle_s; s3:// through storage's S3 settings
    scan = landing_scan(landing_zone(cfg))
    for deferred in scan.deferred:
        context.log.info(
            f"landing zone: deferred {deferred.folder} to a later tick: "
            f"{deferred.reason}: {deferred.detail}"
        )
    batches = configured_batches(
        cfg.sources, cfg.keywords, cfg.language, cfg.audio.sample_rate
    ) + landed_batches(scan, cfg.keywords)
    for problem in scan.problems:
        context.log.warning(
            f"landing zone: skipped {problem.folder}: {problem.reason}: {problem.detail}"
        )
    pending = cursor.pending(batches)
    if not pending:
        return dg.SensorResult(
            skip_reason=f"no new or changed batch among {len(batches)}", cursor=cursor.to_json()
        )
    registered = set(context.instance.get_dynamic_partitions(CORPUS_BATCHES_PARTITION))
    new_keys = [b.key for b in pending if b.key not in registered]
    manifests = {b.key: b.fingerprint for b in scan.batches}
    run_requests = []
    for b in pending:
        tags = {BATCH_FINGERPRINT_TAG: b.fingerprint}
        if b.key in manifests:
            tags[MANIFEST_FINGERPRINT_TAG] = manifests[b.key]
        run_requests.append(
            dg.RunRequest(
                run_key=f"{b.key}@{b.fingerprint}",
                job_name=INGEST_JOB,
                partition_key=b.key,
                tags=tags,
            )
        )
    for b in pending:
        context.log.info(
            f"batch {b.key} ({b.origin}), fingerprint {b.fingerprint}: requesting ingestion"
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[CORPUS_BATCHES.build_add_request(new_keys)]
        if new_keys
        else [],
        cursor=cursor.mark(pending).to_json(),
    )


def keyword_tick(context: dg.SensorEvaluationContext, cfg: KwsConfig) -> dg.SensorResult:
    """One evaluation of the keyword sensor."""
    registered = context.instance.get_dynamic_partitions(KEYWORDS_PARTITION)
    added, removed = keyword_changes(cfg.keywords, registered)
    cursor = ",".join(cfg.keywords)
    if not added and not removed:
        return dg.SensorResult(
            skip_reason=f"keyword partitions match the config ({len(cfg.keywords)})", cursor=cursor
        )
    requests: list = []
    if added:
        requests.append(KEYWORDS.build_add_request(added))
        context.log.info(f"new keywords: {added}")
    if removed:
        requests.append(KEYWORDS.build_delete_request(removed))
        context.log.info(f"keywords no longer in the config, partitions deleted: {removed}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(job_name=KEYWORD_JOB, partition_key=k) for k in added],
        dynamic_partitions_requests=requests,
        cursor=cursor,
    )


def _latest_storage_id(context: dg.SensorEvaluationContext, key: dg.AssetKey) -> int | None:
    records = context.instance.fetch_materializations(key, limit=1).records
    return records[0].storage_id if records else None


def retrain_tick(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.SkipReason | dg.RunRequest:
    """A retrain request for new validated data, unless a model is already newer than it.

    "Newer" compares event-log storage ids, which strictly increase (timestamps can tie).
    """
    validated_id = _latest_storage_id(context, VALIDATED_ASSET)
    model_id = _latest_storage_id(context, MODEL_ASSET)
    if model_id is not None and validated_id is not None and model_id > validated_id:
        return dg.SkipReason(
            f"{MODEL_ASSET.to_user_string()} was trained after this validated_set "
            f"(run {asset_event.run_id})"
        )
    return dg.RunRequest(
        run_key=f"validated_set@{validated_id}",
        job_name=RETRAIN_JOB,
        tags={"kws/trigger": "validated_set", "kws/validated_run": asset_event.run_id},
    )


def review_tick(context: dg.SensorEvaluationContext, cfg: KwsConfig) -> dg.SensorResult:
    """A curate request when the review_decisions table holds more decisions than at the last
    tick (the cursor: how many it held then; the table only grows, so a smaller count means it
    was pruned and is taken as the new start)."""
    clips = storage_resources(cfg)["clip_store"].open_objects()
    count = sum(k.endswith(".json") for k in clips.list_keys(DECISIONS_PREFIX))
    seen = int(context.cursor or 0)
    if count <= seen:
        return dg.SensorResult(
            skip_reason=f"no new review decision ({count} recorded)", cursor=str(count)
        )
    context.log.info(f"{count - seen} new review decision(s): requesting {CURATE_JOB}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"review_decisions@{count}",
                job_name=CURATE_JOB,
                tags={"kws/trigger": "review_decisions"},
            )
        ],
        cursor=str(count),
    )


def build_sensors(cfg: KwsConfig) -> list[dg.SensorDefinition]:
    """The five sensors, ticking at most every ``automation.sensor_interval_s`` seconds."""
    interval = cfg.automation.sensor_interval_s
    stopped = dg.DefaultSensorStatus.STOPPED

    @dg.sensor(
        name=LANDING_SENSOR,
        jobs=[ingest_batch],
        minimum_interval_seconds=interval,
        default_status=stopped,
        description="New corpus batches (configured sources and landing-zone folders with a "
        "manifest): registers a corpus_batches partition, requests ingestion.",
    )
    def landing_zone_sensor(
        context: dg.SensorEvaluationContext, settings: KwsSettings
    ) -> dg.SensorResult:
        return landing_zone_tick(context, _fresh_config(settings))

    @dg.sensor(
        name=KEYWORD_SENSOR,
        jobs=[keyword_clips],
        minimum_interval_seconds=interval,
        default_status=stopped,
        description="Keywords added to (removed from) the config: adds (deletes) keywords "
        "partitions and requests the new keywords' clips.",
    )
    def keyword_sensor(
        context: dg.SensorEvaluationContext, settings: KwsSettings
    ) -> dg.SensorResult:
        return keyword_tick(context, _fresh_config(settings))

    @dg.asset_sensor(
        name=RETRAIN_SENSOR,
        asset_key=VALIDATED_ASSET,
        job=retrain_model,
        minimum_interval_seconds=interval,
        default_status=stopped,
        description="New validated data requests retraining and re-quantization.",
    )
    def retrain_on_validated_data(
        context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
    ) -> dg.SkipReason | dg.RunRequest:
        return retrain_tick(context, asset_event)

    @dg.sensor(
        name=REVIEW_SENSOR,
        jobs=[curate_dataset],
        minimum_interval_seconds=interval,
        default_status=stopped,
        description="New decisions in review_decisions (kws review) request curate_dataset, "
        "whose validated_set applies them.",
    )
    def apply_review_decisions(
        context: dg.SensorEvaluationContext, settings: KwsSettings
    ) -> dg.SensorResult:
        return review_tick(context, _fresh_config(settings))

    automation = dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        minimum_interval_seconds=interval,
        default_status=stopped,
        description="Evaluates the eager automation conditions of unknown_clips, "
        "aligned_keywords and validated_set.",
    )
    return [
        landing_zone_sensor,
        keyword_sensor,
        retrain_on_validated_data,
        apply_review_decisions,
        automation,
    ]
