"""End-to-end scaling: the whole graph materialized at 1x, 4x and 16x the demo's clip count, each
in a fresh process, with its wall time and peak memory.

Scaling a config multiplies the clip count without changing what a clip is: the espeak-ng grid
gets ``sqrt(scale)`` times more rates and ``sqrt(scale)`` times more pitches (so ``scale`` times
more grid clips), each sampled speaker ``scale`` times more renders, the demo corpus ``scale``
times more carrier sentences per keyword and voice (so ``scale`` times more aligned clips), each
voice of the other TTS engines (``tts.engines``: flite, piper...) ``scale`` times more renders, and
``scale`` times more ``_silence_`` clips; synthetic ``_unknown_`` words, running-speech windows and
augmented copies follow as fixed ratios of those.  The held-out engine's evaluation set
(``transfer_evaluation``) and the keyword-free evaluation stream stay the same size: they measure
the model, not the data.  Keywords, voices, speakers, splits, features and the models stay the
demo's.  The same "cheaper" overrides apply at every scale (:func:`cheaper_overrides`): training
(the DS-CNN and the speech_embedding head both read ``train``) runs a fixed number of epochs (no
early stopping), so its work is proportional to the clip count too.

The child process (``python -m bench.e2e child ...``) materializes the graph the way ``make demo``
does and writes its own timings and ``getrusage`` peak RSS; the parent also polls the RSS of the
child's whole process tree from ``/proc`` while it runs.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.timing import loglog_slope

RSS_POLL_S = 0.2
CHILD_TIMEOUT_S = 3 * 3600
RATE_SPREAD_WPM = 20  # the scaled grid spans the demo's rates widened by this much each side
PITCH_SPREAD = 10
KIB = 1024


# ----------------------------------------------------------------------------- scaled configs


def _spread(values: list[int], count: int, margin: int, low: int, high: int) -> list[int]:
    """``count`` distinct integers spread evenly over ``values``' range widened by ``margin``."""
    if count == len(values):
        return list(values)
    lo, hi = max(low, min(values) - margin), min(high, max(values) + margin)
    if hi - lo < count - 1:
        raise ValueError(f"cannot spread {count} distinct values over [{lo}, {hi}]")
    step = (hi - lo) / (count - 1)
    return [round(lo + i * step) for i in range(count)]


def cheaper_overrides(epochs: int, eval_minutes: float, model_filters: int) -> dict:
    """What the bench changes in the demo config to stay practical at 16x, for every scale alike:
    a fixed number of training epochs (no early stopping) of a narrower DS-CNN, a shorter
    keyword-free stream for the streaming evaluation, and no int8 accuracy gate (a model trained
    this briefly is not one to ship; the gate would rightly stop the run).  Sections the config
    model lacks are skipped."""
    from kws_assets.settings import KwsConfig

    wanted = {
        "train": {
            "max_epochs": epochs,
            "min_epochs": epochs,
            "patience": epochs,
            "dscnn": {"max_epochs": epochs, "patience": epochs},
        },
        "model": {"n_filters": model_filters},
        "evaluation": {"negative_minutes": eval_minutes},
        "quant_gate": {"max_accuracy_drop_points": 100.0},
    }
    return {
        section: values for section, values in wanted.items() if section in KwsConfig.model_fields
    }


def scaled_config(base: dict, scale: int, overrides: dict, storage_root: str) -> dict:
    """``base`` (a kws.yaml mapping) with ``scale`` times the clips (see the module docstring) and
    the ``overrides`` (section -> fields) applied on top."""
    side = math.isqrt(scale)
    if side * side != scale or scale < 1:
        raise ValueError(f"scale must be a perfect square (1, 4, 16...), got {scale}")
    from kws_assets.settings import KwsConfig

    effective = KwsConfig.model_validate(base)  # the values in force, defaults included
    cfg = copy.deepcopy(base)
    tts_cfg = cfg.setdefault("tts", {})
    tts_cfg["rates"] = _spread(
        effective.tts.rates, len(effective.tts.rates) * side, RATE_SPREAD_WPM, 80, 450
    )
    tts_cfg["pitches"] = _spread(
        effective.tts.pitches, len(effective.tts.pitches) * side, PITCH_SPREAD, 0, 99
    )
    renders = getattr(effective.tts, "renders_per_speaker", None)
    if renders is not None and getattr(effective.tts, "sampled_speakers", 0):
        tts_cfg["renders_per_speaker"] = renders * scale  # sampled speakers: scale x the renders
    if effective.tts.engines:  # other engines: scale x the renders of every voice
        tts_cfg["engines"] = [
            {
                **engine.model_dump(mode="json"),
                "renders_per_voice": engine.renders_per_voice * scale,
            }
            for engine in effective.tts.engines
        ]
    # the sources in force (defaults too): every demo source is scaled, not only the written ones
    sources = cfg.setdefault("sources", [s.model_dump(mode="json") for s in effective.sources])
    for source, spec in zip(sources, effective.sources, strict=True):
        if spec.kind == "demo_tts":
            source["sentences_per_keyword"] = spec.sentences_per_keyword * scale
    cfg.setdefault("noise", {})["silence_clips"] = effective.noise.silence_clips * scale
    for section, values in overrides.items():
        cfg[section] = {**(cfg.get(section) or {}), **values}
    cfg.setdefault("storage", {})["root"] = storage_root
    return cfg


