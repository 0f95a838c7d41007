"""Ingest: the raw corpus, its forced-aligned keyword clips, and the synthetic TTS clips."""


import dagster as dg
import polars as pl

from kws_assets.core import corpus, segment, synthesis
from kws_assets.core.alignment import Aligner
from kws_assets.core.curation import clip_table
from kws_assets.defs.assets.summaries import label_counts_md, md_table
from kws_assets.defs.resources import ClipStoreResource, KwsSettings

GROUP = "ingest"
MAX_LISTED = 50


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    code_version="1",
    owners=["team:kws-data"],
    description="Paired audio + transcripts, one row per utterance, from every configured source "
                "(the demo corpus is generated once with espeak-ng). Data version = content hash.",
)
def raw_corpus(context: dg.AssetExecutionContext, settings: KwsSettings) -> dg.Output[pl.DataFrame]:
    cfg = settings.config
    utterances, problems = corpus.load_corpus(cfg)
    table = corpus.corpus_table(utterances)
    if problems:
        context.log.warning(f"{len(problems)} corpus rows could not be used; see metadata")
    per_source = table.group_by("source").len().sort("source")
    return dg.Output(
        table,
        data_version=dg.DataVersion(corpus.content_version(table)),
        metadata={
            "utterances": len(utterances),
            "speakers": table["speaker"].n_unique() if table.height else 0,
            "hours": round(float(table["duration_s"].sum() or 0.0) / 3600, 4),
            "per_source": dg.MetadataValue.md(md_table(per_source)),
            "problems": len(problems),
            "problem_files": dg.MetadataValue.json(
                [p.__dict__ for p in problems[:MAX_LISTED]]),
        },
    )


@dg.asset(
    group_name=GROUP,
    kinds={"espeak-ng", "parquet"},
    code_version="1",
    owners=["team:kws-data"],
    description="Each keyword spoken by espeak-ng over the voice x rate x pitch grid, centred in "
                "1-s clips, plus copies with coloured background noise at a random SNR.",
)
def synthetic_clips(context: dg.AssetExecutionContext, settings: KwsSettings,
                    clip_store: ClipStoreResource) -> pl.DataFrame:
    cfg = settings.config
    recipes = synthesis.keyword_recipes(cfg.keywords, cfg.tts, cfg.noise,
                                        salt=cfg.section_hash("audio"))
    rows, failures = synthesis.render_to_store(recipes, cfg.audio, clip_store.store, cfg.language)
    table = clip_table(rows)
    context.add_output_metadata({
        "clips": table.height,
        "voices": len(cfg.tts.voices),
        "per_label": dg.MetadataValue.md(label_counts_md(table)),
        "render_failures": len(failures),
        "failed_recipes": dg.MetadataValue.json([f.__dict__ for f in failures[:MAX_LISTED]]),
        "sample_clips": dg.MetadataValue.json(table["uri"].head(5).to_list()),
    })
    return table


@dg.asset(
    group_name=GROUP,
    kinds={"pocketsphinx", "parquet"},
    code_version="1",
    owners=["team:kws-data"],
    description="Forced alignment of raw_corpus with pocketsphinx; 1-s clips centred on every "
                "keyword occurrence plus non-keyword words as _unknown_. Utterances that cannot "
                "be aligned and out-of-dictionary words are listed in the metadata.",
)
def aligned_keywords(context: dg.AssetExecutionContext, settings: KwsSettings,
                     clip_store: ClipStoreResource, raw_corpus: pl.DataFrame) -> pl.DataFrame:
    cfg = settings.config
    aligner = Aligner(sample_rate=cfg.audio.sample_rate, pad_seconds=cfg.alignment.pad_seconds)
    rows, failures, g2p_words = segment.align_utterances(
        list(raw_corpus.iter_rows(named=True)), cfg.keywords, aligner, clip_store.store,
        cfg.audio, cfg.alignment)
    table = clip_table(rows)
    oov = sorted({w for f in failures for w in f.oov_words})
    if failures:
        context.log.warning(f"{len(failures)} of {raw_corpus.height} utterances not aligned")
    context.add_output_metadata({
        "clips": table.height,
        "utterances_aligned": raw_corpus.height - len(failures),
        "utterances_failed": len(failures),
        "per_label": dg.MetadataValue.md(label_counts_md(table)),
        "out_of_dictionary_words": dg.MetadataValue.json(oov),
        "g2p_pronunciations": dg.MetadataValue.json(g2p_words),
        "failed_utterances": dg.MetadataValue.json([f.__dict__ for f in failures[:MAX_LISTED]]),
    })
    return table
