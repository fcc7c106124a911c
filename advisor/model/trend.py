"""The p99 trend of one volume's backup durations, and when it reaches the job interval.

A growing volume's backups get slower week after week; the pooled quantiles of
:mod:`advisor.model.durations` average that away. This module fits the trend and
extrapolates it, for the report's "when will this volume's backups outlast its
interval" question.

Model
-----
A backup started at ``t`` (days from a reference time ``t0``, the mean start of the
backups used) lasts ``T`` seconds with

.. math::

    \\log T = a + b\\,t + \\sigma\\,\\varepsilon, \\qquad \\varepsilon \\sim N(0, 1),

so durations are lognormal with a median growing by a factor ``exp(b)`` a day (``b`` is
``slope_per_day``; ``exp(7 b) - 1`` is the growth per week). The 99th percentile of a
backup started at ``t`` is

.. math::

    p_{99}(t) = \\exp(a + b\\,t + z_{0.99}\\,\\sigma), \\qquad z_{0.99} = 2.3263.

Fit. Completed backups only: ordinary least squares of ``log T`` on ``t``, the maximum
likelihood fit with ``sigma^2 = RSS / (n - 2)``; ``se(b) = sigma / sqrt(S_tt)``,
``se(a) = sigma / sqrt(n)`` (uncorrelated, as ``t`` is centred) and
``var(log sigma) ~ 1 / (2 (n - 2))``.
Censored backups (in progress, failed) that come with a time they lasted at least
(``duration_s`` given on a censored row) are right-censored observations: the fit is
then a Tobit regression, maximising

.. math::

    \\sum_{\\text{completed}} \\log \\tfrac{1}{\\sigma}\\phi(r_i)
    + \\sum_{\\text{censored}} \\log\\bigl(1 - \\Phi(r_j)\\bigr),
    \\qquad r = (\\log T - a - b\\,t) / \\sigma,

over ``(a, b, log sigma)`` (BFGS from the least-squares start, analytic gradient); the
covariance is the inverse of the observed information (the Hessian by central
differences of the gradient). Dropping them instead biases ``b`` and ``p99`` down when
the long runners are the ones still running. Censored rows without a known duration
cannot enter the fit: they are counted, and the note warns when they are more than
:data:`CENSORED_WARN_SHARE` of the rows.

Significance. Growth is significant when ``b - 2 se(b) > 0`` (about the one-sided
2.5 % level).

Crossing. ``p99(t) = I`` (the interval, seconds) in closed form:

.. math::

    t^* = \\bigl(\\log I - a - z_{0.99}\\,\\sigma\\bigr) / b .

Its range is the set of ``t`` where ``log I`` lies within two standard errors of the
fitted ``log p99(t)`` (Fieller's method): with ``m = a + z sigma - log I`` and ``V(t)``
the delta-method variance of ``a + b t + z sigma`` (the full covariance of
``(a, b, log sigma)``), the ends solve

.. math::

    (m + b\\,t)^2 = 4\\,V(t),

a quadratic in ``t`` whose leading coefficient ``b^2 - 4 var(b)`` is positive exactly
when growth is significant: the range is bounded then, and unbounded (None) otherwise.
A crossing is reported only when growth is significant and ``t*`` is at most
``horizon_days`` after ``now`` (or already past: the note says so).

Assumptions: one straight line in log duration over the whole history (a volume whose
growth changed pace should be fitted on its recent history); residuals independent and
normal; the forecast ignores the chance that the data or the schedule change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor import units
from advisor.model.trend_fit import (
    CENSORED_WARN_SHARE,
    MIN_COMPLETED,
    MIN_SPAN_DAYS,
    TrendFit,
    days_from,
    fit_trend,
)
from advisor.units import percent_pm as pct_pm

__all__ = ["CENSORED_WARN_SHARE", "MIN_COMPLETED", "MIN_SPAN_DAYS", "Z99", "Trend",
           "TrendFit", "fit_trend", "forecast", "forecast_p99", "volume_trends"]

Z99 = 2.3263478740408408
"""The standard normal 0.99 quantile."""
_K = 2.0  # standard errors: significance and the crossing range (about 95 %)


@dataclass(frozen=True)
class Trend:
    """The fitted p99 trend of backup durations and its forecast (see the module
    docstring for the method). Times are UTC; durations are seconds."""

    n: int
    """Completed backups used in the fit."""
    n_censored: int
    """Censored rows given (in progress, failed)."""
    n_censored_used: int
    """Censored rows with a known "lasted at least" time, used in a censored fit."""
    method: str
    """``"ols"`` (completed only), ``"tobit"`` (with censored rows), ``"pooled"`` (too
    few or too close data for a slope: level and spread only) or ``"none"`` (no data)."""
    ref: pd.Timestamp | None
    """Time origin of the line: the mean start of the backups used."""
    level_log: float
    """``a``: mean log duration (log seconds) at ``ref``."""
    slope_per_day: float
    """``b``: growth of log duration per day (NaN without a slope)."""
    slope_se: float
    """Standard error of ``slope_per_day`` (NaN without a slope)."""
    sigma_log: float
    """Residual standard deviation of log duration."""
    cov: tuple[tuple[float, ...], ...] | None
    """Covariance of ``(a, b, log sigma)``; None without a slope."""
    first_at: pd.Timestamp | None
    """Earliest start among the backups used."""
    last_at: pd.Timestamp | None
    """Latest start among the backups used."""
    now: pd.Timestamp
    """The time the forecast is made from."""
    horizon_days: float
    """How far past ``now`` a crossing is reported (days)."""
    interval_s: float | None
    """The job interval the p99 is compared with (seconds)."""
    p99_now_s: float
    """The fitted p99 duration of a backup started at ``now`` (seconds; NaN: no data)."""
    crossing_at: pd.Timestamp | None
    """When the fitted p99 reaches ``interval_s`` (None: no significant growth, no
    interval, or beyond the horizon); may be in the past."""
    crossing_lo: pd.Timestamp | None
    """Earliest end of the crossing's range (None when unbounded or no crossing)."""
    crossing_hi: pd.Timestamp | None
    """Latest end of the crossing's range (None when unbounded or no crossing)."""
    significant: bool
    """Whether growth is significant: ``slope_per_day - 2 slope_se > 0``."""
    note: str
    """The trend in plain words, for the report."""

    @property
    def has_slope(self) -> bool:
        """Whether a slope was fitted (enough completed backups over more than a day)."""
        return math.isfinite(self.slope_per_day)

    @property
    def growth_per_week(self) -> float:
        """Relative growth of durations per week (0.031: 3.1 %/week; NaN: no slope)."""
        return math.expm1(7 * self.slope_per_day) if self.has_slope else math.nan

    def p99_at(self, t: pd.Timestamp) -> float:
        """The fitted p99 duration (seconds) of a backup started at ``t`` (UTC); without
        a slope, the pooled p99 whatever ``t``."""
        return float(self.p99_over(pd.DatetimeIndex([t]))[0])

    def p99_over(self, times: pd.DatetimeIndex | pd.Series) -> np.ndarray:
        """The fitted p99 duration (seconds) at each of ``times`` (UTC)."""
        n = len(times)
        if self.ref is None:
            return np.full(n, math.nan)
        slope = self.slope_per_day if self.has_slope else 0.0
        days = days_from(pd.Series(pd.DatetimeIndex(times)), self.ref)
        return np.exp(self.level_log + slope * days + Z99 * self.sigma_log)


