"""Timing helpers: interleaved rounds, best-of and median, and a log-log fit."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field


@dataclass
class Timing:
    """Seconds per run of one measured thing over several rounds, and the work one run does."""

    name: str
    items: int  # clips, utterances... processed by one run
    seconds: list[float] = field(default_factory=list)

    @property
    def best_s(self) -> float:
        return min(self.seconds)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best_rate(self) -> float:
        """Items per second of the fastest round (the least disturbed by other load)."""
        return self.items / self.best_s

    @property
    def median_rate(self) -> float:
        return self.items / self.median_s

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(best_rate=self.best_rate, median_rate=self.median_rate)
        return out


def interleaved(
    runs: Mapping[str, tuple[Callable[[], object], int]], rounds: int, warmup: bool = True
) -> dict[str, Timing]:
    """Time each ``name -> (run, items)`` once per round, all of them round after round.

    Interleaving means a burst of load from elsewhere slows every contestant of that round, not
    one of them; the best round of each is then compared.  ``warmup`` runs each once untimed
    (JIT compilation, lazy initialisation, page cache).
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    timings = {name: Timing(name, items) for name, (_, items) in runs.items()}
    if warmup:
        for run, _ in runs.values():
            run()
    for _ in range(rounds):
        for name, (run, _) in runs.items():
            started = time.perf_counter()
            run()
            timings[name].seconds.append(time.perf_counter() - started)
    return timings


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x): the exponent k of y ~ x^k."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two (x, y) points")
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    if sxx == 0:
        raise ValueError("x values must not all be equal")
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sxx
