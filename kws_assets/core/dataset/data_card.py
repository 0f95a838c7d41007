"""The data card: a Markdown description of the dataset the pipeline made, from its tables.

Composition (per source, keyword, split; speaker counts), quality distributions (quantiles of
every metric), quarantine reasons, provenance and licenses, known limitations and the versions
of code and data it describes.  Every number is computed from the tables passed in; the
limitations are rules over those numbers plus what the pipeline's method cannot do.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import polars as pl

from kws_assets.core.corpus.ingest import rejected_rows, usable_rows
from kws_assets.core.dataset.curation import reason_table
from kws_assets.core.review.apply import review_summary
from kws_assets.core.speech.engines import REGISTRY as ENGINE_REGISTRY
from kws_assets.core.storage.atomic_files import write_file_atomic
from kws_assets.core.tables import QUALITY_COLUMNS
from kws_assets.core.text_safety import escape_cell, escape_markdown
from kws_assets.settings import (
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AudioSettings,
    CorpusSource,
    IngestSettings,
    OutlierSettings,
    QualitySettings,
    SplitSettings,
    TtsSettings,
)

PACKAGE = "kws_assets"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
CARD_METRICS = (*QUALITY_COLUMNS, "confidence", "outlier_score")
GENERATED_SOURCES = ("synthetic", "noise")
FEW_TRAIN_CLIPS = 50  # a label with fewer training clips than this is called out
FEW_EVAL_SPEAKERS = 10  # val/test with fewer speakers give noisy estimates
HIGH_QUARANTINE_FRACTION = 0.25
GIT_TIMEOUT_S = 5.0
EXAMPLES_SHOWN = 15
CARD_CONFIG_SECTIONS = ("keywords", "sources", "audio", "quality", "outliers", "splits", "ingest")
"""The config sections the card's config hash covers (what the dataset depends on)."""

CARD_FILE = "DATA_CARD.md"
"""The data card's file in the data_card asset's folder."""


@dataclass(frozen=True)
class CardVersions:
    """What the card describes: code (package version, git commit) and data (input versions)."""

    package_version: str
    git_commit: str | None
    git_dirty: bool | None
    config_hash: str
    data_versions: dict[str, str] = field(default_factory=dict)


def package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_state(folder: str | Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, has uncommitted changes) of the git work tree holding ``folder`` (default: this
    package), or (None, None) where there is no git or no repository."""
    where = str(folder or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def code_versions(config_hash: str, data_versions: dict[str, str]) -> CardVersions:
    """The versions a card describes: this package and work tree, the hash of the config's
    :data:`CARD_CONFIG_SECTIONS` (the caller hashes them: the core never sees the whole config)
    and the input data versions."""
    commit, dirty = git_state()
    return CardVersions(package_version(), commit, dirty, config_hash, dict(data_versions))


@dataclass(frozen=True)
class CardSettings:
    """The settings a data card describes, built by the caller from the config's sections: the
    labels, the sources, the clip format, the method's thresholds (quality gate, recording
    checks, outliers, splits) and the TTS engines with the one held out of training."""

    keywords: list[str]
    sources: list[CorpusSource]
    audio: AudioSettings
    quality: QualitySettings
    ingest: IngestSettings
    outliers: OutlierSettings
    splits: SplitSettings
    tts: TtsSettings
    held_out_engine: str

    @property
    def labels(self) -> list[str]:
        """Class labels in model output order: silence, unknown, then the keywords."""
        return [SILENCE_LABEL, UNKNOWN_LABEL, *self.keywords]


# ------------------------------------------------------------------------------------ rendering


def md_table(df: pl.DataFrame) -> str:
    """A polars DataFrame as a Markdown table."""
    if df.is_empty():
        return "_(none)_"
    header = "| " + " | ".join(escape_cell(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join([header, rule, *body])


def _cell(value: object) -> str:
    if value is None:
        return "–"  # noqa: RUF001 - the en dash of an empty Markdown table cell
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape_cell(value)  # corpus text (sources, licenses, labels, reasons) stays text


def speaker_engine(speaker: str) -> str | None:
    """The TTS engine a speaker id belongs to (``tts:en-us+f2`` -> espeak, ``flite:slt`` ->
    flite; each engine declares its speaker-id prefixes), None for a recorded speaker."""
    return ENGINE_REGISTRY.speaker_engine(speaker)


def engine_counts(table: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Clips and speakers per TTS engine (recorded speech under ``recorded``)."""
    if table.is_empty() or "speaker" not in table.columns:
        return {}
    engines = table.select(
        pl.col("speaker")
        .map_elements(lambda s: speaker_engine(s) or "recorded", return_dtype=pl.String)
        .alias("engine"),
        "speaker",
    )
    counts = engines.group_by("engine").agg(
        pl.len().alias("clips"), pl.col("speaker").n_unique().alias("speakers")
    )
    return {
        row["engine"]: {"clips": int(row["clips"]), "speakers": int(row["speakers"])}
        for row in counts.sort("engine").iter_rows(named=True)
    }