def _when(ref: pd.Timestamp, days: float) -> pd.Timestamp | None:
    # beyond a century the date means nothing (and overflows Timestamp near 2262)
    return ref + pd.Timedelta(days=days) if abs(days) < 36500 else None


def _crossing_days(p: np.ndarray, cov: np.ndarray, log_interval: float
                   ) -> tuple[float, float, float]:
    """Days from the reference to the crossing, and the two ends of its range (NaN when
    unbounded; see the module docstring)."""
    a, b, ls = p
    zs = Z99 * math.exp(ls)
    m = a + zs - log_interval
    x_star = -m / b if b != 0 else math.nan
    # V(x) = g' C g with g = (1, x, z sigma): v0 + 2 v1 x + v2 x^2
    v2 = cov[1, 1]
    v1 = cov[0, 1] + zs * cov[1, 2]
    v0 = cov[0, 0] + 2 * zs * cov[0, 2] + zs * zs * cov[2, 2]
    k2 = _K * _K
    qa, qb, qc = b * b - k2 * v2, 2 * (m * b - k2 * v1), m * m - k2 * v0
    disc = qb * qb - 4 * qa * qc
    if qa <= 0 or disc < 0:
        return x_star, math.nan, math.nan
    root = math.sqrt(disc)
    lo, hi = sorted(((-qb - root) / (2 * qa), (-qb + root) / (2 * qa)))
    return x_star, lo, hi


