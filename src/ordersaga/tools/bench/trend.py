"""Does a series grow? A least-squares line through it, judged against its own noise and
against a size that matters.

A series *grows* only when both hold: the slope is clearly above zero for the scatter
around the line (t = slope / its standard error above :data:`SIGNIFICANT`), and the rise
the line makes over the series is larger than ``material`` (a share of its level, or a
floor). The first alone flags a 1 % drift a quiet run measures precisely; the second
alone flags one noisy window.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

SIGNIFICANT = 3.0
"""The t value above which a slope is not noise (about 1 % by chance for a few points)."""
MIN_POINTS = 3


class Verdict(StrEnum):
    FLAT = "flat"
    GROWS = "grows"
    FALLS = "falls"
    TOO_SHORT = "too short to judge"


@dataclass(frozen=True)
class Trend:
    """The line through a series: its slope per unit of x, the rise over the series'
    span, the slope's t value and the verdict."""

    points: int
    mean: float
    slope: float
    rise: float
    t: float
    material: float
    verdict: Verdict


def fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """(slope, intercept, standard error of the slope) of the least-squares line; the
    error is infinite for fewer than three points, zero for a perfect line."""
    n = len(xs)
    if n != len(ys) or n < 2:
        raise ValueError("a line needs two points or more, as many x as y")
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("the points share one x")
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_x
    if n < 3:
        return slope, intercept, math.inf
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return slope, intercept, math.sqrt(residual / (n - 2) / sxx)


def _exact_t(slope: float) -> float:
    """t of a line the points lie on exactly: as sure as can be, unless it is level."""
    return 0.0 if slope == 0 else math.copysign(math.inf, slope)


def trend(xs: Sequence[float], ys: Sequence[float], material: float) -> Trend:
    """Judge ``ys`` over ``xs``: grows, falls or flat; a rise counts when it is
    significant and larger than ``material`` (same unit as ``ys``)."""
    mean = sum(ys) / len(ys) if ys else 0.0
    if len(xs) < MIN_POINTS:
        return Trend(len(xs), mean, 0.0, 0.0, 0.0, material, Verdict.TOO_SHORT)
    slope, _, error = fit(xs, ys)
    rise = slope * (max(xs) - min(xs))
    t = slope / error if error > 0 else _exact_t(slope)
    verdict = Verdict.FLAT
    if abs(t) > SIGNIFICANT and abs(rise) > material:
        verdict = Verdict.GROWS if slope > 0 else Verdict.FALLS
    return Trend(len(xs), mean, slope, rise, t, material, verdict)
