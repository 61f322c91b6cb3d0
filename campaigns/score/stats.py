"""Confidence intervals for campaign results (pure).

- a **mean score** gets Student's t interval at 95 %: mean ± t(0.975, n−1) · s / √n, with
  ``s`` the sample standard deviation (none for a single call);
- a **pass rate** (or any share) gets Wilson's score interval at 95 %, which stays inside
  0..1 and behaves for small samples and shares near 0 or 1, unlike mean ± 1.96·√(p(1−p)/n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

Z = NormalDist().inv_cdf(0.975)  # 1.95996…

# t(0.975, df) for df = 1..30 (standard tables, to three decimals).
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_975(df: int) -> float:
    """Student's t quantile at 0.975; beyond the table, the Cornish–Fisher expansion
    (exact to four decimals from 30 degrees of freedom)."""
    if df < 1:
        raise ValueError("at least one degree of freedom")
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_interval(
    values: Sequence[float], bounds: tuple[float, float] | None = None
) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high) at 95 %; low and high are None with fewer than two values, and
    kept inside ``bounds`` (a score cannot leave its scale, whatever a few calls say)."""
    n = len(values)
    if n == 0:
        return None, None, None
    mean = math.fsum(values) / n
    if n == 1:
        return mean, None, None
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t_975(n - 1) * math.sqrt(var / n)
    if bounds is None:
        return mean, mean - half, mean + half
    return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def wilson(successes: int, n: int) -> tuple[float | None, float | None, float | None]:
    """(share, low, high) at 95 % by Wilson's score interval."""
    if n == 0:
        return None, None, None
    p = successes / n
    z2 = Z * Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)