def forecast_p99(started_at: pd.Series, duration_s: pd.Series, censored: pd.Series, *,
                 interval_s: float | None, now: pd.Timestamp,
                 horizon_days: float = 180) -> Trend:
    """Fit the trend of one volume's backup durations and forecast when their p99 reaches
    the job interval: :func:`forecast` of :func:`~advisor.model.trend_fit.fit_trend`.

    ``started_at``: start of each backup (UTC). ``duration_s``: seconds for completed
    backups; for censored ones the time they lasted at least, or NaN when unknown.
    ``censored``: true for backups without an end (in progress, failed). The three are
    aligned by position. ``interval_s``: the job's interval in seconds (None: no
    crossing). ``now``: the time the forecast starts (UTC). ``horizon_days``: how far
    ahead (days) a crossing is reported. Rows without a start, or completed rows without
    a positive duration, are ignored. See the module docstring for the method.
    """
    return forecast(fit_trend(started_at, duration_s, censored), interval_s=interval_s,
                    now=now, horizon_days=horizon_days)


def forecast(fit: TrendFit, *, interval_s: float | None, now: pd.Timestamp,
             horizon_days: float = 180) -> Trend:
    """A fitted trend read at ``now`` (UTC) against the interval ``interval_s`` (seconds;
    None: no crossing): its p99 then and when it reaches the interval, within
    ``horizon_days`` of ``now``."""
    now = pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    interval = float(interval_s) if interval_s is not None and interval_s > 0 else None
    base = dict(n=fit.n, n_censored=fit.n_censored, now=now,
                horizon_days=float(horizon_days), interval_s=interval,
                n_censored_used=fit.n_censored_used, method=fit.method, ref=fit.ref,
                first_at=fit.first_at, last_at=fit.last_at)
    if fit.method == "none":
        return Trend(**base, level_log=math.nan, slope_per_day=math.nan, slope_se=math.nan,
                     sigma_log=math.nan, cov=None, p99_now_s=math.nan, crossing_at=None,
                     crossing_lo=None, crossing_hi=None, significant=False,
                     note="; ".join([f"no trend: {fit.why}", *fit.notes]))
    if fit.method == "pooled":
        return _pooled(base, fit)
    p, cov = np.array(fit.params), np.array(fit.cov)
    a, b, ls = fit.params
    se = math.sqrt(cov[1, 1])
    sigma = math.exp(ls)
    significant = b - _K * se > 0
    days_now = float(days_from(pd.Series([now]), fit.ref)[0])
    p99_now = math.exp(a + b * days_now + Z99 * sigma)
    head = _growth_note(b, se, significant)
    crossing = lo = hi = None
    if interval is not None:
        crossing, lo, hi, said = _crossing(p, cov, fit.ref, significant, p99_now,
                                           interval=interval, now=now,
                                           horizon_days=horizon_days)
        head += said
    return Trend(**base, level_log=a, slope_per_day=b, slope_se=se, sigma_log=sigma,
                 cov=fit.cov, p99_now_s=p99_now, crossing_at=crossing, crossing_lo=lo,
                 crossing_hi=hi, significant=significant,
                 note="; ".join([head, *fit.notes]))


