"""Whole-graph materializations in child processes, and what a reader sees of their outputs.

Used by the storage tests (crash safety, concurrent runs, PostgreSQL instance): a run is a
``python -c`` child with its own ``DAGSTER_HOME`` and ``KWS_CONFIG``, so a test can SIGKILL it,
run two at once, or point it at another instance storage.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from string import Template

import dagster as dg
import polars as pl
import soundfile as sf

from kws_assets.core.storage.object_store import STAGING_DIR
from kws_assets.defs.jobs import JOBS
from kws_assets.lib.resources import ARTIFACTS

# The child: register the partitions the config names, then ingest every corpus batch, make
# every keyword's clips (in the order of $KWS_TEST_KEYWORD_ORDER when set), and run the pipeline
# job (curate to ship).  Exit code 0 only if every run succeeded.  With $KWS_TEST_PLAN_INDEX=i
# it makes only the i-th of those runs, and exits with PLAN_DONE when there is no i-th run.
PLAN_DONE = 3
GRAPH_RUNNER = Template(
    r"""
import os, sys
import dagster as dg
from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import INGEST_JOB, KEYWORD_JOB, PIPELINE_JOB
from kws_assets.lib.partitions import CORPUS_BATCHES, KEYWORDS, register_config_partitions

instance = dg.DagsterInstance.get()
defs = build_definitions()
partitions = register_config_partitions(instance, defs.resources["settings"].config)
order = os.environ.get("KWS_TEST_KEYWORD_ORDER")
keywords = order.split(",") if order else partitions[KEYWORDS.name]
plan = ([(INGEST_JOB, k) for k in partitions[CORPUS_BATCHES.name]]
        + [(KEYWORD_JOB, k) for k in keywords] + [(PIPELINE_JOB, None)])
index = os.environ.get("KWS_TEST_PLAN_INDEX")
if index is not None:
    if int(index) >= len(plan):
        sys.exit($plan_done)
    plan = [plan[int(index)]]
for job, partition in plan:
    print(f"run {job} {partition or ''}", flush=True)
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=False)
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(f"FAILED {event.step_key}: {event.step_failure_data.error.to_string()}",
                      file=sys.stderr, flush=True)
        sys.exit(1)
print("graph materialized", flush=True)
"""
).substitute(plan_done=PLAN_DONE)

# Folders under the storage root that hold the pipeline's outputs.
OUTPUT_FOLDERS = ("clips", "tables", "models", "artifacts")
ARTIFACT_FILES = {
    "model.int8.onnx",
    "model.float.onnx",
    "cpu_latency.json",
    "labels.json",
    "feature_config.json",
    "metrics.json",
}


def start_graph_run(
    config_file: Path, dagster_home: Path, log_file: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start a child materializing the whole graph; its stdout and stderr go to ``log_file``."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    child_env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "KWS_CONFIG": str(config_file),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log = open(log_file, "ab")  # noqa: SIM115 - closed by the child's exit
    return subprocess.Popen(
        [sys.executable, "-c", GRAPH_RUNNER],
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=config_file.parent,
    )


def wait_for(proc: subprocess.Popen, log_file: Path, timeout_s: float = 300.0) -> None:
    """Wait for a graph run to finish; fail with its log if it did not succeed."""
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"graph run timed out; log:\n{_tail(log_file)}") from None
    assert code == 0, f"graph run exited with {code}; log:\n{_tail(log_file)}"


def run_graph(
    config_file: Path, dagster_home: Path, log_file: Path, env: dict[str, str] | None = None
) -> None:
    wait_for(start_graph_run(config_file, dagster_home, log_file, env), log_file)


def run_graph_one_process_per_run(
    config_file: Path, dagster_home: Path, log_file: Path, env: dict[str, str] | None = None
) -> int:
    """The same runs as :func:`run_graph`, each in a fresh child process (as a daemon's run
    launcher starts them), one after the other; returns how many runs there were."""
    for index in itertools.count():
        proc = start_graph_run(
            config_file, dagster_home, log_file, {**(env or {}), "KWS_TEST_PLAN_INDEX": str(index)}
        )
        try:
            code = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"run {index} timed out; log:\n{_tail(log_file)}") from None
        if code == PLAN_DONE:
            return index
        assert code == 0, f"run {index} exited with {code}; log:\n{_tail(log_file)}"


def kill_when(
    proc: subprocess.Popen,
    condition: Callable[[], bool],
    log_file: Path,
    timeout_s: float = 300.0,
    poll_s: float = 0.02,
) -> None:
    """SIGKILL ``proc`` as soon as ``condition()`` holds (it must still be running then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"the run ended (code {proc.returncode}) before the kill point; "
                f"log:\n{_tail(log_file)}"
            )
        if condition():
            proc.kill()
            proc.wait()
            return
        time.sleep(poll_s)
    proc.kill()
    proc.wait()
    raise AssertionError(f"kill point not reached in {timeout_s:.0f} s; log:\n{_tail(log_file)}")


