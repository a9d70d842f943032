"""The trend check: a line through a series, judged against its noise and a size."""

import math

import pytest

from ordersaga.tools.bench.trend import Verdict, fit, trend

MINUTES = [float(m) for m in range(10)]


def test_the_least_squares_line_of_points_on_a_line_is_that_line() -> None:
    slope, intercept, error = fit([0, 1, 2, 3], [1, 3, 5, 7])
    assert (slope, intercept, error) == pytest.approx((2.0, 1.0, 0.0))
    assert fit([0, 1], [0, 1])[2] == math.inf  # two points say nothing of the scatter
    with pytest.raises(ValueError):
        fit([1, 1, 1], [0, 1, 2])


def test_a_steady_climb_larger_than_the_material_size_grows() -> None:
    ys = [100 + 2 * m + (0.3 if m % 2 else -0.3) for m in MINUTES]
    found = trend(MINUTES, ys, material=10)
    assert found.verdict == Verdict.GROWS
    assert found.rise == pytest.approx(18, abs=0.5) and found.t > 3


def test_a_significant_climb_smaller_than_the_material_size_is_flat() -> None:
    ys = [100 + 0.1 * m for m in MINUTES]  # 0.9 over the run: precise but too small
    assert trend(MINUTES, ys, material=10).verdict == Verdict.FLAT


def test_noise_without_a_slope_is_flat_however_large() -> None:
    ys = [100, 160, 90, 150, 95, 155, 100, 150, 90, 140]
    assert trend(MINUTES, [float(y) for y in ys], material=5).verdict == Verdict.FLAT


def test_one_late_spike_is_not_a_trend() -> None:
    ys = [100.0] * 9 + [400.0]
    assert trend(MINUTES, ys, material=10).verdict == Verdict.FLAT


def test_a_fall_and_too_few_points() -> None:
    ys = [200 - 10 * m for m in MINUTES]
    assert trend(MINUTES, ys, material=10).verdict == Verdict.FALLS
    assert trend([0, 1], [0, 100], material=1).verdict == Verdict.TOO_SHORT
