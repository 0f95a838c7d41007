"""The exact Poisson (Garwood) and binomial (Clopper-Pearson) intervals, checked on known counts
against the defining tail probabilities computed here by plain sums (no scipy), and against
published table values."""

from __future__ import annotations

import math

import pytest

from kws_assets.core.evaluation.intervals import (
    clopper_pearson,
    hours_for_target,
    poisson_interval,
    rate_interval,
)


def _poisson_cdf(k: int, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(mean), by the series."""
    return sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k + 1))


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), by the sum."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize(
    ("events", "lower", "upper"),
    [(0, 0.0, 3.6889), (1, 0.0253, 5.5716), (5, 1.6235, 11.6683)],  # Garwood's table, 95%
)
def test_poisson_interval_on_known_counts(events: int, lower: float, upper: float) -> None:
    interval = poisson_interval(events, 0.95)
    assert interval.lower == pytest.approx(lower, abs=1e-4)
    assert interval.upper == pytest.approx(upper, abs=1e-4)
    # the defining property, two-sided: each end leaves 2.5% in its tail
    assert _poisson_cdf(events, interval.upper) == pytest.approx(0.025, abs=1e-9)
    if events:
        assert 1 - _poisson_cdf(events - 1, interval.lower) == pytest.approx(0.025, abs=1e-9)


def test_rate_interval_divides_by_the_hours() -> None:
    # 0 events in 1 h; 1 event in half an hour ("2 FA/h"); 5 events in 10 h
    assert rate_interval(0, 1.0).upper == pytest.approx(3.6889, abs=1e-4)
    half = rate_interval(1, 0.5)
    assert (half.lower, half.upper) == pytest.approx((0.0506, 11.1433), abs=1e-4)
    ten = rate_interval(5, 10.0, 0.9)
    assert _poisson_cdf(5, ten.upper * 10.0) == pytest.approx(0.05, abs=1e-9)
    assert ten.lower < 0.5 < ten.upper and ten.level == 0.9
    with pytest.raises(ValueError, match="positive number of hours"):
        rate_interval(0, 0.0)


def test_a_wider_level_gives_a_wider_interval() -> None:
    narrow, wide = poisson_interval(3, 0.8), poisson_interval(3, 0.99)
    assert wide.lower < narrow.lower < 3 < narrow.upper < wide.upper
    with pytest.raises(ValueError, match="level"):
        poisson_interval(1, 1.0)
    with pytest.raises(ValueError, match="negative"):
        poisson_interval(-1)


@pytest.mark.parametrize(
    ("misses", "n", "lower", "upper"),
    [(0, 10, 0.0, 0.3085), (5, 10, 0.1871, 0.8129), (10, 10, 0.6915, 1.0), (1, 20, 0.0013, 0.2487)],
)
def test_clopper_pearson_on_known_cases(misses: int, n: int, lower: float, upper: float) -> None:
    interval = clopper_pearson(misses, n, 0.95)
    assert (interval.lower, interval.upper) == pytest.approx((lower, upper), abs=1e-4)
    if misses < n:  # P(X <= k | upper) = 2.5%
        assert _binomial_cdf(misses, n, interval.upper) == pytest.approx(0.025, abs=1e-9)
    if misses > 0:  # P(X >= k | lower) = 2.5%
        assert 1 - _binomial_cdf(misses - 1, n, interval.lower) == pytest.approx(0.025, abs=1e-9)


def test_clopper_pearson_without_trials_knows_nothing() -> None:
    none = clopper_pearson(0, 0)
    assert (none.lower, none.upper) == (0.0, 1.0)
    with pytest.raises(ValueError, match="misses"):
        clopper_pearson(3, 2)


def test_hours_for_a_target_are_those_of_a_point_with_no_event() -> None:
    assert hours_for_target(1.0) == pytest.approx(3.6889, abs=1e-4)
    assert hours_for_target(0.5, 0.95) == pytest.approx(2 * 3.6889, abs=1e-3)
    # on exactly that many hours, no event meets the target with its upper bound
    hours = hours_for_target(2.0, 0.9)
    assert rate_interval(0, hours, 0.9).upper == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        hours_for_target(0.0)