def engine_table(validated: pl.DataFrame, configured: list[str], held_out: str) -> pl.DataFrame:
    """Clips and speakers per engine, with a note for a configured engine that gave none."""
    counts = engine_counts(validated)
    rows = [
        {"engine": name, "clips": c["clips"], "speakers": c["speakers"], "note": ""}
        for name, c in counts.items()
    ]
    for name in configured:
        if name not in counts:
            note = (
                "held out: evaluation only"
                if name == held_out
                else "configured, no clips: not installed or no voice for the language"
            )
            rows.append({"engine": name, "clips": 0, "speakers": 0, "note": note})
    return pl.DataFrame(
        rows,
        schema={"engine": pl.String, "clips": pl.Int64, "speakers": pl.Int64, "note": pl.String},
    )


def _pivot_counts(
    df: pl.DataFrame, index: str, on: str, order: list[str] | None = None
) -> pl.DataFrame:
    if df.is_empty():
        return pl.DataFrame()
    pivot = (
        df.group_by(index, on)
        .len()
        .pivot(on=on, index=index, values="len")
        .fill_null(0)
        .sort(index)
    )
    columns = [c for c in (order or sorted(pivot.columns[1:])) if c in pivot.columns]
    pivot = pivot.select(index, *columns)
    return pivot.with_columns(pl.sum_horizontal(columns).alias("total"))


def composition_tables(validated: pl.DataFrame, labels: list[str]) -> dict[str, pl.DataFrame]:
    """Clip counts per label x source and label x split, and clips/speakers per split and source."""
    label_order = pl.Enum(labels)
    ordered = validated.with_columns(pl.col("label").cast(pl.String))
    by_source = _pivot_counts(ordered, "label", "source")
    by_split = _pivot_counts(ordered, "label", "split", ["train", "val", "test"])
    if not by_source.is_empty():
        by_source = by_source.sort(pl.col("label").cast(label_order, strict=False), "label")
        by_split = by_split.sort(pl.col("label").cast(label_order, strict=False), "label")
    per_split = (
        validated.group_by("split")
        .agg(pl.len().alias("clips"), pl.col("speaker").n_unique().alias("speakers"))
        .sort(pl.col("split").replace_strict({"train": 0, "val": 1, "test": 2}, default=3))
    )
    per_source = (
        validated.group_by("source")
        .agg(
            pl.len().alias("clips"),
            pl.col("speaker").n_unique().alias("speakers"),
            pl.col("label").n_unique().alias("labels"),
        )
        .sort("source")
    )
    return {
        "by_source": by_source,
        "by_split": by_split,
        "per_split": per_split,
        "per_source": per_source,
    }


def quality_quantiles(table: pl.DataFrame, metrics: tuple[str, ...] = CARD_METRICS) -> pl.DataFrame:
    """count, min, 5/25/50/75/95 % quantiles and max of each metric (nulls ignored)."""
    rows = []
    for metric in metrics:
        if metric not in table.columns:
            continue
        values = (
            table[metric].drop_nulls().drop_nans()
            if table[metric].dtype.is_float()
            else table[metric].drop_nulls()
        )
        row = {"metric": metric, "clips": values.len()}
        if values.len():
            # numeric columns only (QUALITY_COLUMNS): the scalars are numbers
            row["min"] = float(cast("float", values.min()))
            for q in QUANTILES:
                row[f"p{int(q * 100)}"] = float(
                    cast("float", values.quantile(q, interpolation="linear"))
                )
            row["max"] = float(cast("float", values.max()))
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _format_counts(validated: pl.DataFrame) -> pl.DataFrame:
    if "original_sample_rate" not in validated.columns or validated.is_empty():
        return pl.DataFrame()
    return (
        validated.group_by("source", "original_sample_rate", "original_bit_depth")
        .len()
        .rename({"len": "clips"})
        .sort("source", "original_sample_rate", "original_bit_depth", nulls_last=True)
    )


