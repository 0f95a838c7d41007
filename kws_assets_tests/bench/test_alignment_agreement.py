"""``bench.alignment_agreement`` on tiny inputs, so its code cannot rot.  Nothing is timed: the
assertions are about the report being complete and within its ranges."""

from __future__ import annotations

import json
import math

from bench.alignment_agreement import run_alignment_agreement_bench


def test_the_report_is_complete():
    report = run_alignment_agreement_bench(n_utterances=2, rounds=1, other_language_per_voice=1)
    json.dumps(report)  # JSON-able for bench.run's report
    english = report["english_vs_pocketsphinx"]
    assert english["utterances"] == 2 and english["words_compared"] > 0
    for key in ("starts_within_100ms", "ends_within_100ms", "median_confidence_right_transcript"):
        assert 0.0 <= english[key] <= 1.0, key
    assert set(report["other_languages_vs_espeak_events"]) == {"es", "fr", "de"}
    for language in report["other_languages_vs_espeak_events"].values():
        assert language["words"] + language["failed_utterances"] > 0
    speed = report["speed"]
    assert set(speed["real_time_factor"]) == {"pocketsphinx", "tts_dtw"}
    assert all(math.isfinite(v) and v > 0 for v in speed["real_time_factor"].values())
