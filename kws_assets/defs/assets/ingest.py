"""Ingest: the raw corpus, its forced-aligned keyword clips, and the synthetic TTS clips.

Per corpus batch (``corpus_batches``): ``raw_corpus`` and ``unknown_clips``.  Per keyword
(``keywords``): ``synthetic_clips`` and ``aligned_keywords``.  See ``kws_assets.lib.partitions``.
"""

from typing import Any

import dagster as dg
import polars as pl

from kws_assets.config import corpus_reading, landing_zone
from kws_assets.core.corpus import ingest as corpus
from kws_assets.core.corpus import labeled_clips, segment
from kws_assets.core.corpus.batches import keyword_seed
from kws_assets.core.corpus.landing import (
    LandedBatchChanged,
    configured_source,
    ensure_batch_unchanged,
    landed_batch_for_run,
    landed_batch_source,
)
from kws_assets.core.dataset import curation, engine_voices, synthesis
from kws_assets.core.dataset.curation import clip_candidates, clip_table
from kws_assets.core.dataset.data_card import engine_counts
from kws_assets.core.parallel import progress_reporter, resolve_workers
from kws_assets.core.speech.aligners import AlignerChoice
from kws_assets.defs.sensors import MANIFEST_FINGERPRINT_TAG
from kws_assets.lib.metadata import label_counts_table, metadata_table
from kws_assets.lib.partitions import (
    CORPUS_BATCHES,
    KEYWORDS,
    ONE_PARTITION_PER_RUN,
    all_partitions_of,
    loaded_partitions,
    missing_partitions,
)
from kws_assets.lib.resources import ClipStoreResource, KwsSettings
from kws_assets.lib.retries import fail_fast_on_permanent_errors
from kws_assets.settings import UNKNOWN_LABEL

GROUP = "ingest"
KEYWORD_GROUP = "keyword_clips"  # per keyword; a group of its own so its job selects it
MAX_LISTED = 50
ALIGNMENT_CACHE_DIR = ("cache", "alignments")
"""Under storage.root: each recording's alignment by aligner, recording and transcript, so a
re-run (a keyword changed) aligns only the recordings it has not aligned before."""
REJECTED_ENTRY_COLUMNS = ["source", "original_path", "reject_reason", "reject_detail"]


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    code_version="3",
    owners=["team:kws-data"],
    partitions_def=CORPUS_BATCHES,
    backfill_policy=ONE_PARTITION_PER_RUN,
    description="Per corpus batch (a configured source, or a folder that landed in the landing "
    "zone): one row per corpus entry (manifest, Common Voice, "
    "LibriSpeech, Speech Commands; local or s3://; the demo corpus is generated once "
    "with espeak-ng): provenance, format, sha256 and levels. Entries that cannot be "
    "used stay as rows with reject_reason and reach quarantined_clips (stage ingest). "
    "Data version = content hash; unchanged files are not read again.",
)
def raw_corpus(context: dg.AssetExecutionContext, settings: KwsSettings) -> dg.Output[pl.DataFrame]:
    cfg, key = settings.config, context.partition_key
    zone = landing_zone(cfg)
    try:
        # A landed batch is checked against the manifest the sensor scanned, before and after
        # loading: a batch replaced or deleted meanwhile is not ingested half-old, half-new.
        landed = landed_batch_for_run(zone, key, context.run.tags.get(MANIFEST_FINGERPRINT_TAG))
        source = (
            configured_source(cfg.sources, key)
            if landed is None
            else landed_batch_source(zone, landed, cfg.language)
        )
        with fail_fast_on_permanent_errors():  # S3 outages on the corpus root: step retry
            loaded = corpus.load_corpus([source], corpus_reading(cfg))
        if landed is not None:
            ensure_batch_unchanged(zone, landed)
    except LandedBatchChanged as exc:
        raise dg.Failure(
            description=f"batch {key} not ingested: {exc.problem.reason}: {exc.problem.detail}",
            metadata={"reason": exc.problem.reason, "folder": exc.problem.folder},
            allow_retries=False,
        ) from exc
    summary = corpus.ingest_summary(loaded.table, loaded.stats)
    if summary["rejected"]:
        context.log.warning(
            f"{summary['rejected']} corpus entries cannot be used "
            f"({summary['rejected_by_reason']}); see quarantined_clips"
        )
    return dg.Output(
        loaded.table,
        data_version=dg.DataVersion(corpus.content_version(loaded.table)),
        metadata={
            **{
                k: summary[k]
                for k in (
                    "recordings",
                    "speakers",
                    "hours",
                    "labelled_clips",
                    "rejected",
                    "files_read",
                    "files_from_cache",
                    "mb_read",
                    "skipped_without_keyword",
                )
            },
            "per_source": metadata_table(summary["per_source"]),
            "rejected_by_reason": metadata_table(
                pl.DataFrame(
                    list(summary["rejected_by_reason"].items()),
                    schema={"reason": pl.String, "entries": pl.Int64},
                    orient="row",
                )
            ),
            "rejected_entries": metadata_table(
                summary["rejected_entries"][:MAX_LISTED], columns=REJECTED_ENTRY_COLUMNS
            ),
        },
    )