def provenance_table(
    corpus: pl.DataFrame, validated: pl.DataFrame, sources: list[CorpusSource]
) -> pl.DataFrame:
    """One row per source: kind, where it was read from, licenses, recordings, hours, clips kept."""
    usable = usable_rows(corpus)
    kept = dict(validated.group_by("source").len().iter_rows()) if validated.height else {}
    rows = []
    for source in sources:
        mine = usable.filter(pl.col("source") == source.name)
        licenses = sorted(set(mine["license"].drop_nulls().to_list())) or [
            getattr(source, "license", "")
        ]
        rows.append(
            {
                "source": source.name,
                "kind": source.kind,
                "root": getattr(source, "root", "generated under the storage root"),
                "license": ", ".join(x for x in licenses if x) or "unknown",
                "recordings": mine.height,
                "rejected": rejected_rows(corpus).filter(pl.col("source") == source.name).height,
                "hours": round(float(mine["duration_s"].sum() or 0.0) / 3600, 3),
                "clips_kept": kept.get(source.name, 0),
            }
        )
    for generated, license_ in (
        ("synthetic", "generated with espeak-ng (GPL-3.0 voice data)"),
        ("noise", "generated noise"),
    ):
        if kept.get(generated):
            rows.append(
                {
                    "source": generated,
                    "kind": "generated",
                    "root": "clip store",
                    "license": license_,
                    "recordings": 0,
                    "rejected": 0,
                    "hours": 0.0,
                    "clips_kept": kept[generated],
                }
            )
    return pl.DataFrame(rows, infer_schema_length=None)


def known_limitations(
    validated: pl.DataFrame,
    quarantined: pl.DataFrame,
    corpus: pl.DataFrame,
    labels: list[str],
    outliers: OutlierSettings,
) -> list[str]:
    """What a user of this dataset should know, derived from the tables and the method."""
    notes = []
    total = validated.height
    if total:
        generated = validated.filter(pl.col("source").is_in(GENERATED_SOURCES)).height
        share = generated / total
        notes.append(
            f"{share:.0%} of the clips ({generated} of {total}) are generated: espeak-ng "
            f"speech and coloured noise. Synthetic voices are not people; accuracy on them "
            f"overstates accuracy on real recordings."
        )
        train = validated.filter(pl.col("split") == "train")
        counts = dict(train.group_by("label").len().iter_rows())
        thin = [
            f"{escape_markdown(label)} ({counts.get(label, 0)})"
            for label in labels
            if counts.get(label, 0) < FEW_TRAIN_CLIPS
        ]
        if thin:
            notes.append(
                f"Labels with fewer than {FEW_TRAIN_CLIPS} training clips: {', '.join(thin)}."
            )
        for split in ("val", "test"):
            speakers = validated.filter(pl.col("split") == split)["speaker"].n_unique()
            if speakers < FEW_EVAL_SPEAKERS:
                notes.append(
                    f"The {split} split has {speakers} speaker(s): its accuracy is a noisy "
                    f"estimate of accuracy on new speakers."
                )
    languages = sorted(set(validated["language"].drop_nulls().to_list())) if total else []
    notes.append(
        f"Languages: {', '.join(escape_markdown(x) for x in languages) or 'none'}. Keyword clips "
        "from sentences are "
        f"cut around pocketsphinx (en-us model) forced alignments; misalignments that "
        f"pass the quality gate and the outlier check stay in the data."
    )
    seen = validated.height + quarantined.height
    if seen and quarantined.height / seen > HIGH_QUARANTINE_FRACTION:
        notes.append(
            f"{quarantined.height / seen:.0%} of everything seen was quarantined; the "
            f"corpus or the thresholds deserve a look (see Quarantine)."
        )
    if outliers.enabled:
        notes.append(
            f"Outlier scores (MFCC-statistics embedding, robust z-score > "
            f"{outliers.threshold:g}) cover keyword clips of keywords with at least "
            f"{outliers.min_clips} clips; _unknown_ and _silence_ are not scored."
        )
    notes.append(
        "SNR and speech ratio are estimates from frame energies (noise floor = low "
        "percentile); they read high for strongly non-stationary noise."
    )
    notes.append(
        "Splits are a stable hash of the speaker id (speaker-disjoint; a clip never "
        "changes split when data is added, except while fewer speakers than splits force "
        "the small-set rule); official split lists of corpora are not used."
    )
    if corpus.height and rejected_rows(corpus).height:
        notes.append(
            f"{rejected_rows(corpus).height} corpus entries could not be used at all "
            f"(listed under Quarantine, stage ingest)."
        )
    return notes


