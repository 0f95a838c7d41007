"""The evaluation's report folder: the headline family (the first) keeps the top-level keys and
unsuffixed pictures, every family ships its operating point in its own folder, whatever the
families are called."""

from __future__ import annotations

import json

import pytest

from kws_assets.core.evaluation.report import (
    FAMILY_COLUMNS,
    REPORT_FILE,
    detect_command,
    family_key,
    family_table,
    headline,
    measured_bounds,
    other_summaries,
    per_class_table,
    report_json,
    write_report,
)
from kws_assets.core.ship.export import OPERATING_POINT_FILE, read_operating_point
from kws_assets.core.ship.manifest import OperatingPoint
from kws_assets_tests.core.evaluation.conftest import FAMILIES
from kws_assets_tests.tone_detector import LABELS


def test_the_report_folder_holds_every_familys_report_and_operating_point(results) -> None:
    first, second = FAMILIES
    folder = write_report(results)
    assert folder.staged
    names = {p.relative_to(folder.path).as_posix() for p in folder.path.rglob("*") if p.is_file()}
    assert names == {
        REPORT_FILE,
        "confusion_test.png",
        "confusion_unseen_voices.png",
        "det_curve.png",
        f"confusion_test_{second}.png",
        f"confusion_unseen_voices_{second}.png",
        f"det_curve_{second}.png",
        f"{first}/{OPERATING_POINT_FILE}",
        f"{second}/{OPERATING_POINT_FILE}",
    }
    report = json.loads(folder.file(REPORT_FILE).read_text())
    assert report == json.loads(json.dumps(report_json(results)))
    assert report["family"] == first and report["summary"] == results[first].summary()
    assert set(report["families"]) == set(FAMILIES)
    assert "synthetic_vs_real" in report and "synthetic_vs_real" not in report["families"][second]
    for family in FAMILIES:
        shipped = read_operating_point(folder.path / family)
        assert shipped is not None
        assert shipped.as_dict() == results[family].stream.selected().detector.as_dict()
        selected = json.loads((folder.path / family / OPERATING_POINT_FILE).read_text())
        assert selected["selected"]["family"] == family
        assert selected["selected"]["on"] == "validation streams"
        # how far the numbers go: both streams' intervals, the target by its bound, usability
        stream = results[family].stream
        assert selected["selected"]["test_bounds"] == stream.bounds.as_dict()
        assert selected["selected"]["validation_bounds"]["level"] == 0.95
        assert selected["selected"]["usable"] == stream.selected().usable
        assert selected["selected"]["meets_target_on_validation"] == (
            selected["selected"]["validation_bounds"]["fa_per_hour_upper"]
            <= selected["selected"]["target_fa_per_hour"]
        )
        assert report["families"][family]["streaming"]["operating_point_bounds"] == (
            stream.bounds.as_dict()
        )


def test_the_device_manifest_point_carries_the_headline_familys_bounds(results) -> None:
    report = report_json(results)
    lead = results[FAMILIES[0]]
    point = OperatingPoint(
        threshold=lead.stream.operating_point.threshold,
        smoothing_windows=lead.stream.selected().detector.smoothing_windows,
        refractory_seconds=lead.stream.selected().detector.refractory_s,
        target_fa_per_hour=lead.stream.target_fa_per_hour,
        frr_at_target=report["summary"]["frr_at_target"],
        **measured_bounds(report),
    )
    bounds = lead.stream.bounds
    assert point.fa_per_hour_upper == pytest.approx(bounds.fa_per_hour_upper, abs=1e-4)
    assert point.frr_lower == pytest.approx(bounds.frr_lower, abs=1e-4)
    assert point.frr_upper == pytest.approx(bounds.frr_upper, abs=1e-4)
    assert (point.confidence, point.keywords) == (0.95, lead.stream.positives)
    assert point.usable == lead.stream.selected().usable
    assert point.target_met_on_validation == lead.stream.selected().meets_target
    # a report written before the intervals gives the manifest nothing more
    assert measured_bounds({"summary": report["summary"], "streaming": {}}) == {}


def test_metadata_rows_name_the_families_by_their_keys(results) -> None:
    first, second = FAMILIES
    assert headline(results) == first
    assert family_key("det_curve", first, first) == "det_curve"
    assert family_key("det_curve", second, first) == f"det_curve_{second}"
    table = family_table(results)
    assert table["family"].to_list() == list(FAMILIES)
    assert set(FAMILY_COLUMNS) <= set(table.columns) and "stream_scoring_s" in table.columns
    others = other_summaries(results)
    assert set(others) == {f"{second}_{k}" for k in results[second].summary()}
    assert per_class_table(results[first])["label"].to_list() == LABELS
    with pytest.raises(ValueError, match="at least one"):
        headline({})


def test_detect_command_points_at_the_familys_operating_point(results) -> None:
    point = results[FAMILIES[0]].stream.selected().detector
    line = detect_command(point, FAMILIES[0], "<model folder>")
    assert f"<evaluation folder>/{FAMILIES[0]}/{OPERATING_POINT_FILE}" in line
    assert f"--smooth {point.smoothing_windows}" in line and "--model <model folder>" in line
