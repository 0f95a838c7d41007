"""The demo's own wall time: the whole graph on kws.yaml as it is (no cheaper overrides, unlike
the e2e curve), then a second run in the same instance and storage root after changing one
keyword, as a user editing kws.yaml and running ``make demo`` again would.

The second run re-renders only what the new keyword asks for: the clip store keeps every
rendered clip by its recipe, the feature cache every clip's features, the render cache the
evaluation's TTS (a changed keyword still changes the demo corpus' carrier sentences, the
negative words, the labels and so every model, which then trains from its previous
materialization on a short budget: ``train.warm_from_previous``).  Each run is a fresh process
(:func:`bench.e2e.materialize_in_child`); the report puts its graph time beside the sum of its
steps' times and the issue's targets (5 and 2 minutes on 2 cores) as ratios: the machine is
shared, so they are measurements to read, never assertions a test makes.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from bench.e2e import materialize_in_child
from kws_assets.settings import KwsConfig

DEMO_TARGET_S = 300.0
"""Issue 26: ``make demo`` on kws.yaml within 5 minutes of graph time on 2 cores."""
RERUN_TARGET_S = 120.0
"""Issue 26: the re-run after changing one keyword within 2 minutes."""
NEW_KEYWORD = "house"
"""What the second run says instead of the config's last keyword."""
SLOWEST_SHOWN = 8


def changed_keyword(cfg: dict, new: str = NEW_KEYWORD, old: str | None = None) -> dict:
    """``cfg`` with keyword ``old`` (default: the last one) replaced by ``new``, in its place."""
    keywords = list(cfg.get("keywords") or KwsConfig.model_validate(cfg).keywords)
    old = keywords[-1] if old is None and keywords else old
    if old is None or old not in keywords:
        raise ValueError(f"keyword {old!r} is not in the config's keywords {keywords}")
    if new in keywords:
        raise ValueError(f"keyword {new!r} is already in the config's keywords {keywords}")
    out = copy.deepcopy(cfg)
    out["keywords"] = [new if k == old else k for k in keywords]
    return out


def _summary(result: dict, target_s: float) -> dict:
    steps = result.get("step_seconds") or {}
    return {
        "success": bool(result.get("success")),
        "graph_s": result.get("graph_s"),
        "graph_cpu_s": result.get("graph_cpu_s"),
        "sum_of_steps_s": sum(steps.values()),
        "process_wall_s": result.get("process_wall_s"),
        "step_seconds": dict(sorted(steps.items(), key=lambda kv: -kv[1])),
        "target_s": target_s,
        "ratio_to_target": (result.get("graph_s") or float("nan")) / target_s,
        "failed_run": result.get("failed_run"),
        "errors": result.get("errors"),
    }


def run_demo_bench(
    base: dict,
    log,
    new_keyword: str = NEW_KEYWORD,
    workdir: Path | None = None,
    code: Path | None = None,
) -> dict:
    """The demo, then the demo with its last keyword replaced by ``new_keyword``, in one folder
    (removed afterwards unless ``workdir`` is given)."""
    with tempfile.TemporaryDirectory(prefix="kws-bench-demo-") as tmp:
        folder = (workdir or Path(tmp)) / "demo"
        cfg = copy.deepcopy(base)
        cfg.setdefault("storage", {})["root"] = str(folder / "data")
        log(f"demo: the whole graph on the base config in {folder}")
        first = _summary(materialize_in_child(cfg, folder, code, "first"), DEMO_TARGET_S)
        log(f"demo: {first['graph_s']:.1f} s of graph time")
        changed = changed_keyword(cfg, new_keyword)
        old = next(
            k for k in KwsConfig.model_validate(cfg).keywords if k not in changed["keywords"]
        )
        out: dict = {"change": {"from": old, "to": new_keyword}, "first": first}
        if not first["success"]:
            return out
        log(f"demo: again with keyword {old!r} replaced by {new_keyword!r}")
        rerun = materialize_in_child(changed, folder, code, "rerun")
        out["rerun"] = _summary(rerun, RERUN_TARGET_S)
        log(f"demo re-run: {out['rerun']['graph_s']:.1f} s of graph time")
    return out


def demo_section(demo: dict) -> list[str]:
    """The report's lines: both runs beside their targets, then the slowest steps of each."""
    runs = [("`make demo` on the base config", demo["first"])]
    if demo.get("rerun"):
        change = demo["change"]
        runs.append((f"re-run, keyword {change['from']!r} → {change['to']!r}", demo["rerun"]))
    lines = [
        "| run | graph s | sum of steps s | CPU s | target s | graph / target |",
        "|---|---|---|---|---|---|",
    ]
    for name, run in runs:
        if not run["success"]:
            lines.append(f"| {name} | failed in {run.get('failed_run')} | | | | |")
            continue
        lines.append(
            f"| {name} | {run['graph_s']:.1f} | {run['sum_of_steps_s']:.1f} | "
            f"{run['graph_cpu_s']:.1f} | {run['target_s']:.0f} | "
            f"{run['ratio_to_target']:.2f} |"
        )
    lines += [
        "",
        "Graph / target below 1 meets the issue's target (5 min for the demo, 2 min for the "
        "re-run, on 2 cores). Wall times on a shared machine drift with the other work: read "
        "the CPU seconds beside them.",
    ]
    for name, run in runs:
        if run["success"]:
            slowest = list(run["step_seconds"].items())[:SLOWEST_SHOWN]
            lines += [
                "",
                f"Slowest steps, {name}: "
                + ", ".join(f"`{step}` {seconds:.1f} s" for step, seconds in slowest),
            ]
    return lines
