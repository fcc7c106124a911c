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
from scipy import special

from advisor import units
from advisor.model.executor import map_volumes
from advisor.units import percent_pm as pct_pm

Z99 = 2.3263478740408408
"""The standard normal 0.99 quantile."""
MIN_COMPLETED = 8
"""Fewest completed backups for a trend; below, the pooled p99 only."""
MIN_SPAN_DAYS = 1.0
"""Shortest span of start times for a trend (a day of hourly backups says nothing of
weekly growth)."""
CENSORED_WARN_SHARE = 0.10
"""Share of rows censored without a known duration above which the note warns."""
_K = 2.0  # standard errors: significance and the crossing range (about 95 %)
_DAY_S = 86400.0


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
        days = _days(pd.Series(pd.DatetimeIndex(times)), self.ref)
        return np.exp(self.level_log + slope * days + Z99 * self.sigma_log)


def _days(times: pd.Series, ref: pd.Timestamp) -> np.ndarray:
    return ((times - ref).dt.total_seconds() / _DAY_S).to_numpy(dtype=float)


def _when(ref: pd.Timestamp, days: float) -> pd.Timestamp | None:
    # beyond a century the date means nothing (and overflows Timestamp near 2262)
    return ref + pd.Timedelta(days=days) if abs(days) < 36500 else None


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b, log sigma)`` and their covariance, ``x`` centred."""
    n = len(x)
    sxx = float(np.sum(x * x))
    b = float(np.sum(x * y)) / sxx
    a = float(np.mean(y))
    rss = float(np.sum((y - a - b * x) ** 2))
    # a floor keeps identical durations (sigma 0) from dividing by zero below
    s2 = max(rss / (n - 2), 1e-12)
    cov = np.diag([s2 / n, s2 / sxx, 1.0 / (2 * (n - 2))])
    return np.array([a, b, 0.5 * math.log(s2)]), cov


def _tobit(x: np.ndarray, y: np.ndarray, xc: np.ndarray, yc: np.ndarray,
           start: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Right-censored normal regression of ``y`` on ``x`` (``yc``: log censoring times at
    ``xc``): ``(a, b, log sigma)`` and their covariance, None when it does not converge
    to a proper maximum."""
    from scipy import optimize  # 0.2 s to import; only needed with censored rows

    n = len(y)

    def nll_grad(p: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, ls = p
        s = math.exp(ls)
        r = (y - a - b * x) / s
        rc = (yc - a - b * xc) / s
        log_surv = special.log_ndtr(-rc)
        # inverse Mills ratio phi / (1 - Phi), computed in logs for far tails
        lam = np.exp(-0.5 * rc * rc - 0.5 * math.log(2 * math.pi) - log_surv)
        nll = n * ls + 0.5 * float(r @ r) - float(log_surv.sum())
        grad = np.array([-(r.sum() + lam.sum()) / s,
                         -(r @ x + lam @ xc) / s,
                         n - float(r @ r) - float(lam @ rc)])
        return nll, grad

    res = optimize.minimize(nll_grad, start, jac=True, method="BFGS",
                            options={"gtol": 1e-8, "maxiter": 500})
    p = res.x
    if not np.all(np.isfinite(p)) or np.linalg.norm(nll_grad(p)[1]) > 1e-4:
        return None
    h = 1e-5 * (1 + np.abs(p))
    hess = np.empty((3, 3))
    for i in range(3):
        step = np.zeros(3)
        step[i] = h[i]
        hess[i] = (nll_grad(p + step)[1] - nll_grad(p - step)[1]) / (2 * h[i])
    hess = 0.5 * (hess + hess.T)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.linalg.eigvalsh(cov) > 0):
        return None
    return p, cov


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
    the job interval.

    ``started_at``: start of each backup (UTC). ``duration_s``: seconds for completed
    backups; for censored ones the time they lasted at least, or NaN when unknown.
    ``censored``: true for backups without an end (in progress, failed). The three are
    aligned by position. ``interval_s``: the job's interval in seconds (None: no
    crossing). ``now``: the time the forecast starts (UTC). ``horizon_days``: how far
    ahead (days) a crossing is reported. Rows without a start, or completed rows without
    a positive duration, are ignored. See the module docstring for the method.
    """
    now = pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    start, dur, cens = _aligned(started_at, duration_s, censored)
    has_start = start.notna().to_numpy()
    ok_dur = np.isfinite(dur) & (dur > 0)
    done = has_start & ~cens & ok_dur
    cens_known = has_start & cens & ok_dur
    n, n_cens, n_cens_used = int(done.sum()), int(cens.sum()), int(cens_known.sum())
    interval = float(interval_s) if interval_s is not None and interval_s > 0 else None
    base = dict(n=n, n_censored=n_cens, now=now, horizon_days=float(horizon_days),
                interval_s=interval)

    notes: list[str] = []
    unknown = n_cens - n_cens_used
    if unknown and unknown > CENSORED_WARN_SHARE * len(cens):
        notes.append(f"{unknown} of {len(cens)} backups are censored (running or failed) "
                     "with no known duration and were left out: the p99 may be too low")

    if n < 2:
        why = "no completed backups" if n == 0 else "only 1 completed backup"
        return Trend(**base, n_censored_used=0, method="none", ref=None,
                     level_log=math.nan, slope_per_day=math.nan, slope_se=math.nan,
                     sigma_log=math.nan, cov=None, first_at=None, last_at=None,
                     p99_now_s=math.nan, crossing_at=None, crossing_lo=None,
                     crossing_hi=None, significant=False,
                     note="; ".join([f"no trend: {why}", *notes]))

    t_done = start[done]
    ref = t_done.min() + (t_done - t_done.min()).mean()
    x = _days(t_done, ref)
    y = np.log(dur[done])
    base.update(ref=ref, first_at=t_done.min(), last_at=t_done.max())
    if n < MIN_COMPLETED or float(x.max() - x.min()) < MIN_SPAN_DAYS:
        return _pooled(base, y, notes)

    p, cov = _ols(x, y)
    method = "ols"
    if n_cens_used:
        p, cov, method = _with_censored(x, y, _days(start[cens_known], ref),
                                        np.log(dur[cens_known]), (p, cov), notes)
        n_cens_used = n_cens_used if method == "tobit" else 0
    a, b, ls = (float(v) for v in p)
    se = math.sqrt(cov[1, 1])
    sigma = math.exp(ls)
    significant = b - _K * se > 0
    days_now = float(_days(pd.Series([now]), ref)[0])
    p99_now = math.exp(a + b * days_now + Z99 * sigma)
    head = _growth_note(b, se, significant)
    crossing = lo = hi = None
    if interval is not None:
        crossing, lo, hi, said = _crossing(p, cov, ref, significant, p99_now,
                                           interval=interval, now=now,
                                           horizon_days=horizon_days)
        head += said
    return Trend(**base, n_censored_used=n_cens_used, method=method, level_log=a,
                 slope_per_day=b, slope_se=se, sigma_log=sigma,
                 cov=tuple(tuple(float(c) for c in row) for row in cov),
                 p99_now_s=p99_now, crossing_at=crossing, crossing_lo=lo, crossing_hi=hi,
                 significant=significant, note="; ".join([head, *notes]))


def _aligned(started_at: pd.Series, duration_s: pd.Series, censored: pd.Series
             ) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """The starts (UTC), durations (seconds, NaN when unknown) and censored flags, by
    position; ValueError when their lengths differ."""
    # (converted as a column: read as an array of objects it took a third of the time)
    start = pd.to_datetime(pd.Series(started_at), utc=True).reset_index(drop=True)
    dur = pd.to_numeric(pd.Series(duration_s).reset_index(drop=True),
                        errors="coerce").to_numpy(dtype=float)
    cens = pd.Series(censored).reset_index(drop=True).fillna(False).to_numpy(dtype=bool)
    if not len(start) == len(dur) == len(cens):
        raise ValueError("started_at, duration_s and censored must have the same length")
    return start, dur, cens


def _pooled(base: dict, y: np.ndarray, notes: list[str]) -> Trend:
    """Level and spread only, of ``y`` (log durations): too few completed backups, or
    too close together, for a slope."""
    n, interval = base["n"], base["interval_s"]
    why = (f"only {n} completed backups (a trend needs {MIN_COMPLETED})"
           if n < MIN_COMPLETED else "all completed backups started within one day")
    sigma = max(float(np.std(y, ddof=1)), 1e-6)
    p99 = math.exp(float(y.mean()) + Z99 * sigma)
    over = ""
    if interval is not None and p99 >= interval:
        over = f"; pooled p99 {units.duration(p99)} is already above the " \
               f"{units.duration(interval)} interval"
    return Trend(**base, n_censored_used=0, method="pooled", level_log=float(y.mean()),
                 slope_per_day=math.nan, slope_se=math.nan, sigma_log=sigma, cov=None,
                 p99_now_s=p99, crossing_at=None, crossing_lo=None, crossing_hi=None,
                 significant=False, note="; ".join([f"no trend: {why}{over}", *notes]))


def _with_censored(x: np.ndarray, y: np.ndarray, xc: np.ndarray, yc: np.ndarray,
                   ols: tuple[np.ndarray, np.ndarray], notes: list[str]
                   ) -> tuple[np.ndarray, np.ndarray, str]:
    """The Tobit fit with the censored rows (``yc`` at ``xc``) from the least-squares one,
    and its method; the least-squares fit when it does not converge. Says which in
    ``notes``."""
    fit = _tobit(x, y, xc, yc, ols[0])
    if fit is None:
        notes.append(f"the censored fit did not converge: {len(yc)} censored "
                     "backups left out")
        return *ols, "ols"
    notes.append(f"{len(yc)} censored backups (running or failed) counted as "
                 "lasting at least their known time")
    return *fit, "tobit"


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


def volume_trends(observed: pd.DataFrame, intervals: Mapping[str, float], now: pd.Timestamp
                  ) -> dict[str, Trend]:
    """Each volume's p99 duration trend at ``now`` (:func:`forecast_p99`), from its rows of
    ``observed`` (``volume``, ``started_at``, ``duration_s``, ``censored``), against its
    interval in ``intervals`` (NaN: none); for every volume of ``intervals``, in order.
    Each volume's trend is its own: they are fitted on both cores."""
    by_volume = dict(tuple(observed.groupby("volume", sort=False)))
    todo = [(v, by_volume.get(v, observed.iloc[:0]), iv if np.isfinite(iv) else None)
            for v, iv in intervals.items()]

    def one(item: tuple[str, pd.DataFrame, float | None]) -> Trend:
        _, g, interval_s = item
        return forecast_p99(g["started_at"], g["duration_s"], g["censored"],
                            interval_s=interval_s, now=now)

    return dict(zip((v for v, _, _ in todo), map_volumes(one, todo), strict=True))