def _tail(log_file: Path, chars: int = 6000) -> str:
    return log_file.read_text(errors="replace")[-chars:] if log_file.exists() else "(no log)"


def visible_outputs(root: Path) -> list[Path]:
    """The output files a reader sees: everything under the output folders except hidden
    (``.``-prefixed) names and what lies inside hidden folders (staging areas)."""
    files = []
    for folder in OUTPUT_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            files += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    return sorted(files)


def hidden_leftovers(root: Path) -> list[Path]:
    """Hidden files and folders under the output folders (staging areas themselves excluded)."""
    found = []
    for folder in OUTPUT_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                if name.startswith(".") and not (name == STAGING_DIR and path.is_dir()):
                    found.append(path)
    return sorted(found)


def staged_leftovers(root: Path) -> list[Path]:
    """Files left in the object stores' staging folders (``<store>/.partial/``)."""
    return sorted(p for p in root.glob(f"*/{STAGING_DIR}/*") if p.is_file())


def unreadable_outputs(root: Path) -> list[str]:
    """Every visible output that a reader cannot use, with the reason (empty: all complete)."""
    problems = []
    for path in visible_outputs(root):
        try:
            if path.suffix == ".wav":
                info = sf.info(str(path))
                data, _ = sf.read(str(path), dtype="float32")
                if info.frames <= 0 or len(data) != info.frames:
                    problems.append(f"{path}: {len(data)} of {info.frames} frames")
            elif path.suffix == ".parquet":
                pl.read_parquet(path)
            elif path.suffix == ".pt":
                import torch

                torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=False)
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".onnx":
                import onnx

                onnx.checker.check_model(onnx.load_from_string(path.read_bytes()))
        except Exception as exc:  # any failure to read is what this check reports
            problems.append(f"{path}: {type(exc).__name__}: {exc}")
    artifact = root.joinpath(ARTIFACTS, "quantized_model")
    if artifact.is_dir():
        missing = ARTIFACT_FILES - {p.name for p in artifact.iterdir()}
        if missing:
            problems.append(f"{artifact}: incomplete artifact, missing {sorted(missing)}")
    return problems


def content_hashes(root: Path) -> dict[str, str]:
    """sha256 of every visible output, by path relative to the storage root."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in visible_outputs(root)
    }


def wav_count(root: Path) -> int:
    clips = root / "clips"
    if not clips.is_dir():
        return 0
    return sum(1 for p in clips.rglob("*.wav") if STAGING_DIR not in p.parts)


def secrets_found(
    instance, run_ids: list[str], secrets: list[str], log_paths: tuple[Path, ...] = ()
) -> list[str]:
    """Where any of ``secrets`` appears: run configs, tags and every event (metadata, log
    messages, errors) of ``run_ids``, and the files of ``log_paths`` (files, or folders searched
    recursively: compute logs, run logs).  Empty when none leaked."""
    from dagster._serdes import serialize_value

    assert secrets and all(len(s) >= 8 for s in secrets), "secrets to look for must be real values"
    found = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        texts = {f"run {run_id} config/tags": json.dumps([run.run_config, run.tags], default=str)}
        for index, entry in enumerate(instance.all_logs(run_id)):
            texts[f"run {run_id} event {index}"] = serialize_value(entry)
        for where, text in texts.items():
            found += [f"{where}: secret #{i}" for i, s in enumerate(secrets) if s in text]
    for item in map(Path, log_paths):
        for path in [item] if item.is_file() else item.rglob("*"):
            if path.is_file():
                text = path.read_bytes().decode("utf-8", errors="replace")
                found += [f"{path}: secret #{i}" for i, s in enumerate(secrets) if s in text]
    return found


def load_asset(pipeline: dict, key: str) -> pl.DataFrame:
    """An asset's value from ``pipeline["defs"]`` / ``pipeline["instance"]``; a partitioned
    asset's partitions (every registered one) concatenated."""
    defs, instance = pipeline["defs"], pipeline["instance"]
    partitions_def = defs.resolve_asset_graph().get(dg.AssetKey(key)).partitions_def
    if partitions_def is None:
        return defs.load_asset_value(key, instance=instance)
    keys = instance.get_dynamic_partitions(partitions_def.name)
    return pl.concat(
        [defs.load_asset_value(key, partition_key=k, instance=instance) for k in keys],
        how="diagonal_relaxed",
    )


def job_assets(defs: dg.Definitions, job: str) -> set[str]:
    """The asset keys (as strings) that the job named ``job`` selects in ``defs``'s graph."""
    selection = next(j for j in JOBS if j.name == job).selection
    return {key.to_user_string() for key in selection.resolve(defs.resolve_asset_graph())}
