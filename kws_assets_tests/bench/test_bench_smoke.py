"""The benchmark suite on tiny inputs, so its code cannot rot.  Nothing here is timed: the
assertions are about the report being complete and consistent, not about speed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench import run as bench_run
from bench.e2e import cheaper_overrides, scaled_config, summarize_scaling
from bench.mfcc import mfcc_flops_per_clip
from bench.report import (
    EMBEDDING_TARGET_NAME,
    INT8_TARGET_NAME,
    NEW_FAMILY_ASSETS,
    check_targets,
    render_markdown,
)
from bench.timing import interleaved, loglog_slope
from kws_assets.core.features.mfcc import FeatureSpec
from kws_assets.settings import AudioSettings, FeatureSettings, KwsConfig

pytestmark = pytest.mark.slow

# A graph small enough to materialize twice in a test: 2 keywords, 3 corpus voices, 5 espeak-ng
# voices, one flite voice (other-engine synthesis) and flite's other voices held out (the
# transfer_evaluation set: flite is fast, festival's HTS voice renders about one word a second).
NANO_BASE = {
    "keywords": ["yes", "no"],
    "sources": [
        {
            "kind": "demo_tts",
            "name": "demo",
            "voices": ["en-us+m2", "en-us+f1", "en+m3"],
            "sentences_per_keyword": 1,
            "rate": 160,
        }
    ],
    "tts": {
        "voices": ["en-us+m1", "en-us+f2", "en+m2", "en-gb-scotland+m4", "en-029+m6"],
        "rates": [150],
        "pitches": [50],
        "sampled_speakers": 2,
        "renders_per_speaker": 1,
        "engines": [{"engine": "festival", "voices": ["kal_diphone"], "renders_per_voice": 1}],
    },
    "noise": {"silence_clips": 8, "noisy_copies_per_clip": 1},
    "splits": {"val_percent": 25.0, "test_percent": 25.0},
    "model": {"n_filters": 8, "n_blocks": 1},
    "train": {"batch_size": 16, "threads": 1},
    "quantize": {"calibration_rows": 8},
    "evaluation": {
        "positives_per_keyword": 2,
        "threshold_steps": 10,
        "held_out_engine": "flite",
        "held_out_engine_renders": 1,
    },
    "embedding": {"width": 16, "n_blocks": 1},
    "negatives": {"neighbours_per_keyword": 1, "other_words": 2, "speech_windows": 2},
    "augment": {"copies_per_clip": 0},
    "dataset_guard": {"min_test_clips_per_label": 0},  # a nano graph has a handful of test clips
}


def test_scaled_configs_multiply_the_clip_sources() -> None:
    overrides = cheaper_overrides(epochs=2, eval_minutes=1.5, model_filters=8)
    for scale, side in [(1, 1), (4, 2), (16, 4)]:
        cfg = scaled_config(NANO_BASE, scale, overrides, storage_root="/tmp/x")
        KwsConfig.model_validate(cfg)  # still a valid pipeline config
        assert len(cfg["tts"]["rates"]) * len(cfg["tts"]["pitches"]) == scale
        assert len(set(cfg["tts"]["rates"])) == side and len(set(cfg["tts"]["pitches"])) == side
        assert cfg["sources"][0]["sentences_per_keyword"] == scale
        assert cfg["noise"]["silence_clips"] == 8 * scale
        assert cfg["tts"]["renders_per_speaker"] == scale
        assert cfg["train"]["max_epochs"] == cfg["train"]["min_epochs"] == 2
        assert cfg["train"]["batch_size"] == 16  # the base's other fields survive the overrides
        assert cfg["model"] == {"n_filters": 8, "n_blocks": 1}
        engines = cfg["tts"]["engines"]  # other engines: scale x the renders of every voice
        assert [(e["engine"], e["voices"], e["renders_per_voice"]) for e in engines] == [
            ("festival", ["kal_diphone"], scale)
        ]
        assert cfg["evaluation"]["held_out_engine_renders"] == 1  # evaluation stays the same
    demo, demo16 = KwsConfig(), scaled_config({}, 16, overrides, storage_root="/tmp/x")
    assert len(demo16["tts"]["rates"]) == 4 * len(demo.tts.rates)
    assert len(demo16["tts"]["pitches"]) == 4 * len(demo.tts.pitches)
    KwsConfig.model_validate(demo16)
    assert [e["renders_per_voice"] for e in demo16["tts"]["engines"]] == [
        16 * e.renders_per_voice for e in demo.tts.engines
    ]
    with pytest.raises(ValueError):
        scaled_config(NANO_BASE, 3, overrides, storage_root="/tmp/x")


def test_flop_count_and_fit_helpers() -> None:
    flops = mfcc_flops_per_clip(FeatureSpec.from_settings(FeatureSettings(), AudioSettings()))
    # 49 frames of a 640-point FFT at 5 N log2 N, the dense 321 x 40 mel matmul, ...
    assert flops["fft"] == pytest.approx(49 * 5 * 640 * math.log2(640))
    assert flops["mel"] == 49 * 2 * 321 * 40
    assert flops["total"] == pytest.approx(sum(v for k, v in flops.items() if k != "total"))
    assert loglog_slope([1, 4, 16], [3, 12, 48]) == pytest.approx(1.0)
    assert loglog_slope([1, 4, 16], [2, 4, 8]) == pytest.approx(0.5)
    calls = []
    timings = interleaved(
        {"a": (lambda: calls.append("a"), 3), "b": (lambda: calls.append("b"), 1)}, rounds=2
    )
    assert calls == ["a", "b", "a", "b", "a", "b"]  # warm-up, then round after round
    assert len(timings["a"].seconds) == 2 and timings["a"].best_rate > 0


def test_bench_runs_end_to_end_on_tiny_inputs(tmp_path) -> None:
    base = tmp_path / "nano.yaml"
    base.write_text(json.dumps(NANO_BASE))  # JSON is YAML
    args = bench_run.parse_args(
        [
            "--out",
            str(tmp_path / "results"),
            "--clips",
            "12",
            "--peer-clips",
            "4",
            "--rounds",
            "1",
            "--synth-utterances",
            "2",
            "--align-utterances",
            "1",
            "--parallel-clips",
            "4",
            "--onnx-runs",
            "5",
            "--matmul-size",
            "128",
            "--base-config",
            str(base),
            "--scales",
            "1",
            "--epochs",
            "1",
            "--eval-minutes",
            "0.2",
            "--model-filters",
            "8",
            "--table-memory-clips",
            "8",  # one size: skipped here, measured in-process below
            "--agreement-utterances",
            "2",
            "--agreement-per-voice",
            "1",
            "--embedding-clips",
            "4",
            "--engine-seconds",
            "0.4",
            "--engine-voices",
            "2",
            "--engines",
            "espeak,flite,nonesuch",
            "--perturb-seconds",
            "0.2",
            "--skip-demo",  # the whole graph twice more: its parts are tested below
        ]
    )
    results = bench_run.run(args, log=lambda _msg: None)
    json_path, md_path = bench_run.write_report(results, args.out)

    report = json.loads(json_path.read_text())
    mfcc = report["mfcc"]
    assert set(mfcc["clips_per_s"]) == {
        "project",
        "project_one_thread",
        "torchaudio_transform",
        "librosa_per_clip",
        "psf_per_clip",
    }
    assert all(v > 0 and math.isfinite(v) for v in mfcc["clips_per_s"].values())
    assert 0 < mfcc["fraction_of_flop_bound"] < 1
    assert mfcc["agreement"]["relative_to_max_abs_value"] < 1e-4  # same maths as librosa
    assert report["table"]["clips_per_s"]["table_rebuild_unchanged_clips"] > 0
    assert "table_memory" not in report
    assert report["decode"]["fast_path_max_abs_diff_vs_read_audio"] == 0.0
    assert report["synthesis"]["utterances_per_s"] > 0
    assert report["alignment"]["aligned_ok"] == 1 and report["alignment"]["real_time_factor"] > 0
    onnx = report["onnx"]
    assert onnx["size_kib"]["int8"] < onnx["size_kib"]["float"]
    assert all(onnx["median_us"][k] > 0 for k in ("float", "int8"))
    detect = report["detect"]
    assert all(detect["ms_per_window"][k] > 0 for k in ("streaming", "per_window"))
    assert detect["windows"]["streaming"] >= detect["windows"]["per_window"]  # padded ends

    embedding = report["embedding"]
    assert embedding["clips"] == 4 and embedding["max_abs_difference"] < 1e-3
    rates = {name: t["best_rate"] for name, t in embedding["front_end"].items()}
    assert set(rates) == {"kws_assets", "openwakeword"} and min(rates.values()) > 0
    assert embedding["speedup_best"] == pytest.approx(rates["kws_assets"] / rates["openwakeword"])
    bound = embedding["flop_bound"]  # beside MFCC's, against the best matmul of the run
    assert bound["machine_flops_per_s"] >= report["matmul"]["best"]["achievable"]
    assert bound["clips_per_s"] == rates["kws_assets"] and bound["flops_per_clip"] > 0
    assert bound["fraction_of_flop_bound"] == pytest.approx(
        bound["achieved_flops_per_s"] / bound["machine_flops_per_s"]
    )
    assert bound["fraction_of_flop_bound"] > 0 and bound["fraction_of_thread_bound"] > 0
    engines = report["engines"]
    assert "unknown TTS engine" in engines["skipped"]["nonesuch"]
    assert (
        next(iter(engines["espeak"]["voices"])) == "en-us" and len(engines["espeak"]["voices"]) == 2
    )
    for name in ("espeak", "flite"):
        assert engines[name]["utterances_per_s"] > 0 and engines[name]["audio_s_per_s"] > 0
        assert (
            sum(v["utterances"] for v in engines[name]["voices"].values())
            == engines[name]["utterances"]
        )
    assert engines["perturb"]["clips_per_s"] > 0

    runs = report["e2e"]["runs"]
    assert [r["scale"] for r in runs] == [1]
    run = runs[0]
    assert run["success"] and run["validated_clips"] > 0 and run["graph_cpu_s"] > 0
    assert run["mfcc_rows"] >= run["validated_clips"]  # every validated clip (+ augmented copies)
    assert run["maxrss_self_kib"] > 0 and run["peak_tree_rss_kib"] > 0
    assert {"mfcc_table", "validated_set", "micro_model", *NEW_FAMILY_ASSETS} <= set(
        run["step_seconds"]
    )
    assert "kws_model" not in run["step_seconds"]  # kws.yaml's families leave the DS-CNN out
    by_engine = run["validated_clips_by_engine"]  # other-engine synthesis made clips
    assert by_engine["festival"]["speakers"] == 1 and by_engine["festival"]["clips"] > 0
    assert "flite" not in by_engine  # the held-out engine never trains
    assert sum(v["clips"] for v in by_engine.values()) == run["validated_clips"]
    assert set(run["step_peak_rss_kib"]) <= set(run["step_seconds"])
    assert report["e2e"]["scaling"] is None  # one scale: nothing to fit

    agreement = report["alignment_agreement"]
    assert agreement["english_vs_pocketsphinx"]["utterances"] == 2
    assert 0 <= agreement["english_vs_pocketsphinx"]["starts_within_100ms"] <= 1
    assert agreement["speed"]["real_time_factor"]["tts_dtw"] > 0
    assert all(
        v["words"] + v["failed_utterances"] > 0
        for v in agreement["other_languages_vs_espeak_events"].values()
    )
    names = {t["name"] for t in report["targets"]}
    assert names == {
        "MFCC path vs librosa per-clip loop",
        "MFCC path, fraction of the FLOP bound",
        "TTS+DTW word starts within 100 ms of pocketsphinx",
        EMBEDDING_TARGET_NAME,
        INT8_TARGET_NAME,
    }
    assert onnx["advised_precision"] in {"int8", "float"}
    assert onnx["batched_us_per_window"]["int8"] > 0
    markdown = md_path.read_text()
    for heading in (
        "## Targets",
        "## MFCC throughput",
        "## End-to-end scaling",
        "## ONNX inference",
        "## Streaming detection",
        "## Other stages",
        "## Language-agnostic alignment (issue 8)",
        "## Speech-embedding front end",
        "## Front ends against the FLOP bound",
        "## TTS engines and speaker perturbation",
    ):
        assert heading in markdown
    for asset in NEW_FAMILY_ASSETS:  # the per-asset timing table lists them, even at one scale
        assert f"| {asset} (new) |" in markdown
    assert "Not materialized" not in markdown
    assert "| espeak | en-us |" in markdown
    assert "| MFCC (MfccExtractor) |" in markdown and "| speech embedding (" in markdown
    missed = [t for t in report["targets"] if not t["met"]]
    assert len(report["notes"]) == len(missed)  # every missed target is explained


def test_scaling_summary_fits_the_curve() -> None:
    def run(scale: int, clips: int, seconds: float, rss: int) -> dict:
        return {
            "scale": scale,
            "validated_clips": clips,
            "graph_s": seconds,
            "graph_cpu_s": seconds,
            "maxrss_self_kib": rss,
            "peak_tree_rss_kib": rss + 10,
            "step_seconds": {"fixed": 5.0, "linear": seconds - 5.0},
        }

    # 5 s fixed + 0.01 s per clip: the whole curve is sublinear, its linear part exactly linear.
    runs = [run(16, 16000, 165.0, 1500), run(1, 1000, 15.0, 1000), run(4, 4000, 45.0, 1200)]
    summary = summarize_scaling(runs)
    assert summary["clips"] == [1000.0, 4000.0, 16000.0]
    assert 0.8 < summary["exponent"] < 1.0
    assert summary["exponent_last_two"] > summary["exponent"]
    assert summary["step_exponents"]["linear"] == pytest.approx(1.0)
    assert summary["step_exponents"]["fixed"] == pytest.approx(0.0)
    assert summary["rss_ratio_last_vs_first"] == pytest.approx(1.5)


def test_table_memory_measurement(tmp_path) -> None:
    """The per-size measurement the bench runs in fresh processes, run here in-process."""
    from bench.table_memory import measure_build, summarize_table_memory
    from kws_assets.core.audio.io import write_wav

    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"c{i}.wav"))
        write_wav(paths[-1], np.full(16000, 0.1 * (i + 1), np.float32), 16000)
    (tmp_path / "paths.json").write_text(json.dumps(paths))
    runs = []
    for n in (4, 16):
        measure_build(tmp_path / "paths.json", n, tmp_path / f"r{n}.json")
        runs.append(json.loads((tmp_path / f"r{n}.json").read_text()))
    summary = summarize_table_memory(runs)
    assert [r["featurized"] for r in summary["runs"]] == [4, 16]
    assert summary["size_ratio"] == 4 and summary["peak_rss_ratio"] > 0
    assert all(
        r["maxrss_after_build_kib"] >= r["maxrss_before_build_kib"] > 0 for r in summary["runs"]
    )


def _embedding_result(ours_s: list[float], theirs_s: list[float], clips: int = 256) -> dict:
    def timing(name: str, seconds: list[float]) -> dict:
        return {
            "name": name,
            "items": clips,
            "seconds": seconds,
            "best_rate": clips / min(seconds),
            "median_rate": clips / sorted(seconds)[len(seconds) // 2],
        }

    ours, theirs = timing("kws_assets", ours_s), timing("openwakeword", theirs_s)
    return {
        "clips": clips,
        "threads": 1,
        "batch_clips": 64,
        "context_seconds": 2.0,
        "n_frames": 16,
        "max_abs_difference": 0.0,
        "front_end": {"kws_assets": ours, "openwakeword": theirs},
        "speedup_best": ours["best_rate"] / theirs["best_rate"],
        "speedup_median": ours["median_rate"] / theirs["median_rate"],
        "heads": {},
    }


def test_front_end_target_is_checked_and_a_miss_explained() -> None:
    """The >= 2x target of the speech-embedding front end, met and missed (no timing here)."""
    met = {"embedding": _embedding_result([1.0, 1.1, 1.2], [3.0, 3.0, 3.1])}
    [target] = check_targets(met)
    assert (
        target.name == EMBEDDING_TARGET_NAME
        and target.met
        and target.measured == pytest.approx(3.0)
    )
    assert bench_run._explain(met, [target]) == []

    missed = {"embedding": _embedding_result([2.0, 4.0], [3.0, 3.0], clips=100)}
    [target] = check_targets(missed)
    assert not target.met and target.measured == pytest.approx(1.5)
    [note] = bench_run._explain(missed, [target])
    assert "Speech-embedding front end" in note and "100 clips" in note
    assert "batches of 64" in note and "2 timing round(s)" in note and "varied 2.0x" in note


def test_step_table_names_new_assets_that_did_not_run() -> None:
    runs = [
        {
            "scale": 1,
            "validated_clips": 10,
            "mfcc_rows": 12,
            "graph_s": 5.0,
            "graph_cpu_s": 5.0,
            "maxrss_self_kib": 1024,
            "peak_tree_rss_kib": 1024,
            "step_seconds": {"mfcc_table": 1.0, "embedding_table": 2.0},
            "validated_clips_by_engine": {
                "espeak": {"clips": 7, "speakers": 3},
                "flite": {"clips": 3, "speakers": 1},
            },
        }
    ]
    results = {
        "machine": {"cpu": "x", "cores": 2, "torch": "t", "numpy": "n"},
        "generated_at": "now",
        "e2e": {"runs": runs, "failed": None, "scaling": None},
    }
    markdown = render_markdown(results, [], [])
    assert (
        "| embedding_table (new) | 2.0 | — |" in markdown and "| mfcc_table | 1.0 | — |" in markdown
    )
    assert markdown.index("embedding_table (new)") < markdown.index(
        "| mfcc_table |"
    )  # slowest first
    assert (
        "**Not materialized:** embedding_model, embedding_artifact, transfer_evaluation."
    ) in markdown
    assert "| flite | 3 |" in markdown


def test_scales_and_sections_arguments() -> None:
    assert bench_run.parse_args(["--scales", "1", "4"]).scales == [1, 4]
    assert bench_run.parse_args(["--scales", "16,1"]).scales == [1, 16]
    assert bench_run.parse_args([]).scales == [1, 4, 16]
    args = bench_run.parse_args(["--only", "embedding,engines"])
    assert args.sections == {"embedding", "engines"}
    assert "e2e" not in bench_run.parse_args(["--skip-e2e"]).sections
    for bad in (["--scales", "3"], ["--scales", "x"], ["--only", "nonesuch"]):
        with pytest.raises(SystemExit):
            bench_run.parse_args(bad)
    with pytest.raises(ValueError, match="perfect square"):
        bench_run.parse_scales(["1", "2"])


def test_the_16x_graph_rate_target_is_checked_and_a_miss_explained() -> None:
    """Issue 17's whole-graph target (>= 200 validated clips/s at 16x) is reported once the curve
    reaches 16x, and a miss names where the time went (no timing here)."""
    from bench.report import GRAPH_RATE_TARGET

    def run(scale: int, clips: int, seconds: float) -> dict:
        return {
            "scale": scale,
            "validated_clips": clips,
            "graph_s": seconds,
            "graph_cpu_s": 1.5 * seconds,
            "maxrss_self_kib": 1000,
            "peak_tree_rss_kib": 1000,
            "step_seconds": {"synthetic_clips": 0.6 * seconds, "mfcc_table": 0.1 * seconds},
        }

    def graph_targets(runs: list[dict]) -> list:
        results = {"e2e": {"runs": runs, "scaling": summarize_scaling(runs)}}
        return results, [t for t in check_targets(results) if "whole-graph" in t.name]

    _, none_yet = graph_targets([run(1, 1000, 20.0), run(4, 4000, 60.0)])
    assert none_yet == []  # the curve stopped before 16x: nothing to check
    results, [slow] = graph_targets([run(1, 1000, 20.0), run(16, 16000, 160.0)])
    assert not slow.met and slow.measured == pytest.approx(100.0)
    assert slow.measured < GRAPH_RATE_TARGET
    [note] = [n for n in bench_run._explain(results, [slow]) if "Whole graph" in n]
    assert "synthetic_clips 96 s (60%)" in note and "80 s for everything" in note
    _, [fast] = graph_targets([run(1, 1000, 20.0), run(16, 16000, 64.0)])
    assert fast.met
