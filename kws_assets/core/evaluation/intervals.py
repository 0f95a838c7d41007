"""Exact confidence intervals for the two numbers a wake word is judged by: false accepts per hour
(a Poisson count in a known number of negative hours) and the false rejection rate (misses among
a known number of keywords, binomial).

A rate measured from 30 minutes of negatives with 0-2 events is a guess: one event in half an hour
reads "2 FA/h" and is compatible with anything from 0.05 to 11.  These intervals say how much the
measurement can claim, so that an operating point is chosen by what it surely does, not by luck.

Both intervals are **two-sided and central** at ``level``: each tail holds ``(1 - level) / 2``.
The upper end is therefore also a one-sided upper bound at ``(1 + level) / 2`` (97.5% for a 95%
interval): a point whose upper end meets a target meets it with at least that confidence.  Both
are exact (no normal approximation): Garwood's interval from chi-square quantiles for the Poisson
count, Clopper-Pearson's from beta quantiles for the binomial proportion; they are conservative
(cover at least ``level``), which is what a claim about a shipped model needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import beta, chi2

DEFAULT_LEVEL = 0.95
SIDED = "two-sided"
"""How :func:`poisson_interval` and :func:`clopper_pearson` split ``1 - level`` (for reports)."""


@dataclass(frozen=True)
class Interval:
    """``[lower, upper]`` at confidence ``level`` (two-sided, central)."""

    lower: float
    upper: float
    level: float


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return float(level)


def poisson_interval(events: int, level: float = DEFAULT_LEVEL) -> Interval:
    """Garwood's exact interval for the mean of a Poisson count that came out ``events``:
    ``chi2.ppf(a/2, 2k) / 2`` to ``chi2.ppf(1 - a/2, 2k + 2) / 2`` with ``a = 1 - level``
    (lower 0 when no event was seen).  0 events at 95%: 0 to 3.689."""
    level = _check_level(level)
    if events < 0:
        raise ValueError(f"an event count cannot be negative, got {events}")
    tail = (1.0 - level) / 2.0
    lower = 0.0 if events == 0 else float(chi2.ppf(tail, 2 * events)) / 2.0
    upper = float(chi2.ppf(1.0 - tail, 2 * events + 2)) / 2.0
    return Interval(lower, upper, level)


def rate_interval(events: int, hours: float, level: float = DEFAULT_LEVEL) -> Interval:
    """The exact interval of an event rate per hour: ``events`` seen in ``hours`` (> 0) of
    observation (:func:`poisson_interval` divided by the hours)."""
    if not hours > 0:
        raise ValueError(f"a rate needs a positive number of hours, got {hours}")
    count = poisson_interval(events, level)
    return Interval(count.lower / hours, count.upper / hours, count.level)


def clopper_pearson(misses: int, n: int, level: float = DEFAULT_LEVEL) -> Interval:
    """The Clopper-Pearson interval of a proportion ``misses / n``: ``beta.ppf(a/2, k, n-k+1)``
    to ``beta.ppf(1 - a/2, k+1, n-k)`` (0 at ``k = 0``, 1 at ``k = n``).  With no trial
    (``n = 0``) nothing is known: ``[0, 1]``."""
    level = _check_level(level)
    if n < 0 or not 0 <= misses <= max(n, 0):
        raise ValueError(f"need 0 <= misses <= n, got {misses} of {n}")
    if n == 0:
        return Interval(0.0, 1.0, level)
    tail = (1.0 - level) / 2.0
    lower = 0.0 if misses == 0 else float(beta.ppf(tail, misses, n - misses + 1))
    upper = 1.0 if misses == n else float(beta.ppf(1.0 - tail, misses + 1, n - misses))
    return Interval(lower, upper, level)


def hours_for_target(target_per_hour: float, level: float = DEFAULT_LEVEL) -> float:
    """The fewest hours of observation on which a rate's upper bound can be at most
    ``target_per_hour``: those of a point with no event at all (any event needs more hours).
    At 95% and 1 FA/h: 3.689 hours."""
    if not target_per_hour > 0:
        raise ValueError(f"the target rate must be positive, got {target_per_hour}")
    return poisson_interval(0, level).upper / target_per_hour