# ----------------------------------------------------------------------------- the child


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its waited-for children so far: unlike
    wall time, it hardly moves when other work shares the machine."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _child(config: Path, out: Path) -> int:
    started = time.perf_counter()
    import dagster as dg

    from kws_assets.core.dataset.data_card import engine_counts
    from kws_assets.definitions import build_definitions
    from kws_assets.lib.in_process import materialize_graph

    instance = dg.DagsterInstance.get()
    defs = build_definitions(config)
    ready, cpu_ready = time.perf_counter(), _cpu_seconds()
    graph = materialize_graph(defs, instance)
    done, cpu_done = time.perf_counter(), _cpu_seconds()
    result: dict = {
        "success": graph.success,
        "import_and_definitions_s": ready - started,
        "graph_s": done - ready,
        "graph_cpu_s": cpu_done - cpu_ready,
    }
    if not graph.success and graph.failed is not None:
        job, partition, failed = graph.failed
        result["failed_run"] = f"{job} {partition or ''}".strip()
        result["errors"] = [
            e.step_failure_data.error.to_string()[-2000:]
            for e in failed.all_events
            if e.is_step_failure and e.step_failure_data
        ]
    step_seconds: dict[str, float] = {}
    windows = []
    for _, _, run in graph.results:
        for stat in instance.get_run_step_stats(run.run_id):
            if stat.start_time is not None and stat.end_time is not None:
                key = stat.step_key.split("[")[0]
                step_seconds[key] = step_seconds.get(key, 0.0) + stat.end_time - stat.start_time
                windows.append((key, stat.start_time, stat.end_time))
    result["step_seconds"] = step_seconds
    result["step_windows"] = windows  # (step, start, end) in epoch seconds
    result["runs"] = len(graph.results)
    if graph.success:
        validated = defs.load_asset_value("validated_set", instance=instance)
        result["validated_clips"] = validated.height
        result["validated_clips_by_engine"] = engine_counts(validated)
        result["quarantined_clips"] = defs.load_asset_value(
            "quarantined_clips", instance=instance
        ).height
        result["mfcc_rows"] = defs.load_asset_value("mfcc_table", instance=instance).height
    result["maxrss_self_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["maxrss_children_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["total_s"] = time.perf_counter() - started
    out.write_text(json.dumps(result, indent=1))
    return 0 if graph.success else 1


# ----------------------------------------------------------------------------- the parent


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, now."""
    tree = _children_of()
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += _rss_kib(current)
        stack.extend(tree.get(current, []))
    return total


def step_peaks(windows: list, samples: list[tuple[float, int]]) -> dict[str, int]:
    """The highest polled tree RSS while each step ran (over all its partitions)."""
    peaks: dict[str, int] = {}
    for step, start, end in windows:
        during = [rss for t, rss in samples if start <= t <= end]
        if during:
            peaks[step] = max(peaks.get(step, 0), max(during))
    return peaks


def run_scale(
    base: dict, scale: int, overrides: dict, workdir: Path, log, code: Path | None = None
) -> dict:
    """Materialize the graph for ``scale`` in a fresh child process; its timings and peak RSS.
    ``code`` is a folder holding the ``kws_assets`` and ``bench`` packages to run (default: the
    working tree)."""
    folder = workdir / f"scale_{scale}"
    log(f"e2e {scale}x: materializing in {folder}")
    result = materialize_in_child(
        scaled_config(base, scale, overrides, str(folder / "data")), folder, code
    )
    result["scale"] = scale
    if not result.get("success"):
        raise RuntimeError(
            f"scale {scale}x failed in {result.get('failed_run')}: {result.get('errors')}"
        )
    log(
        f"e2e {scale}x: {result['validated_clips']} clips in {result['graph_s']:.1f} s, "
        f"peak RSS {result['maxrss_self_kib'] / KIB:.0f} MiB"
    )
    return result


def materialize_in_child(
    cfg: dict, folder: Path, code: Path | None = None, name: str = "run"
) -> dict:
    """Materialize the whole graph for the config ``cfg`` in a fresh child process, with
    ``folder`` holding its ``DAGSTER_HOME`` and, under ``name``, its config, log and result (a
    second call on the same folder finds the first one's instance, data and caches, as a second
    ``make demo`` does); the child's result with its wall time and peak RSS."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.kws.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = folder / f"{name}.result.json"
    out.unlink(missing_ok=True)
    root = code or Path(__file__).resolve().parents[1]
    env = {**os.environ, "DAGSTER_HOME": str(folder / "dagster_home"), "KWS_CONFIG": str(config)}
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    Path(env["DAGSTER_HOME"]).mkdir(exist_ok=True)
    started = time.perf_counter()
    with open(folder / f"{name}.log", "wb") as child_log:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.e2e",
                "child",
                "--config",
                str(config),
                "--out",
                str(out),
            ],
            env=env,
            stdout=child_log,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
        peak = 0
        samples: list[tuple[float, int]] = []  # (epoch seconds, tree RSS KiB)
        try:
            while child.poll() is None:
                rss = tree_rss_kib(child.pid)
                samples.append((time.time(), rss))
                peak = max(peak, rss)
                if time.perf_counter() - started > CHILD_TIMEOUT_S:
                    child.kill()
                    raise TimeoutError(f"{folder.name} ran over {CHILD_TIMEOUT_S} s")
                time.sleep(RSS_POLL_S)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    wall_s = time.perf_counter() - started
    if not out.is_file():
        tail = (folder / f"{name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"{folder.name}: the child wrote no result (exit {child.returncode}):\n{tail}"
        )
    result = json.loads(out.read_text())
    result.update(
        process_wall_s=wall_s,
        peak_tree_rss_kib=peak,
        exit_code=child.returncode,
        step_peak_rss_kib=step_peaks(result.pop("step_windows", []), samples),
    )
    return result


