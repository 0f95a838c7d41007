"""``make bench``: every benchmark in one run, written to ``bench/results/report.{json,md}``.

python -m bench.run                  # the full suite (the e2e curve dominates: see E2E_NOTE)
python -m bench.run --skip-e2e       # everything but the end-to-end scaling curve
python -m bench.run --only demo      # the demo's wall time on kws.yaml, and a re-run after
                                     # changing one keyword (issue 26's 5- and 2-minute targets)
python -m bench.run --scales 1 4     # the curve at 1x and 4x only (make bench BENCH_ARGS=...)
python -m bench.run --only embedding,engines   # some sections (SECTIONS), nothing else
python -m bench.run --clips 64 ...   # smaller inputs (the smoke test uses these knobs)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import demo_time, e2e, machine, stages
from bench.alignment_agreement import run_alignment_agreement_bench
from bench.clips import make_clip_set
from bench.detect_latency import run_detect_bench
from bench.embedding import rebound_embedding, run_embedding_bench
from bench.engines import engine_names, engine_rates, perturb_rate
from bench.mfcc import run_mfcc_bench, run_table_bench
from bench.onnx_latency import run_onnx_bench
from bench.parallel_stages import run_parallel_stages_bench
from bench.report import (
    EMBEDDING_TARGET_NAME,
    GRAPH_RATE_TARGET,
    INT8_TARGET_NAME,
    check_targets,
    render_markdown,
    targets_as_dicts,
)
from bench.table_memory import run_table_memory_bench
from kws_assets.core.features.mfcc import FeatureSpec, MfccExtractor, compute_norm_stats, normalize
from kws_assets.settings import AudioSettings, EmbeddingSettings, FeatureSettings, parse_yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results"
DEFAULT_BASE_CONFIG = ROOT / "kws.yaml"
DEFAULT_SCALES = (1, 4, 16)
DEFAULT_EPOCHS = 1
DEFAULT_EVAL_MINUTES = 1.0
DEFAULT_MODEL_FILTERS = 16
DEFAULT_EMBEDDING_CLIPS = 256
DEFAULT_ENGINE_SECONDS = 40.0
DEFAULT_ENGINE_VOICES = 3
DEFAULT_PERTURB_SECONDS = 5.0
SECTIONS = (
    "mfcc",
    "table",
    "table_memory",
    "decode",
    "synthesis",
    "alignment",
    "parallel",
    "agreement",
    "onnx",
    "detect",
    "embedding",
    "engines",
    "e2e",
    "demo",
)
"""What ``--only`` picks from; the default runs them all."""
E2E_NOTE = (
    "The e2e curve materializes the whole graph (the model families kws.yaml lists, the other "
    "TTS engines, transfer_evaluation on the held-out engine; device_model when the families "
    "include mfcc) once per scale in a fresh process. "
    "Before those assets 1x/4x/16x took about 95/220/870 s of graph time on 2 cores. Estimated "
    "from the section rates (not measured): the new per-scale work is other-engine synthesis "
    "(about 670 flite+piper renders at 1x, each perturbed: ~90 s, scale x more at scale x), the "
    "speech-embedding table (every validated clip and augmented copy at ~70-100 clips/s: ~60 s "
    "at 1x), the held-out festival set (a fixed ~200 renders at ~1.5/s: ~150 s at every "
    "scale) and device_model's TFLite conversion (~15 s), so expect roughly 8 min at 1x, 20 min at "
    "4x and over an hour at 16x. The default "
    'keeps 1x/4x/16x; pick fewer with --scales, e.g. make bench BENCH_ARGS="--scales 1 4".'
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="kws_assets benchmarks against peers", epilog=E2E_NOTE
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder")
    parser.add_argument("--clips", type=int, default=1024, help="clips for MFCC/decode/table")
    parser.add_argument(
        "--peer-clips",
        type=int,
        default=256,
        help="clips the per-clip peers (librosa, python_speech_features) run",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--synth-utterances", type=int, default=48)
    parser.add_argument("--align-utterances", type=int, default=8)
    parser.add_argument(
        "--parallel-clips",
        type=int,
        default=64,
        help="clips (augmentation), recipes (synthesis) and utterances / 4 (alignment) of the "
        "per-stage 1-vs-N-worker section; 0 skips it",
    )
    parser.add_argument("--onnx-runs", type=int, default=300, help="calls per model per round")
    parser.add_argument(
        "--base-config",
        type=Path,
        default=DEFAULT_BASE_CONFIG,
        help="the config scaled for the end-to-end curve (the demo's kws.yaml)",
    )
    parser.add_argument(
        "--scales",
        nargs="+",
        default=[",".join(map(str, DEFAULT_SCALES))],
        help="perfect squares, space- or comma-separated (default 1,4,16); e.g. "
        'make bench BENCH_ARGS="--scales 1 4" to leave out 16x',
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help="training epochs at every end-to-end scale",
    )
    parser.add_argument(
        "--eval-minutes",
        type=float,
        default=DEFAULT_EVAL_MINUTES,
        help="keyword-free stream of the evaluation asset at every scale",
    )
    parser.add_argument(
        "--model-filters",
        type=int,
        default=DEFAULT_MODEL_FILTERS,
        help="DS-CNN width at every end-to-end scale (the demo's is 64)",
    )
    parser.add_argument(
        "--table-memory-clips",
        default="2000,32000",
        help="table sizes whose build peak RSS is compared (comma-separated)",
    )
    parser.add_argument(
        "--agreement-utterances",
        type=int,
        default=24,
        help="English recordings for the TTS+DTW vs pocketsphinx agreement (0: skip)",
    )
    parser.add_argument(
        "--agreement-per-voice",
        type=int,
        default=4,
        help="recordings per voice for the other-language alignment check",
    )
    parser.add_argument(
        "--embedding-clips",
        type=int,
        default=DEFAULT_EMBEDDING_CLIPS,
        help="clips through both speech-embedding front ends (the first of "
        "--clips; at most that many)",
    )
    parser.add_argument(
        "--engine-seconds",
        type=float,
        default=DEFAULT_ENGINE_SECONDS,
        help="seconds of rendering split over the TTS engines (0: skip)",
    )
    parser.add_argument(
        "--engine-voices",
        type=int,
        default=DEFAULT_ENGINE_VOICES,
        help="voices measured per TTS engine",
    )
    parser.add_argument(
        "--engines",
        default="",
        help="comma-separated TTS engines to measure (default: every one "
        "kws_assets has; those not installed are reported as skipped)",
    )
    parser.add_argument(
        "--perturb-seconds",
        type=float,
        default=DEFAULT_PERTURB_SECONDS,
        help="seconds of speaker perturbations timed",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument(
        "--skip-demo",
        action="store_true",
        help="leave out the demo section (the base config's whole graph, twice)",
    )
    parser.add_argument(
        "--demo-keyword",
        default=demo_time.NEW_KEYWORD,
        help="the keyword the demo section's re-run says instead of the config's last one",
    )
    parser.add_argument("--matmul-size", type=int, default=machine.MATMUL_SIZE)
    args = parser.parse_args(argv)
    try:
        args.scales = parse_scales(args.scales)
        args.sections = parse_sections(args.only, args.skip_e2e, args.skip_demo)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def parse_scales(values: list[str] | str) -> list[int]:
    """``["1", "4"]``, ``["1,4,16"]`` or ``"1,4"`` -> ``[1, 4, 16]``; every scale a perfect
    square."""
    parts = [values] if isinstance(values, str) else list(values)
    scales = []
    for part in parts:
        for item in part.replace(",", " ").split():
            try:
                scale = int(item)
            except ValueError:
                raise ValueError(
                    f"--scales: {item!r} is not an integer (use e.g. --scales 1 4)"
                ) from None
            if scale < 1 or math.isqrt(scale) ** 2 != scale:
                raise ValueError(f"--scales: {scale} is not a perfect square (1, 4, 9, 16...)")
            scales.append(scale)
    if not scales:
        raise ValueError("--scales: give at least one scale, e.g. --scales 1")
    return sorted(set(scales))


def parse_sections(only: str, skip_e2e: bool = False, skip_demo: bool = False) -> set[str]:
    """The sections ``--only`` names (all by default), less ``e2e`` with ``--skip-e2e`` and
    ``demo`` with ``--skip-demo``."""
    wanted = {name.strip() for name in only.split(",") if name.strip()} or set(SECTIONS)
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise ValueError(
            f"--only: unknown section(s) {sorted(unknown)}; sections: {', '.join(SECTIONS)}"
        )
    return wanted - {name for name, skip in (("e2e", skip_e2e), ("demo", skip_demo)) if skip}


def _explain(results: dict, targets) -> list[str]:
    """Why a target was missed, from the measurements themselves."""
    notes = []
    for target in targets:
        if target.met:
            continue
        if "librosa" in target.name:
            mfcc = results["mfcc"]
            rates = mfcc["clips_per_s"]
            notes.append(
                f"MFCC vs librosa: the project path ran {rates['project']:.0f} clips/s against "
                f"librosa's {rates['librosa_per_clip']:.0f} on {mfcc['peer_clips']} clips (best of "
                f"{mfcc['rounds']} rounds). The per-clip loop is dominated by fixed per-call cost, "
                f"the batched path by throughput; with few clips or rounds, or on a busy machine, "
                f"the batched path's warm-up is not amortized. One thread of the project path ran "
                f"{rates['project_one_thread']:.0f} clips/s ({mfcc['thread_speedup']:.2f}x from "
                "the second thread)."
            )
        elif "FLOP" in target.name:
            mfcc = results["mfcc"]
            flops = mfcc["flops_per_clip"]
            fft_share = flops["fft"] / flops["total"]
            notes.append(
                f"FLOP bound: the bound prices every counted FLOP at dense-matmul speed "
                f"({mfcc['machine_flops_per_s'] / 1e9:.0f} GFLOP/s). {fft_share * 100:.0f}% of the "
                f"counted FLOPs are the FFT, whose butterflies are limited by data shuffling "
                f"and memory traffic, not multiply-add throughput; the mel and DCT matmuls are "
                f"small (K=320, N=40). One thread reaches "
                f"{mfcc['fraction_of_one_core_bound_one_thread'] * 100:.0f}% of one core's "
                f"matmul rate; the {mfcc['thread_speedup']:.2f}x from the second thread is "
                "the rest."
            )
        elif "pocketsphinx" in target.name:
            english = results["alignment_agreement"]["english_vs_pocketsphinx"]
            notes.append(
                f"Alignment agreement: {english['words_compared']} words in "
                f"{english['utterances_compared']} utterances compared (median start error "
                f"{english['median_start_error_ms']:.0f} ms, p90 "
                f"{english['p90_start_error_ms']:.0f} "
                f"ms); {english['dtw_failed']} utterance(s) the DTW aligner could not place. Few "
                f"words make this share coarse; the test suite measures it on more."
            )
        elif target.name == EMBEDDING_TARGET_NAME:
            notes.append(_explain_embedding(results["embedding"]))
        elif target.name == INT8_TARGET_NAME:
            onnx = results["onnx"]
            notes.append(
                f"int8 per window: {onnx['median_us']['int8']:.0f} µs against float's "
                f"{onnx['median_us']['float']:.0f} µs at batch 1 ({onnx['int8_speedup']:.2f}x), "
                f"{onnx['int8_speedup_batched']:.2f}x at batch {onnx['batch']}. One window of "
                f"this DS-CNN is ~{onnx['median_us']['float']:.0f} µs of which much is "
                f"per-operator overhead (quantize/dequantize at the graph's ends, layout "
                "transposes around QLinearConv) that int8 arithmetic does not shrink; "
                "batched, the arithmetic "
                f"dominates and int8 pays. Each artifact therefore times both graphs where it is "
                f"built and ships the faster one's advice (`cpu_latency.json`, here: "
                f"{onnx['advised_precision']}); `--precision auto` follows it."
            )
        elif "whole-graph" in target.name:
            last = max(results["e2e"]["runs"], key=lambda run: run["scale"])
            graph_s, clips = last["graph_s"], last["validated_clips"]
            steps = sorted(last["step_seconds"].items(), key=lambda kv: -kv[1])[:6]
            notes.append(
                f"Whole graph at {last['scale']}x: {clips} validated clips in {graph_s:.0f} s "
                f"({clips / graph_s:.0f} clips/s; {last['graph_cpu_s'] / graph_s:.2f} cores busy "
                f"on average). {GRAPH_RATE_TARGET:.0f} clips/s would leave "
                f"{clips / GRAPH_RATE_TARGET:.0f} s for everything; the largest "
                "steps alone take "
                + ", ".join(f"{step} {sec:.0f} s ({sec / graph_s:.0%})" for step, sec in steps)
                + "."
            )
        elif "scaling" in target.name:
            scaling = results["e2e"]["scaling"]
            worst = sorted(scaling["step_exponents"].items(), key=lambda kv: -kv[1])[:3]
            notes.append(
                f"Scaling: wall-time exponent {scaling['exponent']:.2f}, CPU-time exponent "
                f"{scaling['exponent_cpu']:.2f}; steepest steps: "
                + ", ".join(f"{step} (k={k:.2f})" for step, k in worst)
                + "."
            )
        elif "RSS" in target.name:
            runs = results["e2e"]["runs"]
            first, last = runs[0], runs[-1]
            peaks = last.get("step_peak_rss_kib") or {}
            top = max(peaks, key=peaks.get) if peaks else "unknown"
            notes.append(
                f"Peak RSS grew from {first['maxrss_self_kib'] / 1024:.0f} MiB to "
                f"{last['maxrss_self_kib'] / 1024:.0f} MiB; at {last['scale']}x the peak "
                f"is reached in {top} ({peaks.get(top, 0) / 1024:.0f} MiB, vs "
                f"{(first.get('step_peak_rss_kib') or {}).get(top, 0) / 1024:.0f} MiB at "
                f"{first['scale']}x)."
            )
    return notes


def _explain_embedding(embedding: dict) -> str:
    """Why the batched front end was not 2x openWakeWord's, from what was measured."""
    front = embedding["front_end"]
    ours, theirs = front["kws_assets"], front["openwakeword"]
    reasons = []
    if embedding["clips"] < 2 * embedding["batch_clips"]:
        calls = -(-embedding["clips"] // embedding["batch_clips"])
        reasons.append(
            f"only {embedding['clips']} clips against batches of "
            f"{embedding['batch_clips']}: the batched path runs {calls} onnxruntime "
            f"call(s) per graph, too few to amortize their set-up"
        )
    if len(ours["seconds"]) < 3:
        reasons.append(
            f"{len(ours['seconds'])} timing round(s): one burst of other load decides "
            f"the best round"
        )
    spread = max(ours["seconds"]) / min(ours["seconds"])
    if spread > 1.3:
        reasons.append(f"our rounds varied {spread:.1f}x (a busy machine)")
    reasons.append(
        "both run the same two ONNX graphs on onnxruntime with "
        f"{embedding['threads']} thread(s); ours gains by batching clips and feeding the "
        "whole mel sequence once instead of one 76-frame window per embedding, so the "
        "ratio shrinks where the convolutions themselves, not per-call overhead, dominate"
    )
    return (
        f"Speech-embedding front end: ours ran {ours['best_rate']:.0f} clips/s against "
        f"openWakeWord's {theirs['best_rate']:.0f} (best of {len(ours['seconds'])} rounds; "
        f"median ratio {embedding['speedup_median']:.2f}x) on {embedding['clips']} clips. "
        + "; ".join(reasons)
        + "."
    )


def run(args: argparse.Namespace, log=print) -> dict:
    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
    results: dict = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine.machine_info(),
        "spec": spec.model_dump(mode="json"),
    }
    wanted = getattr(args, "sections", None) or set(SECTIONS)
    started = time.perf_counter()
    needs_clips = wanted & {"mfcc", "table", "table_memory", "decode", "onnx", "embedding"}
    with tempfile.TemporaryDirectory(prefix="kws-bench-") as tmp:
        clip_set = None
        if needs_clips:
            count = (
                args.clips if needs_clips - {"embedding"} else min(args.clips, args.embedding_clips)
            )
            log(f"making {count} clips")
            clip_set = make_clip_set(spec, count, Path(tmp) / "clips")
        if "mfcc" in wanted:
            log("matmul FLOP/s")
            before = machine.matmul_flops(args.matmul_size)
            log("MFCC: project vs librosa vs python_speech_features")
            mfcc = run_mfcc_bench(
                spec, clip_set, before, args.rounds, args.peer_clips, args.matmul_size
            )
            after = machine.matmul_flops(args.matmul_size)
            # The bound uses the best matmul seen before, during or after the MFCC timings.
            best = {key: max(before[key], after[key]) for key in before}
            best["achievable"] = max(best["achievable"], mfcc["matmul_flops_per_s_in_rounds"])
            mfcc = {**mfcc, **_rebound(mfcc, best)}
            results.update(
                matmul={"before_mfcc": before, "after_mfcc": after, "best": best}, mfcc=mfcc
            )
        if "table" in wanted:
            log("WAV files -> MFCC table, feature cache")
            results["table"] = run_table_bench(spec, clip_set, args.rounds)
        sizes = [int(n) for n in args.table_memory_clips.split(",") if n.strip()]
        if "table_memory" in wanted and len(sizes) > 1:
            log(f"MFCC table build peak memory at {sizes} clips")
            results["table_memory"] = run_table_memory_bench(clip_set.paths, sizes)
        if "decode" in wanted:
            log("WAV decode")
            results["decode"] = stages.run_decode_bench(spec, clip_set, args.rounds)
        if "embedding" in wanted:
            embedding = EmbeddingSettings()
            log(f"speech-embedding front end vs openWakeWord on {args.embedding_clips} clips")
            results["embedding"] = run_embedding_bench(
                clip_set.samples[: args.embedding_clips],
                rounds=args.rounds,
                threads=embedding.threads,
                batch_clips=embedding.batch_clips,
                matmul_size=args.matmul_size,
            )
            if "matmul" in results:  # the MFCC section's best matmul raises the bound too
                results["embedding"] = rebound_embedding(
                    results["embedding"], results["matmul"]["best"]
                )
        if "engines" in wanted and args.engine_seconds > 0:
            log(
                f"TTS engines: {args.engine_seconds:g} s over the engines, "
                f"{args.engine_voices} voice(s) each; speaker perturbation"
            )
            names = [name.strip() for name in args.engines.split(",") if name.strip()] or None
            engines = engine_rates(
                seconds_budget=args.engine_seconds,
                engines=names,
                voices_per_engine=args.engine_voices,
            )
            engines["perturb"] = perturb_rate(args.perturb_seconds)
            results["engines"] = engines
            log("engines measured: " + ", ".join(engine_names(engines)))
        if "synthesis" in wanted:
            log("synthesis")
            results["synthesis"] = stages.run_synthesis_bench(
                args.synth_utterances, max(1, args.rounds // 2)
            )
        if "alignment" in wanted:
            log("alignment")
            results["alignment"] = stages.run_alignment_bench(
                spec, args.align_utterances, max(1, args.rounds // 2)
            )
        if "parallel" in wanted and args.parallel_clips > 0:
            log("per-clip stages at 1 and N worker processes, beside their kernels")
            n = args.parallel_clips
            results["parallel_stages"] = run_parallel_stages_bench(
                n, n, max(1, n // 4), max(1, args.rounds // 2)
            )
        if "agreement" in wanted and args.agreement_utterances > 0:
            log("alignment agreement: TTS+DTW vs pocketsphinx, other languages")
            results["alignment_agreement"] = run_alignment_agreement_bench(
                args.agreement_utterances,
                max(1, args.rounds // 2),
                other_language_per_voice=args.agreement_per_voice,
            )
        if "onnx" in wanted:
            log("ONNX float vs int8")
            raw = MfccExtractor(spec)(clip_set.samples[:256])
            normed = normalize(raw, spec.with_stats(*compute_norm_stats(raw)))
            results["onnx"] = run_onnx_bench(spec, normed, args.onnx_runs)
        if "detect" in wanted:
            log("streaming detection vs per-window classification")
            results["detect"] = run_detect_bench(rounds=max(1, args.rounds // 2))
    if "e2e" in wanted:
        base = parse_yaml(args.base_config.read_text())
        scales = args.scales
        overrides = e2e.cheaper_overrides(args.epochs, args.eval_minutes, args.model_filters)
        results["e2e"] = e2e.run_e2e_bench(base, scales, overrides, log)
        first = results["e2e"]["runs"][0] if results["e2e"]["runs"] else None
        counted = (
            f" ({first['validated_clips']} clips here, {first['mfcc_rows']} MFCC rows with "
            f"the augmented copies)"
            if first
            else ""
        )
        results["e2e_definition"] = (
            f"Base config: {args.base_config.name}; 1x is its validated-set size{counted}. "
            f"Each scale runs a snapshot of the code taken when the bench started. The full "
            f"demo trains a 64-filter DS-CNN and the speech_embedding head for up to 40 epochs "
            f"each and "
            f"streams 30 minutes of audio through the evaluation; at 16x that would take hours "
            f"on 2 cores, so every scale runs the same cheaper config instead: "
            f"{json.dumps(overrides)} — a fixed {args.epochs} training epoch(s) of a "
            f"{args.model_filters}-filter DS-CNN and of the embedding head, a "
            f"{args.eval_minutes:g}-minute evaluation stream, and no int8 accuracy gate (a model "
            "trained that briefly is not one to "
            f"ship). Everything else is the demo's: keywords, voices, sampled speakers, other "
            f"TTS engines, negatives, augmentation, features, model family "
            f"({base.get('model', {}).get('family', 'speech_embedding')})."
        )
    if "demo" in wanted:
        results["demo"] = demo_time.run_demo_bench(
            parse_yaml(args.base_config.read_text()), log, args.demo_keyword
        )
        results["demo"]["config"] = args.base_config.name
    results["bench_seconds"] = time.perf_counter() - started
    return results


def _rebound(mfcc: dict, matmul: dict) -> dict:
    total = mfcc["flops_per_clip"]["total"]
    best = mfcc["clips_per_s"]
    return {
        "machine_flops_per_s": matmul["achievable"],
        "flop_bound_clips_per_s": matmul["achievable"] / total,
        "fraction_of_flop_bound": best["project"] * total / matmul["achievable"],
        "achieved_flops_per_s": best["project"] * total,
        "fraction_of_one_core_bound_one_thread": best["project_one_thread"]
        * total
        / matmul["torch_one_core"],
    }


def write_report(results: dict, out: Path) -> tuple[Path, Path]:
    targets = check_targets(results)
    results["targets"] = targets_as_dicts(targets)
    results["notes"] = _explain(results, targets)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(results, indent=1, default=str))
    md_path.write_text(render_markdown(results, targets, results["notes"]))
    return json_path, md_path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args, log=lambda msg: print(f"[bench] {msg}", flush=True))
    json_path, md_path = write_report(results, args.out)
    print(md_path.read_text())
    print(f"[bench] wrote {md_path} and {json_path} in {results['bench_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
