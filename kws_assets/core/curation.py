"""Curation: measure every clip, quarantine what fails, split the rest by speaker.

Bad data cascades, so it is caught here, before features and training: each clip gets its quality
metrics; a clip that breaks a threshold, cannot be read, or fails the table schema goes to the
quarantine table with a reason code and the numbers behind it.  Nothing is dropped silently: every
input row ends up in exactly one of the two outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import polars as pl

from kws_assets.config import SILENCE_LABEL, KwsConfig
from kws_assets.core import quality, schemas
from kws_assets.core.audio import AudioInfo, AudioReadError
from kws_assets.core.splits import assign_splits

QUALITY_COLUMNS = ("duration_s", "peak_dbfs", "rms_dbfs", "clipping_ratio", "dc_offset", "snr_db",
                   "speech_ratio")
CLIP_COLUMNS = {
    "clip_id": pl.String, "uri": pl.String, "label": pl.String, "source": pl.String,
    "speaker": pl.String, "language": pl.String, "origin_id": pl.String, "start_s": pl.Float64,
    "sample_rate": pl.Int64, "num_samples": pl.Int64,
}
QUARANTINE_COLUMNS = {
    "clip_id": pl.String, "source": pl.String, "uri": pl.String, "label": pl.String,
    "speaker": pl.String, "stage": pl.String, "reason": pl.String, "detail": pl.String,
}


def empty_clip_table() -> pl.DataFrame:
    return pl.DataFrame(schema=CLIP_COLUMNS)


def clip_table(rows: list[dict]) -> pl.DataFrame:
    """Rows of clip metadata as a table with the standard clip columns and types."""
    if not rows:
        return empty_clip_table()
    table = pl.DataFrame(rows, schema_overrides=CLIP_COLUMNS)
    extra = [c for c in table.columns if c not in CLIP_COLUMNS]
    return table.select([*CLIP_COLUMNS, *extra])


def quarantine_table(rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=QUARANTINE_COLUMNS)
    return pl.DataFrame(rows, schema=QUARANTINE_COLUMNS)


@dataclass(frozen=True)
class CurationResult:
    validated: pl.DataFrame
    quarantined: pl.DataFrame

    def reason_counts(self) -> dict[str, int]:
        if self.quarantined.is_empty():
            return {}
        counts = self.quarantined.group_by("reason").len().sort("reason")
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list()))


def _quarantine_row(row: dict, stage: str, reason: str, detail: str) -> dict:
    return {"clip_id": row["clip_id"], "source": row["source"], "uri": row["uri"],
            "label": row["label"], "speaker": row["speaker"], "stage": stage, "reason": reason,
            "detail": detail}


def measure_rows(clips: pl.DataFrame, read_clip: Callable[[str], AudioInfo]
                 ) -> tuple[list[dict], list[dict]]:
    """Quality metrics for each readable clip; unreadable clips become quarantine rows."""
    measured, rejected = [], []
    for row in clips.iter_rows(named=True):
        try:
            info = read_clip(row["uri"])
        except AudioReadError as exc:
            rejected.append(_quarantine_row(row, "quality", exc.reason, str(exc)))
            continue
        metrics = quality.measure_clip(info.samples, info.sample_rate).as_dict()
        measured.append({**row, **{c: float(metrics[c]) for c in QUALITY_COLUMNS},
                         "sample_rate": int(info.sample_rate), "num_samples": len(info.samples)})
    return measured, rejected


def curate(clips: pl.DataFrame, cfg: KwsConfig, read_clip: Callable[[str], AudioInfo]) -> CurationResult:
    """Quality gate + speaker split + schema check; returns (validated, quarantined)."""
    measured, quarantined = measure_rows(clips, read_clip)
    passing = []
    for row in measured:
        metrics = quality.ClipQuality(**{c: row[c] for c in QUALITY_COLUMNS},
                                      sample_rate=row["sample_rate"])
        reasons = quality.rejection_reasons(
            metrics, row["label"], cfg.quality, expected_sr=cfg.audio.sample_rate,
            expected_duration_s=cfg.audio.clip_seconds, is_silence=row["label"] == SILENCE_LABEL)
        if reasons:
            detail = "; ".join(reasons) + " | " + ", ".join(
                f"{c}={row[c]:.3g}" for c in QUALITY_COLUMNS)
            quarantined.append(_quarantine_row(row, "quality", reasons[0], detail))
        else:
            passing.append(row)

    splits = assign_splits([r["speaker"] for r in passing], cfg.splits)
    for row, split in zip(passing, splits):
        row["split"] = split
    columns = {**CLIP_COLUMNS, **{c: pl.Float64 for c in QUALITY_COLUMNS}, "split": pl.String}
    table = (pl.DataFrame(passing, schema=columns) if passing else pl.DataFrame(schema=columns))

    schema = schemas.clip_table_schema(cfg.labels, cfg.audio.sample_rate, cfg.audio.clip_samples)
    good, failures = schemas.validate(table, schema)
    if failures.height:
        bad_ids = set(table["clip_id"].to_list()) - set(good["clip_id"].to_list())
        by_id = {r["clip_id"]: r for r in table.iter_rows(named=True) if r["clip_id"] in bad_ids}
        checks = _failure_checks_by_clip(table, failures)
        for clip_id, row in by_id.items():
            quarantined.append(_quarantine_row(row, "schema", "schema_violation",
                                               checks.get(clip_id, "failed the clip table schema")))
    return CurationResult(good.sort("clip_id"), quarantine_table(quarantined).sort("clip_id"))


def _failure_checks_by_clip(table: pl.DataFrame, failures: pl.DataFrame) -> dict[str, str]:
    """Map clip_id -> the schema checks it failed, from pandera's failure cases."""
    if "index" not in failures.columns:
        return {}
    out: dict[str, list[str]] = {}
    ids = table["clip_id"].to_list()
    for row in failures.iter_rows(named=True):
        index = row.get("index")
        if index is None or not 0 <= int(index) < len(ids):
            continue
        what = f"{row.get('column') or ''}:{row.get('check') or ''}".strip(":")
        out.setdefault(ids[int(index)], []).append(what)
    return {k: "; ".join(sorted(set(v))) for k, v in out.items()}