@dg.asset(
    group_name=KEYWORD_GROUP,
    kinds={"espeak-ng", "piper", "parquet"},
    code_version="3",
    owners=["team:kws-data"],
    partitions_def=KEYWORDS,
    backfill_policy=ONE_PARTITION_PER_RUN,
    description="Per keyword: the keyword spoken by espeak-ng over the voice x rate x pitch grid "
    "(plus noisy copies) and by sampled accent+variant speakers at drawn rate, pitch "
    "and word gap, alone or cut out of carrier phrases; with its phoneme neighbours "
    "and a share of other words as _unknown_; then the same words by every voice of the other "
    "TTS engines (tts.engines: flite, piper, festival — each voice a speaker, each "
    "render at a drawn rate/pitch and speaker perturbation), the held-out engine left "
    "out. Centred in 1-s clips.",
)
def synthetic_clips(
    context: dg.AssetExecutionContext, settings: KwsSettings, clip_store: ClipStoreResource
) -> pl.DataFrame:
    cfg = settings.config
    keyword = configured_keyword(cfg.keywords, context.partition_key)
    salt = cfg.section_hash("audio")
    recipes = synthesis.keyword_recipes(
        [keyword],
        cfg.tts,
        cfg.noise,
        seed=keyword_seed(keyword),
        salt=salt,
        **synthesis.recipe_options(
            cfg.language, cfg.negatives, cfg.keywords, cfg.evaluation.held_out_voices
        ),
    )
    others, skipped = engine_voices.partition_recipes(
        keyword,
        cfg.keywords,
        cfg.tts.engines,
        cfg.tts.perturbation,
        cfg.negatives,
        cfg.language,
        salt,
        held_out_engine=cfg.evaluation.held_out_engine,
    )
    for engine, reason in skipped.items():
        context.log.warning(f"TTS engine {engine} skipped: {reason}")
    rows, failures = synthesis.render_to_store(
        [*recipes, *others],
        cfg.audio,
        clip_store.store,
        cfg.language,
        workers=resolve_workers(cfg.compute.workers),
        progress=progress_reporter(context.log.info, "clips rendered"),
    )
    table = clip_table(
        rows + curation.render_dead_letters(failures, synthesis.SYNTHETIC_SOURCE, cfg.language)
    )
    context.add_output_metadata(
        {
            "keyword": keyword,
            "clips": table.height,
            "voices": len(cfg.tts.voices),
            "clips_by_engine": dg.MetadataValue.json(engine_counts(table)),
            "engines_skipped": dg.MetadataValue.json(skipped),
            "per_label": label_counts_table(clip_candidates(table)),
            "render_failures": len(failures),
            "failed_recipes": dg.MetadataValue.json([f.__dict__ for f in failures[:MAX_LISTED]]),
            "sample_clips": dg.MetadataValue.json(table["uri"].head(5).to_list()),
        }
    )
    return table