def render_data_card(
    validated: pl.DataFrame,
    quarantined: pl.DataFrame,
    corpus: pl.DataFrame,
    card: CardSettings,
    versions: CardVersions,
    synthetic_real: pl.DataFrame | None = None,
) -> str:
    """The data card as Markdown (see the module docstring); ``synthetic_real`` is the per-keyword
    gap of :func:`kws_assets.core.dataset.domain_gap.synthetic_real_gap`, when it was measured."""
    comp = composition_tables(validated, card.labels)
    seen = validated.height + quarantined.height
    speakers = validated["speaker"].n_unique() if validated.height else 0
    per_split = dict(
        zip(comp["per_split"]["split"].to_list(), comp["per_split"]["clips"].to_list(), strict=True)
    )
    lines = [
        "# Data card — keyword-spotting dataset",
        "",
        f"**{validated.height} clips** of {card.audio.clip_seconds:g} s "
        f"at {card.audio.sample_rate} Hz for {len(card.labels)} labels "
        f"({', '.join(escape_markdown(x) for x in card.labels)}), from **{speakers} speakers** "
        f"and {validated['source'].n_unique() if validated.height else 0} sources; "
        f"split train/val/test = {per_split.get('train', 0)}/{per_split.get('val', 0)}/"
        f"{per_split.get('test', 0)}. **{quarantined.height} quarantined** of {seen} seen "
        f"({(quarantined.height / seen if seen else 0):.1%}).",
        "",
        "## Versions",
        "",
        md_table(
            pl.DataFrame(
                {
                    "what": [
                        "package",
                        "git commit",
                        "config (relevant sections)",
                        *[f"data: {k}" for k in sorted(versions.data_versions)],
                    ],
                    "version": [
                        versions.package_version,
                        (versions.git_commit or "unknown")
                        + (" (uncommitted changes)" if versions.git_dirty else ""),
                        versions.config_hash,
                        *[versions.data_versions[k] for k in sorted(versions.data_versions)],
                    ],
                }
            )
        ),
        "",
        "## Composition",
        "",
        "Clips per label and source:",
        "",
        md_table(comp["by_source"]),
        "",
        "Clips per label and split:",
        "",
        md_table(comp["by_split"]),
        "",
        "Clips and speakers per split (speaker-disjoint):",
        "",
        md_table(comp["per_split"]),
        "",
        "Clips, speakers and labels per source:",
        "",
        md_table(comp["per_source"]),
        "",
        "Clips and speakers per TTS engine (each engine voice is a speaker of the split):",
        "",
        md_table(
            engine_table(
                validated,
                [*ENGINE_REGISTRY.always_on(), *[e.engine for e in card.tts.engines]],
                card.held_out_engine,
            )
        ),
        "",
        "## Quality",
        "",
        "Distribution of the per-clip metrics over the validated clips (confidence: aligned clips "
        "only; outlier score: keyword clips only):",
        "",
        md_table(quality_quantiles(validated)),
        "",
        "Format of the original recordings (sample rate, bit depth; none = generated or "
        "compressed):",
        "",
        md_table(_format_counts(validated)),
        "",
        *synthetic_real_section(synthetic_real),
        "## Quarantine",
        "",
        f"`quarantined_clips` holds {quarantined.height} row(s); by stage and reason:",
        "",
        md_table(reason_table(quarantined)),
        "",
        *review_section(validated, quarantined),
        "## Provenance and licenses",
        "",
        md_table(provenance_table(corpus, validated, card.sources)),
        "",
        "Every clip row keeps its source, speaker, origin id and — for corpus clips — the "
        "original path, license and format of the recording it was cut from.",
        "",
        "## Known limitations",
        "",
        *[
            f"- {note}"
            for note in known_limitations(
                validated, quarantined, corpus, card.labels, card.outliers
            )
        ],
        "",
        "## How it was made",
        "",
        f"- Keywords: {', '.join(escape_markdown(k) for k in card.keywords)}; `{UNKNOWN_LABEL}` "
        "from other words, "
        f"`{SILENCE_LABEL}` from noise.",
        f"- Quality gate: {_settings_text(card.quality.model_dump())}.",
        f"- Recording checks: {_settings_text(card.ingest.model_dump())}.",
        f"- Outliers: {_settings_text(card.outliers.model_dump())}.",
        f"- Splits: {_settings_text(card.splits.model_dump())}.",
        "",
    ]
    return "\n".join(lines)


