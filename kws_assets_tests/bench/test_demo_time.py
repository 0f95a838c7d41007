"""The demo section of the bench: which keyword the re-run changes, and how its report reads
(targets as ratios, never a timed assertion)."""

from __future__ import annotations

import pytest

from bench.demo_time import DEMO_TARGET_S, RERUN_TARGET_S, changed_keyword, demo_section
from bench.report import check_targets


def test_the_rerun_replaces_the_last_keyword_in_place() -> None:
    cfg = {"keywords": ["yes", "no", "go"], "storage": {"root": "x"}}
    changed = changed_keyword(cfg, "house")
    assert changed["keywords"] == ["yes", "no", "house"]
    assert cfg["keywords"] == ["yes", "no", "go"]  # the base config is left alone
    assert changed_keyword(cfg, "house", old="no")["keywords"] == ["yes", "house", "go"]
    assert len(changed_keyword({}, "house")["keywords"]) == 10  # the default keywords
    with pytest.raises(ValueError, match="already"):
        changed_keyword(cfg, "yes")
    with pytest.raises(ValueError, match="not in"):
        changed_keyword(cfg, "house", old="stop")


def _run(graph_s: float, target_s: float) -> dict:
    return {
        "success": True,
        "graph_s": graph_s,
        "graph_cpu_s": graph_s * 1.5,
        "sum_of_steps_s": graph_s - 3,
        "step_seconds": {"kws_model": graph_s / 2, "evaluation": graph_s / 4},
        "target_s": target_s,
        "ratio_to_target": graph_s / target_s,
    }


def test_report_puts_both_runs_beside_their_targets() -> None:
    demo = {
        "change": {"from": "go", "to": "house"},
        "first": _run(420.0, DEMO_TARGET_S),
        "rerun": _run(90.0, RERUN_TARGET_S),
    }
    text = "\n".join(demo_section(demo))
    assert "| 420.0 | 417.0 | 630.0 | 300 | 1.40 |" in text
    assert "'go' → 'house'" in text and "| 90.0 | 87.0 | 135.0 | 120 | 0.75 |" in text
    assert "`kws_model` 210.0 s" in text
    targets = {t.name: t for t in check_targets({"demo": demo})}
    first = targets["demo graph time on the base config (s, 2 cores)"]
    rerun = targets["demo re-run after changing one keyword (s, 2 cores)"]
    assert (first.met, rerun.met) == (False, True)
    assert first.measured == 420.0 and "120.00 over" in first.by


def test_a_failed_first_run_is_reported_without_a_rerun() -> None:
    failed = {**_run(10.0, DEMO_TARGET_S), "success": False, "failed_run": "kws_pipeline"}
    demo = {"change": {"from": "go", "to": "house"}, "first": failed}
    assert "failed in kws_pipeline" in "\n".join(demo_section(demo))
    assert check_targets({"demo": demo}) == []