def configured_keyword(keywords: list[str], partition_key: str) -> str:
    """The keyword a ``keywords`` partition stands for; a clear failure if it is not configured."""
    if partition_key not in keywords:
        raise dg.Failure(
            f"keyword partition {partition_key!r} is not in the config's keywords "
            f"{keywords}: add it to kws.yaml, or delete the partition (the keyword "
            "sensor deletes partitions of removed keywords)",
            allow_retries=False,
        )
    return partition_key


def _corpus_of_every_batch(context: dg.AssetExecutionContext, raw_corpus: Any) -> pl.DataFrame:
    batches = loaded_partitions(context, "raw_corpus", raw_corpus)
    missing = missing_partitions(context, "raw_corpus", batches)
    if missing:
        context.log.warning(f"corpus batches not ingested yet, left out: {missing}")
    tables = [t for _, t in sorted(batches.items())]
    return (
        pl.concat(tables, how="diagonal_relaxed")
        if tables
        else pl.DataFrame(schema=corpus.CORPUS_SCHEMA)
    )


@dg.asset(
    group_name=KEYWORD_GROUP,
    kinds={"pocketsphinx", "parquet"},
    code_version="3",
    owners=["team:kws-data"],
    partitions_def=KEYWORDS,
    backfill_policy=ONE_PARTITION_PER_RUN,
    ins={"raw_corpus": all_partitions_of()},
    automation_condition=dg.AutomationCondition.eager(),
    description="Per keyword, over every corpus batch: forced alignment (pocketsphinx for "
    "English, espeak-ng TTS+DTW for other languages; alignment.aligners) of the "
    "utterances that mention the keyword, and a 1-s clip centred on each occurrence; "
    "recordings already labelled with the keyword (Speech Commands) are cut without "
    "alignment. Eager: re-cut when a batch is (re-)ingested, cut when a keyword is "
    "added. Unalignable utterances are dead-lettered once, by unknown_clips.",
)
def aligned_keywords(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    raw_corpus: Any,
) -> pl.DataFrame:
    cfg = settings.config
    keyword = configured_keyword(cfg.keywords, context.partition_key)
    recordings = _corpus_of_every_batch(context, raw_corpus)
    aligner = AlignerChoice(cfg.alignment, sample_rate=cfg.audio.sample_rate)  # per language
    to_align = corpus.rows_to_align(recordings).filter(
        pl.struct("transcript", "language").map_elements(
            lambda row: corpus.mentions_keyword(row["transcript"], [keyword], row["language"]),
            return_dtype=pl.Boolean,
        )
    )
    rows, failures, g2p_words = segment.align_utterances(
        list(to_align.iter_rows(named=True)),
        cfg.keywords,
        aligner,
        clip_store.store,
        cfg.audio,
        cfg.alignment,
        labels={keyword},
        workers=resolve_workers(cfg.compute.workers),
        progress=progress_reporter(context.log.info, "utterances aligned"),
        cache=segment.AlignmentCache(cfg.storage_path(*ALIGNMENT_CACHE_DIR)),
    )
    labelled, cut_failures = labeled_clips.cut_labeled_clips(
        list(
            corpus.labeled_rows(recordings)
            .filter(pl.col("clip_label") == keyword)
            .iter_rows(named=True)
        ),
        clip_store.store,
        cfg.audio,
        corpus.silence_windows_by_source(cfg.sources),
    )
    dead_letters = curation.recording_dead_letters(cut_failures, recordings, curation.STAGE_CLIP)
    table = corpus.attach_provenance(clip_table(rows + labelled + dead_letters), recordings)
    clips = clip_candidates(table)
    context.add_output_metadata(
        {
            "keyword": keyword,
            "clips": clips.height,
            "batches": recordings["source"].n_unique() if recordings.height else 0,
            "utterances_mentioning_keyword": to_align.height,
            "utterances_failed": len(failures),
            "labelled_clips": len(labelled),
            "dead_letters": len(dead_letters),
            "g2p_pronunciations": dg.MetadataValue.json(g2p_words),
            "sample_clips": dg.MetadataValue.json(clips["uri"].head(5).to_list()),
        }
    )
    return table


