"""Which precision to run on a CPU: the float and the int8 ONNX graph of one model, timed.

int8 is what a microcontroller needs, but on a desktop or server CPU a small keyword model is
dominated by per-operator overhead rather than arithmetic, so int8 is not always the faster one
(measured here: 0.82x to 1.07x the float speed for one window of the demo DS-CNN, 1.2-1.3x for
batches of 16 windows, depending on the machine).  Instead of guessing, the artifact folder
ships both graphs and ``cpu_latency.json``: each precision's median time per window at batch 1
(streaming, one window per hop) and at a batch (offline scoring), interleaved in rounds so both
see the same machine load, and the precision to use on a CPU like the one that built it.
``kws classify/detect --precision auto`` follows that advice; ``int8`` stays the default
because it is the precision every accuracy gate of the pipeline measured.

The timing is a measurement of the build machine, written beside the model, never into
``metrics.json`` (which must be identical between executors and reruns).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_assets.core.onnx_session import cpu_session

CPU_LATENCY_FILE = "cpu_latency.json"
CPU_LATENCY_FORMAT = "kws-cpu-latency-v1"
PRECISIONS = ("int8", "float")
DEFAULT_PRECISION = "int8"
AUTO_PRECISION = "auto"
BATCH_SIZES = (1, 16)
FLOAT_MARGIN = 0.05
"""Float is advised only when it is this much faster per window than int8: within the timing
noise the smaller graph, whose accuracy the pipeline's gates measured, wins."""
WARMUP_CALLS = 20

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class PrecisionLatency:
    """Median microseconds per window of each precision at each batch size, and the advice."""

    median_us: dict[str, dict[int, float]]
    recommended: str
    threads: int
    calls_per_batch: int
    machine: str

    def speedup(self, batch_size: int) -> float:
        """float time / int8 time per window at ``batch_size`` (> 1: int8 is faster)."""
        return self.median_us["float"][batch_size] / self.median_us["int8"][batch_size]

    def as_dict(self) -> dict[str, object]:
        return {
            "format": CPU_LATENCY_FORMAT,
            "recommended": self.recommended,
            "median_us_per_window": {
                precision: {str(batch): round(us, 2) for batch, us in by_batch.items()}
                for precision, by_batch in self.median_us.items()
            },
            "int8_speedup": {str(b): round(self.speedup(b), 3) for b in self.median_us["int8"]},
            "threads": self.threads,
            "calls_per_batch": self.calls_per_batch,
            "machine": self.machine,
            "rule": f"float only if at least {FLOAT_MARGIN:.0%} faster per window at batch 1",
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PrecisionLatency:
        if data.get("format") != CPU_LATENCY_FORMAT:
            raise ValueError(f"not a {CPU_LATENCY_FORMAT} document (format {data.get('format')!r})")
        recommended = data.get("recommended")
        if recommended not in PRECISIONS:
            raise ValueError(f"recommended precision {recommended!r} is not one of {PRECISIONS}")
        table = data.get("median_us_per_window")
        if not isinstance(table, dict) or set(table) != set(PRECISIONS):
            raise ValueError(f"median_us_per_window must map each of {PRECISIONS} to batches")
        median_us = {
            precision: {int(batch): float(us) for batch, us in by_batch.items()}
            for precision, by_batch in table.items()
        }
        return cls(
            median_us=median_us,
            recommended=str(recommended),
            threads=int(str(data.get("threads", 1))),
            calls_per_batch=int(str(data.get("calls_per_batch", 0))),
            machine=str(data.get("machine", "")),
        )


def recommend_precision(median_us: Mapping[str, Mapping[int, float]]) -> str:
    """``float`` when it beats int8 per window at batch 1 by :data:`FLOAT_MARGIN`, else int8."""
    batch = min(median_us["int8"])
    faster_float = median_us["float"][batch] * (1.0 + FLOAT_MARGIN) < median_us["int8"][batch]
    return "float" if faster_float else "int8"


def measure_precision_latency(
    models: Mapping[str, PathLike],
    windows: np.ndarray,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    calls: int = 60,
    rounds: int = 5,
    threads: int = 1,
) -> PrecisionLatency:
    """Time ``models`` (``{"int8": path, "float": path}``, one input each) on ``windows``
    (``[n, *input_shape]`` real model inputs, e.g. validation features) per batch size.

    Rounds alternate between the precisions so a load change hits both; ``calls`` calls per
    round, precision and batch size; the result is the median time of one call divided by the
    batch size.  Costs about ``2 * rounds * calls * sum(batch_sizes)`` windows of inference.
    """
    if set(models) != set(PRECISIONS):
        raise ValueError(f"models must be exactly {PRECISIONS}, got {sorted(models)}")
    x = np.ascontiguousarray(windows, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"windows must be a non-empty batch of model inputs, got {x.shape}")
    if calls < 1 or rounds < 1 or not batch_sizes or min(batch_sizes) < 1:
        raise ValueError("calls, rounds and every batch size must be positive")
    sessions = {p: cpu_session(models[p], threads) for p in PRECISIONS}
    input_names = {p: s.get_inputs()[0].name for p, s in sessions.items()}
    median_us: dict[str, dict[int, float]] = {p: {} for p in PRECISIONS}
    for batch in sorted(set(batch_sizes)):
        pool = np.concatenate([x] * -(-batch // len(x))) if len(x) < batch else x
        batches = [pool[s : s + batch] for s in range(0, len(pool) - batch + 1, batch)]
        samples: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        for precision, session in sessions.items():
            for i in range(WARMUP_CALLS):
                session.run(None, {input_names[precision]: batches[i % len(batches)]})
        for _ in range(rounds):
            for precision, session in sessions.items():
                feed_name = input_names[precision]
                for i in range(calls):
                    feed = {feed_name: batches[i % len(batches)]}
                    started = time.perf_counter()
                    session.run(None, feed)
                    samples[precision].append(time.perf_counter() - started)
        for precision in PRECISIONS:
            median_us[precision][batch] = statistics.median(samples[precision]) * 1e6 / batch
    return PrecisionLatency(
        median_us=median_us,
        recommended=recommend_precision(median_us),
        threads=threads,
        calls_per_batch=calls * rounds,
        machine=f"{platform.machine()} {platform.processor() or platform.system()}".strip(),
    )


def write_cpu_latency(directory: PathLike, latency: PrecisionLatency) -> Path:
    """Write ``cpu_latency.json`` into an artifact folder (atomically)."""
    target = Path(directory) / CPU_LATENCY_FILE
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.write_text(json.dumps(latency.as_dict(), indent=2, sort_keys=True) + "\n")
    staging.replace(target)
    return target


def read_cpu_latency(artifact_dir: PathLike) -> PrecisionLatency | None:
    """The timing of an artifact folder; None when the folder has none (built before it was
    measured).  A malformed file is a ``ValueError`` naming it."""
    path = Path(artifact_dir) / CPU_LATENCY_FILE
    if not path.is_file():
        return None
    try:
        return PrecisionLatency.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err


def resolve_precision(artifact_dir: PathLike, precision: str) -> str:
    """``int8`` or ``float`` for a requested ``int8`` / ``float`` / ``auto`` (the folder's
    advice, int8 when it has none)."""
    if precision in PRECISIONS:
        return precision
    if precision != AUTO_PRECISION:
        raise ValueError(
            f"precision must be one of {(*PRECISIONS, AUTO_PRECISION)}, got {precision!r}"
        )
    latency = read_cpu_latency(artifact_dir)
    return latency.recommended if latency is not None else DEFAULT_PRECISION