def summarize_scaling(runs: list[dict]) -> dict:
    """The scaling exponents (whole graph and per step) and the peak-RSS ratios."""
    runs = sorted(runs, key=lambda r: r["scale"])
    clips = [float(r["validated_clips"]) for r in runs]
    graph_s = [r["graph_s"] for r in runs]
    cpu_s = [r["graph_cpu_s"] for r in runs]
    out: dict = {
        "clips": clips,
        "graph_s": graph_s,
        "graph_cpu_s": cpu_s,
        "exponent": loglog_slope(clips, graph_s),
        "exponent_last_two": loglog_slope(clips[-2:], graph_s[-2:]),
        "exponent_cpu": loglog_slope(clips, cpu_s),
        "step_exponents": {},
    }
    steps = set.intersection(*(set(r["step_seconds"]) for r in runs))
    for step in sorted(steps):
        seconds = [r["step_seconds"][step] for r in runs]
        if min(seconds) > 0:
            out["step_exponents"][step] = loglog_slope(clips, seconds)
    first, last = runs[0], runs[-1]
    out["rss_ratio_last_vs_first"] = last["maxrss_self_kib"] / first["maxrss_self_kib"]
    out["tree_rss_ratio_last_vs_first"] = last["peak_tree_rss_kib"] / max(
        first["peak_tree_rss_kib"], 1
    )
    return out


SNAPSHOT_FILES = ("pyproject.toml",)
"""Copied beside the packages: ``dg.load_from_defs_folder`` finds the project root by its
``[tool.dg]`` table and refuses to load the definitions without it."""


def snapshot_code(folder: Path) -> Path:
    """Copy ``kws_assets``, ``bench`` and the project file into ``folder``: every scale then runs
    the same code, even if the working tree is edited while the (long) bench runs."""
    root = Path(__file__).resolve().parents[1]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results")
    for package in ("kws_assets", "bench"):
        shutil.copytree(root / package, folder / package, ignore=ignore)
    for name in SNAPSHOT_FILES:
        shutil.copy2(root / name, folder / name)
    return folder


def run_e2e_bench(
    base: dict, scales: list[int], overrides: dict, log, workdir: Path | None = None
) -> dict:
    """All scales, smallest first, each in a fresh child running a snapshot of the code taken
    at the start.  A scale that fails is recorded with its error and ends the curve (the larger
    ones would fail the same way); the work folder is removed unless ``workdir`` is given."""
    runs: list[dict] = []
    failure: dict | None = None
    with tempfile.TemporaryDirectory(prefix="kws-bench-e2e-") as tmp:
        folder = workdir or Path(tmp)
        code = snapshot_code(folder / "code")
        for scale in scales:
            try:
                runs.append(run_scale(base, scale, overrides, folder, log, code=code))
            except (RuntimeError, TimeoutError) as exc:
                log(f"e2e {scale}x failed: {str(exc)[:500]}")
                failure = {"scale": scale, "error": str(exc)[-4000:]}
                break
    return {
        "overrides": overrides,
        "runs": runs,
        "failed": failure,
        "scaling": summarize_scaling(runs) if len(runs) > 1 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    child = sub.add_parser("child", help="materialize the graph once (run by the bench)")
    child.add_argument("--config", type=Path, required=True)
    child.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    return _child(args.config, args.out)


if __name__ == "__main__":
    sys.exit(main())
