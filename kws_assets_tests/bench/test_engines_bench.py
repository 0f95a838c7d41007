"""bench/engines.py measures real renders and reports engines it cannot run."""

from __future__ import annotations

from bench.engines import engine_rates, perturb_rate


def test_engine_rates_measures_usable_engines_and_reports_the_rest():
    report = engine_rates(["yes", "no"], 0.4, engines=["espeak", "nonesuch"])
    assert "unknown TTS engine" in report["skipped"]["nonesuch"]
    espeak = report["espeak"]
    assert espeak["utterances"] >= 1 and espeak["utterances_per_s"] > 0
    assert espeak["audio_s_per_s"] > 0


def test_perturb_rate_counts_clips():
    report = perturb_rate(0.2)
    assert report["clips"] >= 1 and report["clips_per_s"] > 0