@dg.asset(
    group_name=GROUP,
    kinds={"pocketsphinx", "parquet"},
    code_version="1",
    owners=["team:kws-data"],
    partitions_def=CORPUS_BATCHES,
    backfill_policy=ONE_PARTITION_PER_RUN,
    automation_condition=dg.AutomationCondition.eager(),
    description="Per corpus batch, the clips that are not keywords: after forced alignment "
    "(pocketsphinx for English, espeak-ng TTS+DTW for other languages), "
    "non-keyword words cut as _unknown_; recordings labelled _unknown_ or "
    "_silence_ (Speech Commands) cut without alignment. The batch's dead letters ride "
    "along as rows with reject_reason: rejected corpus entries (stage ingest), "
    "utterances that cannot be aligned (stage alignment) and recordings that cannot be "
    "cut (stage clip); validated_set moves them to quarantined_clips.",
)
def unknown_clips(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    raw_corpus: pl.DataFrame,
) -> pl.DataFrame:
    cfg = settings.config
    aligner = AlignerChoice(cfg.alignment, sample_rate=cfg.audio.sample_rate)  # per language
    to_align = corpus.rows_to_align(raw_corpus)
    rows, failures, g2p_words = segment.align_utterances(
        list(to_align.iter_rows(named=True)),
        cfg.keywords,
        aligner,
        clip_store.store,
        cfg.audio,
        cfg.alignment,
        labels={UNKNOWN_LABEL},
        workers=resolve_workers(cfg.compute.workers),
        progress=progress_reporter(context.log.info, "utterances aligned"),
        cache=segment.AlignmentCache(cfg.storage_path(*ALIGNMENT_CACHE_DIR)),
    )
    labelled, cut_failures = labeled_clips.cut_labeled_clips(
        list(
            corpus.labeled_rows(raw_corpus)
            .filter(~pl.col("clip_label").is_in(cfg.keywords))
            .iter_rows(named=True)
        ),
        clip_store.store,
        cfg.audio,
        corpus.silence_windows_by_source(cfg.sources),
    )
    dead_letters = (
        curation.corpus_dead_letters(raw_corpus)
        + curation.recording_dead_letters(failures, raw_corpus, curation.STAGE_ALIGNMENT)
        + curation.recording_dead_letters(cut_failures, raw_corpus, curation.STAGE_CLIP)
    )
    table = corpus.attach_provenance(clip_table(rows + labelled + dead_letters), raw_corpus)
    clips = clip_candidates(table)
    oov = sorted({w for f in failures for w in f.oov_words})
    if failures:
        context.log.warning(f"{len(failures)} of {to_align.height} utterances not aligned")
    context.add_output_metadata(
        {
            "batch": context.partition_key,
            "clips": clips.height,
            "utterances_aligned": to_align.height - len(failures),
            "utterances_failed": len(failures),
            "labelled_clips": len(labelled),
            "dead_letters": len(dead_letters),
            "per_label": label_counts_table(clips),
            "out_of_dictionary_words": dg.MetadataValue.json(oov),
            "g2p_pronunciations": dg.MetadataValue.json(g2p_words),
            "failed_utterances": dg.MetadataValue.json([f.__dict__ for f in failures[:MAX_LISTED]]),
            "sample_clips": dg.MetadataValue.json(clips["uri"].head(5).to_list()),
        }
    )
    return table
