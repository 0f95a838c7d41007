"""``make demo``: materialize the whole graph through a persistent Dagster instance, then summarize.

The run is recorded in ``$DAGSTER_HOME`` (SQLite), so ``make ui`` afterwards shows the
materializations, their metadata and the lineage.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl

from kws_assets.defs import PIPELINE_JOB, build_definitions
from kws_assets.defs.assets.ship import ARTIFACT_DIR
from kws_assets.defs.resources import KwsSettings


def _failed_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    lines = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            lines.append(f"{event.step_key}: {event.step_failure_data.error.message.strip()}")
    return lines


def summarize(defs: dg.Definitions, instance: dg.DagsterInstance) -> str:
    cfg = defs.resources["settings"].config
    validated: pl.DataFrame = defs.load_asset_value("validated_set", instance=instance)
    quarantined: pl.DataFrame = defs.load_asset_value("quarantined_clips", instance=instance)
    artifact = cfg.storage_path(*ARTIFACT_DIR)
    metrics = json.loads((artifact / "metrics.json").read_text())
    counts = (validated.group_by("label", "source").len()
              .pivot(on="source", index="label", values="len").fill_null(0).sort("label"))
    reasons = (quarantined.group_by("reason").len().sort("len", descending=True)
               if quarantined.height else None)
    out = ["clips per keyword (rows) and source (columns), after the quality gate:"]
    with pl.Config(tbl_rows=100, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        out.append(str(counts))
    split_sizes = dict(validated.group_by("split").len().iter_rows())
    out.append(f"splits (speaker-disjoint): {split_sizes}")
    reason_text = ", ".join(f"{r}={n}" for r, n in reasons.iter_rows()) if reasons is not None else "-"
    out.append(f"quarantined: {quarantined.height} ({reason_text})")
    out.append(f"test accuracy ({metrics['test_rows']} clips): float {metrics['float_test_accuracy']}"
               f"  int8 {metrics['int8_test_accuracy']}")
    out.append(f"int8 artifact: {metrics['int8_size_kb']} KB (float {metrics['float_size_kb']} KB)"
               f" at {artifact}")
    out.append(f"classify a clip: .venv/bin/kws classify --model {artifact} some.wav")
    return "\n".join(out)


INSTANCE_YAML = "telemetry:\n  enabled: false\n"
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``./.dagster_home``) with a dagster.yaml: SQLite, no telemetry."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists():
        instance_yaml.write_text(INSTANCE_YAML)
    return home


def main() -> int:
    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    defs = build_definitions()
    settings: KwsSettings = defs.resources["settings"]
    print(f"kws_assets demo: config {settings.config_path or '(embedded default)'}, "
          f"DAGSTER_HOME {os.environ['DAGSTER_HOME']}", flush=True)
    started = time.monotonic()
    result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
        instance=instance, run_config=RUN_CONFIG, raise_on_error=False)
    elapsed = time.monotonic() - started
    if not result.success:
        print(f"run {result.run_id} failed after {elapsed:.1f} s:", file=sys.stderr)
        for line in _failed_steps(result):
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"\nmaterialized the graph in {elapsed:.1f} s (run {result.run_id})")
    print(summarize(defs, instance))
    print("\nsee it in the UI: make ui  (http://127.0.0.1:3000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