def _pooled(base: dict, fit: TrendFit) -> Trend:
    """Level and spread only: too few completed backups, or too close together, for a
    slope."""
    interval, sigma = base["interval_s"], fit.sigma_log
    p99 = math.exp(fit.level_log + Z99 * sigma)
    over = ""
    if interval is not None and p99 >= interval:
        over = f"; pooled p99 {units.duration(p99)} is already above the " \
               f"{units.duration(interval)} interval"
    return Trend(**base, level_log=fit.level_log, slope_per_day=math.nan,
                 slope_se=math.nan, sigma_log=sigma, cov=None, p99_now_s=p99,
                 crossing_at=None, crossing_lo=None, crossing_hi=None, significant=False,
                 note="; ".join([f"no trend: {fit.why}{over}", *fit.notes]))


def _growth_note(b: float, se: float, significant: bool) -> str:
    """The slope ``b`` (per day, standard error ``se``) in words, per week."""
    g, g_se = math.expm1(7 * b), 7 * se * math.exp(7 * b)
    if significant:
        return f"p99 grows {pct_pm(g, g_se)} a week"
    if b + _K * se < 0:
        return f"p99 shrinks {pct_pm(-g, g_se)} a week"
    return f"no significant trend ({pct_pm(g, g_se)} a week)"


def _crossing(p: np.ndarray, cov: np.ndarray, ref: pd.Timestamp, significant: bool,
              p99_now: float, *, interval: float, now: pd.Timestamp, horizon_days: float
              ) -> tuple[pd.Timestamp | None, pd.Timestamp | None, pd.Timestamp | None, str]:
    """When the fitted p99 reaches ``interval`` (seconds) and the ends of its range
    (None when unbounded, or no crossing within ``horizon_days`` of ``now``), and what
    the note says of it."""
    label = f"the {units.duration(interval)} interval"
    x_star, x_lo, x_hi = _crossing_days(p, cov, math.log(interval))
    at = _when(ref, x_star) if significant and math.isfinite(x_star) else None
    if at is not None and at <= now + pd.Timedelta(days=horizon_days):
        lo = _when(ref, x_lo) if math.isfinite(x_lo) else None
        hi = _when(ref, x_hi) if math.isfinite(x_hi) else None
        rng = (f" ({lo:%Y-%m-%d} .. {hi:%Y-%m-%d})"
               if lo is not None and hi is not None else "")
        verb = "reached" if at <= now else "reaches"
        past = "; already above it now" if at <= now else ""
        return at, lo, hi, f"; {verb} {label} around {at:%Y-%m-%d}{rng}{past}"
    if at is not None:
        return None, None, None, (f"; does not reach {label} within {horizon_days:g} days "
                                  f"(around {at:%Y-%m-%d} at this rate)")
    if p99_now >= interval:
        return None, None, None, f"; p99 ({units.duration(p99_now)}) is already above {label}"
    return None, None, None, ""


def volume_trends(fits: Mapping[str, TrendFit], intervals: Mapping[str, float],
                  now: pd.Timestamp) -> dict[str, Trend]:
    """Each volume's trend (``fits``: its fit, kept with the duration fits) read at
    ``now`` against its interval in ``intervals`` (NaN: none); for every volume of
    ``intervals``, in order (one with no fit: the trend of no data)."""
    nothing = fit_trend(pd.Series([], dtype="datetime64[ns, UTC]"), pd.Series([], dtype=float),
                        pd.Series([], dtype=bool))
    return {v: forecast(fits.get(v, nothing), interval_s=iv if np.isfinite(iv) else None,
                        now=now) for v, iv in intervals.items()}
