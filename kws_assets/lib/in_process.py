"""Materialize the whole partitioned graph in one process, in dependency order.

What ``make demo`` and the end-to-end test use instead of a daemon and backfills: register the
partitions the config names (keywords, configured sources, ready landing-zone batches), run
``ingest_batch`` once per batch, ``keyword_clips`` once per keyword, then ``kws_pipeline``
(curate to ship) once.  Each run is recorded in the instance like any other, so the UI shows the
same partitions and materializations a backfill would have made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from kws_assets.defs.jobs import INGEST_JOB, KEYWORD_JOB, PIPELINE_JOB
from kws_assets.lib.partitions import (
    CORPUS_BATCHES_PARTITION,
    KEYWORDS_PARTITION,
    register_config_partitions,
)
from kws_assets.lib.resources import settings_resource


@dataclass
class GraphRun:
    """The runs of one whole-graph materialization, in order; ``failed`` is the first failed one."""

    results: list[tuple[str, str | None, dg.ExecuteInProcessResult]] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return bool(self.results) and all(r.success for _, _, r in self.results)

    @property
    def failed(self) -> tuple[str, str | None, dg.ExecuteInProcessResult] | None:
        return next(((j, p, r) for j, p, r in self.results if not r.success), None)

    def materialized(self) -> set[tuple[str, str | None]]:
        """(asset key, partition) of every materialization of every run."""
        return {
            (e.asset_key.to_user_string(), e.partition)
            for _, _, r in self.results
            for e in r.get_asset_materialization_events()
            if e.asset_key is not None  # always set on a materialization event
        }

    def check_evaluations(self) -> list:
        return [e for _, _, r in self.results for e in r.get_asset_check_evaluations()]


def materialize_graph(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    run_config: Mapping[str, Any] | None = None,
    on_start: Callable[[int, int, str], None] = lambda index, total, step: None,
    on_finish: Callable[[dg.ExecuteInProcessResult, float], None] = lambda result, seconds: None,
) -> GraphRun:
    """Every partition of every asset, then the unpartitioned rest; stops at the first failure.

    ``on_start(index, total, step)`` is called before each run (1-based index of the runs
    planned, ``step`` = job name and partition), ``on_finish(result, seconds)`` after it."""
    cfg = settings_resource(defs).config
    partitions = register_config_partitions(instance, cfg)
    plan = (
        [(INGEST_JOB, key) for key in partitions[CORPUS_BATCHES_PARTITION]]
        + [(KEYWORD_JOB, key) for key in partitions[KEYWORDS_PARTITION]]
        + [(PIPELINE_JOB, None)]
    )
    graph = GraphRun()
    for index, (job_name, partition) in enumerate(plan, start=1):
        on_start(index, len(plan), job_name + (f" [{partition}]" if partition else ""))
        started = time.monotonic()
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, partition_key=partition, run_config=run_config, raise_on_error=False
        )
        on_finish(result, time.monotonic() - started)
        graph.results.append((job_name, partition, result))
        if not result.success:
            break
    return graph


def failed_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    """``step: error message`` for each failed step of a run, and each failed blocking check
    with what it found (its description names the setting to change)."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            lines.append(f"{event.step_key}: {event.step_failure_data.error.message.strip()}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.description:
            lines.append(f"check {evaluation.check_name} failed: {evaluation.description}")
    return lines
