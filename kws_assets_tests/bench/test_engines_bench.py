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


class _FakeEngine:
    def __init__(self, name: str, voices: list[str]) -> None:
        self.name, self._voices = name, voices

    def voices(self, language: str) -> list[str]:
        return list(self._voices)


def test_bench_voices_spread_over_the_voice_list():
    import pytest

    from bench.engines import bench_voices

    many = _FakeEngine("flite", [f"v{i}" for i in range(10)])
    assert bench_voices(many, 1) == ["v0"]
    assert bench_voices(many, 3) == ["v0", "v1", "v5"]  # first, then evenly over the rest
    assert bench_voices(many, 50) == many.voices("en")  # never more than there are
    espeak = _FakeEngine("espeak", ["en-029", "en-us", "en-us+f1"])
    assert bench_voices(espeak, 2) == ["en-us", "en-029"]  # the demo's base voice first
    assert bench_voices(_FakeEngine("piper", []), 2) == []
    with pytest.raises(ValueError, match="at least 1"):
        bench_voices(many, 0)


def test_engine_rates_per_voice_add_up():
    report = engine_rates(["yes"], 0.3, engines=["espeak"], voices_per_engine=3)
    espeak = report["espeak"]
    assert len(espeak["voices"]) == 3 and next(iter(espeak["voices"])) == "en-us"
    assert espeak["utterances"] == sum(v["utterances"] for v in espeak["voices"].values())
    assert all(
        v["utterances_per_s"] > 0 and v["audio_s_per_s"] > 0 for v in espeak["voices"].values()
    )