def review_section(validated: pl.DataFrame, quarantined: pl.DataFrame) -> list[str]:
    """The card's "Human review" section: how many clips people heard, and per reason the clip
    was queued (``kws review``), how many they kept, relabelled and rejected."""
    summary = review_summary(validated, quarantined)
    if summary.is_empty():
        return ["## Human review", "", "No clip has been reviewed by a person yet.", ""]
    reviewed = int(summary["reviewed"].sum())
    changed = int(summary["relabelled"].sum())
    return [
        "## Human review",
        "",
        f"**{reviewed} clip(s) reviewed** by a person; {changed} label(s) changed and "
        f"{int(summary['rejected'].sum())} clip(s) rejected. Per reason the clip was queued:",
        "",
        md_table(summary),
        "",
    ]


GAP_WARNING_RATIO = 5.0
"""A synthetic-vs-real distance above this many times the real-halves distance is flagged."""


def synthetic_real_section(gap: pl.DataFrame | None) -> list[str]:
    """The card's "Synthetic vs recorded speech" section (empty when the gap was not measured)."""
    if gap is None:
        return []
    lines = [
        "## Synthetic vs recorded speech",
        "",
        "Per keyword, the Fréchet distance between Gaussian fits of per-clip MFCC summaries "
        "(mean and std of each coefficient, standardised over both sets) of the synthetic "
        "clips and of the clips cut from recorded corpora, beside the distance between two "
        "halves of the recorded clips — the noise floor of the estimate. Null: fewer than 5 "
        "clips on a side.",
        "",
        md_table(gap),
        "",
    ]
    measured = gap.filter(
        pl.col("frechet_synthetic_real").is_not_null()
        & pl.col("frechet_real_halves").is_not_null()
        & (pl.col("frechet_real_halves") > 0)
    )
    if measured.height:
        ratio = (measured["frechet_synthetic_real"] / measured["frechet_real_halves"]).to_list()
        far = [
            k
            for k, r in zip(measured["keyword"].to_list(), ratio, strict=True)
            if r > GAP_WARNING_RATIO
        ]
        lines += [
            f"Median synthetic-vs-real distance: {float(np.median(ratio)):.1f}x the "
            f"real-halves distance."
            + (
                f" Furthest from the recordings (over {GAP_WARNING_RATIO:g}x): "
                f"{', '.join(escape_markdown(k) for k in far)} — what the model learns from their "
                "synthetic clips may "
                f"not transfer to real speakers."
                if far
                else ""
            ),
            "",
        ]
    else:
        lines += [
            "No keyword has enough recorded clips to compare: the dataset's keyword "
            "clips are synthetic only, so nothing here says how they compare to real "
            "speech.",
            "",
        ]
    return lines


def _settings_text(values: dict) -> str:
    return ", ".join(f"{k}={escape_markdown(v)}" for k, v in values.items())


def write_card(path: str | Path, card: str) -> Path:
    """Write the card to ``path`` atomically (temporary file in the same folder, then rename)."""
    return write_file_atomic(path, card)
