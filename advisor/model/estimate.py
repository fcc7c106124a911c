"""Monte Carlo figures: a mean with its standard error, and a per-trial probability
from per-draw counts (:mod:`advisor.model.fastpath` re-exports them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Estimate", "estimate", "proportion", "zero_if_nan"]


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo mean and its standard error."""

    mean: float
    se: float

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.se:.2g}"

    @property
    def upper(self) -> float:
        """``mean + 2 se``, the figure a target is checked on (NaN counts as 0)."""
        return zero_if_nan(self.mean) + 2 * zero_if_nan(self.se)


def zero_if_nan(x: float) -> float:
    """0 for NaN (a figure of a job with no run in the window: nothing met, as far as it
    shows), else ``x``."""
    return 0.0 if math.isnan(x) else x


def estimate(x: np.ndarray) -> Estimate:
    """The mean of ``x`` and its standard error (sample sd / sqrt(n)). Computed from
    the sums, two calls into numpy: a volume's figures take dozens of these and
    np.std's own overhead was most of the time it takes to report them."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if not n:
        return Estimate(math.nan, math.nan)
    total = float(np.add.reduce(x))
    mean = total / n
    if n == 1:
        return Estimate(mean, 0.0)
    d = x - mean  # (deviations, not raw squares: no cancellation)
    return Estimate(mean, math.sqrt(float(np.dot(d, d)) / (n - 1) / n))


def proportion(hits: np.ndarray, trials: np.ndarray) -> Estimate:
    """A per-trial probability from per-draw counts: the mean over draws of each draw's
    share, with its standard error over the draws, but never below the binomial one of
    all trials pooled (Agresti-Coull: ``p~ = (k + 2) / (n + 4)``). Without that floor a
    rare event unseen in every draw (a weekly run's conflict) would read ``0 ± 0``."""
    hits, trials = np.asarray(hits, dtype=float), np.asarray(trials, dtype=float)
    has = trials > 0
    est = estimate(hits[has] / trials[has])
    n = float(trials[has].sum())
    if not n:
        return est
    p = (float(hits[has].sum()) + 2.0) / (n + 4.0)
    return Estimate(est.mean, max(est.se, math.sqrt(p * (1.0 - p) / (n + 4.0))))
