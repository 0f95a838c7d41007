"""The evaluation's report folder and the rows its metadata shows, from every family's
:class:`~kws_assets.core.evaluation.family.EvaluationResult`.

The folder holds ``evaluation.json``, each family's pictures and ``<family>/operating_point.json``
(what ``kws detect --operating-point`` reads).  The *headline* family is the first of the results:
its report keeps the top-level keys of ``evaluation.json`` and its pictures carry no suffix — the
demo, the device model's card and the tests read those, and they predate a second family.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import polars as pl

from kws_assets.core.evaluation.family import EvaluationResult
from kws_assets.core.evaluation.operating_point import Selection
from kws_assets.core.model.detect import DetectorOperatingPoint
from kws_assets.core.ship.export import OPERATING_POINT_FILE, write_operating_point
from kws_assets.core.storage.artifact_store import ArtifactFolder

REPORT_FILE = "evaluation.json"
FAMILY_COLUMNS = (
    "test_accuracy",
    "unseen_voice_accuracy",
    "threshold_at_target",
    "smoothing_at_target",
    "refractory_s_at_target",
    "val_fa_per_hour_at_target",
    "val_frr_at_target",
    "fa_per_hour_at_target",
    "frr_at_target",
    "fa_per_hour_upper_at_target",
    "frr_upper_at_target",
    "target_met_on_validation",
    "operating_point_usable",
    "window_latency_ms",
)
"""The summary numbers of each family's row in the families table."""
SKIPPED_PER_FAMILY = ("synthetic_vs_real",)
"""Keys of a family's report left out of ``families``: the same for every family (the data's)."""


def headline(results: Mapping[str, EvaluationResult]) -> str:
    """The family whose report keeps the top-level keys: the first one evaluated."""
    if not results:
        raise ValueError("an evaluation report needs at least one family's results")
    return next(iter(results))


def family_key(name: str, family: str, lead: str) -> str:
    """``name`` for the headline family ``lead``, ``name_<family>`` for any other one (picture
    files and metadata keys)."""
    return name if family == lead else f"{name}_{family}"


def report_json(results: Mapping[str, EvaluationResult]) -> dict[str, object]:
    """``evaluation.json``: the headline family's report at the top level, every family's (less
    the data's synthetic-vs-real table) under ``families``."""
    return {
        **results[headline(results)].as_dict(),
        "families": {
            family: {k: v for k, v in r.as_dict().items() if k not in SKIPPED_PER_FAMILY}
            for family, r in results.items()
        },
    }


def write_report(results: Mapping[str, EvaluationResult]) -> ArtifactFolder:
    """A staged report folder: each family's pictures (suffixed but for the headline's), its
    selected operating point in ``<family>/operating_point.json`` with how it was selected and
    how it did on the test streams, and ``evaluation.json``."""
    lead = headline(results)
    report = ArtifactFolder.staging(prefix="kws-evaluation-")
    for family, result in results.items():
        for name, png in result.pictures.items():
            report.file(f"{family_key(name, family, lead)}.png").write_bytes(png)
        selected = result.stream.selected()
        write_operating_point(
            report.path / family,
            selected.detector,
            {
                "family": family,
                "on": "validation streams",
                "target_fa_per_hour": selected.target_fa_per_hour,
                "validation": selected.validation.as_dict(),
                "meets_target_on_validation": selected.meets_target,
                "test": result.stream.operating_point.as_dict(),
                **operating_point_provenance(selected, result),
            },
        )
    report.file(REPORT_FILE).write_text(json.dumps(report_json(results), indent=2))
    return report


def operating_point_provenance(selected: Selection, result: EvaluationResult) -> dict[str, object]:
    """What ``operating_point.json`` says about how far its numbers can be trusted: the exact
    intervals on validation and test streams (level, hours, keyword counts), whether the target
    was met by the FA/h upper bound (or why not, and the hours needed) and whether the point is
    usable (its validation FRR within ``max_frr``, else what to do)."""
    return {
        "validation_bounds": selected.bounds.as_dict() if selected.bounds is not None else {},
        "test_bounds": result.stream.bounds.as_dict(),
        "meets_target_measured_on_validation": selected.meets_target_measured,
        "reason": selected.reason,
        "negative_hours_needed": selected.as_dict()["negative_hours_needed"],
        "max_frr": selected.max_frr,
        "usable": selected.usable,
        "usable_message": selected.usable_message,
    }


def measured_bounds(report: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a device manifest's operating point (:class:`kws_assets.core.ship.manifest.
    OperatingPoint`) beyond the detector settings, from ``evaluation.json`` (``report``): the
    headline family's FA/h measured at the point on the test streams with its interval, the FRR
    interval, their level, hours and keyword count, whether the target was met by the bound on
    validation and whether the point is usable.  Empty for a report written before intervals."""
    streaming = report.get("streaming", {})
    bounds = streaming.get("operating_point_bounds")
    if not bounds:
        return {}
    selection = streaming.get("selection", {})
    return {
        "fa_per_hour_at_target": report["summary"]["fa_per_hour_at_target"],
        "fa_per_hour_lower": bounds["fa_per_hour_lower"],
        "fa_per_hour_upper": bounds["fa_per_hour_upper"],
        "frr_lower": bounds["frr_lower"],
        "frr_upper": bounds["frr_upper"],
        "confidence": bounds["level"],
        "negative_hours": bounds["negative_hours"],
        "keywords": bounds["keywords"],
        "target_met_on_validation": selection.get("meets_target_on_validation"),
        "usable": selection.get("usable"),
        "usable_message": selection.get("usable_message") or None,
    }


def family_table(results: Mapping[str, EvaluationResult]) -> pl.DataFrame:
    """One row per family: the numbers to compare families by, and the wall time its streams
    took to score (metadata only: it is not reproducible)."""
    return pl.DataFrame(
        [
            {
                "family": family,
                **{k: r.summary()[k] for k in FAMILY_COLUMNS},
                "stream_scoring_s": round(r.stream_seconds, 2),
            }
            for family, r in results.items()
        ]
    )


def per_class_table(result: EvaluationResult) -> pl.DataFrame:
    """Per-class precision and recall of a family on the test split."""
    return pl.DataFrame([{"label": label, **vars(m)} for label, m in result.test.per_class.items()])


def other_summaries(results: Mapping[str, EvaluationResult]) -> dict[str, float | int | bool]:
    """Every family's summary but the headline's (which is the top level), keys prefixed with the
    family: flat scalars for the asset's metadata."""
    lead = headline(results)
    return {
        f"{family}_{k}": v
        for family, r in results.items()
        if family != lead
        for k, v in r.summary().items()
    }


def detect_command(point: DetectorOperatingPoint, family: str, model_folder: str) -> str:
    """The ``kws detect`` line that runs ``family``'s artifact (``model_folder``) at its
    operating point from the report folder, and the flags that file stands for."""
    return (
        f"kws detect --model {model_folder} --operating-point "
        f"<evaluation folder>/{family}/{OPERATING_POINT_FILE} long.wav   (= --threshold "
        f"{point.threshold:.6g} --smooth {point.smoothing_windows} --refractory-s "
        f"{point.refractory_s:g} --hop-ms {point.hop_ms:g})"
    )
