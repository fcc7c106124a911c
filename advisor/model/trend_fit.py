"""Fitting one volume's backup-duration trend: the line ``log T = a + b t + sigma eps``
of :mod:`advisor.model.trend` (its docstring states the model), from the volume's
backups alone.

A fit (:class:`TrendFit`) depends on the history only; what the report asks of it (the
p99 at the week's end, when it reaches the job's interval) is
:func:`advisor.model.trend.forecast`. So a trend is fitted once, when the history's
duration fits are (:class:`advisor.model.durations.DurationFits`), kept with them as
rows of a frame (:func:`trend_frame`, :meth:`TrendFit.from_row`), and evaluated by
every report at that report's week and intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from advisor.model.executor import map_volumes

__all__ = ["CENSORED_WARN_SHARE", "MIN_COMPLETED", "MIN_SPAN_DAYS", "TrendFit", "days_from",
           "fit_trend", "fit_trends", "trend_frame"]

MIN_COMPLETED = 8
"""Fewest completed backups for a trend; below, the pooled p99 only."""
MIN_SPAN_DAYS = 1.0
"""Shortest span of start times for a trend (a day of hourly backups says nothing of
weekly growth)."""
CENSORED_WARN_SHARE = 0.10
"""Share of rows censored without a known duration above which the note warns."""
_DAY_S = 86400.0
_COV = [f"cov_{i}{j}" for i in range(3) for j in range(3)]


@dataclass(frozen=True)
class TrendFit:
    """What one volume's backups say of its duration trend, whatever the interval it is
    compared with or the day it is read: :func:`advisor.model.trend.forecast` turns it
    into a :class:`~advisor.model.trend.Trend`."""

    n: int
    """Completed backups used."""
    n_censored: int
    """Censored rows given (in progress, failed)."""
    n_censored_used: int
    """Censored rows with a known "lasted at least" time that entered a censored fit."""
    method: str
    """``"ols"``, ``"tobit"``, ``"pooled"`` (level and spread only) or ``"none"``."""
    ref: pd.Timestamp | None = None
    """Time origin of the line: the mean start of the backups used."""
    params: tuple[float, float, float] | None = None
    """``(a, b, log sigma)`` of a line (``ols``, ``tobit``); None otherwise."""
    cov: tuple[tuple[float, ...], ...] | None = None
    """Covariance of ``params``."""
    level_log: float | None = None
    """Pooled only: mean log duration."""
    sigma_log: float | None = None
    """Pooled only: standard deviation of log duration."""
    first_at: pd.Timestamp | None = None
    """Earliest start among the backups used."""
    last_at: pd.Timestamp | None = None
    """Latest start among the backups used."""
    why: str = ""
    """Why there is no line (``none``, ``pooled``), in words."""
    notes: tuple[str, ...] = ()
    """What the fit says of its data (censored rows left out or counted)."""

    @classmethod
    def from_row(cls, r: pd.Series) -> TrendFit:
        """From a row of :func:`trend_frame`."""
        line, pooled = r["method"] in ("ols", "tobit"), r["method"] == "pooled"
        return cls(
            n=int(r["n"]), n_censored=int(r["n_censored"]),
            n_censored_used=int(r["n_censored_used"]), method=str(r["method"]),
            ref=_stamp(r["ref"]), first_at=_stamp(r["first_at"]),
            last_at=_stamp(r["last_at"]),
            params=(float(r["a"]), float(r["b"]), float(r["log_sigma"])) if line else None,
            cov=tuple(tuple(float(r[f"cov_{i}{j}"]) for j in range(3)) for i in range(3))
            if line else None,
            level_log=float(r["level_log"]) if pooled else None,
            sigma_log=float(r["sigma_log"]) if pooled else None,
            why=str(r["why"]), notes=tuple(n for n in str(r["notes"]).split("\n") if n))

    def as_row(self) -> dict:
        """The fit as one row of :func:`trend_frame` (every float kept exactly)."""
        p = self.params or (math.nan,) * 3
        cov = self.cov or ((math.nan,) * 3,) * 3
        return {"n": self.n, "n_censored": self.n_censored,
                "n_censored_used": self.n_censored_used, "method": self.method,
                "ref": self.ref, "a": p[0], "b": p[1], "log_sigma": p[2],
                **{f"cov_{i}{j}": cov[i][j] for i in range(3) for j in range(3)},
                "level_log": math.nan if self.level_log is None else self.level_log,
                "sigma_log": math.nan if self.sigma_log is None else self.sigma_log,
                "first_at": self.first_at, "last_at": self.last_at, "why": self.why,
                "notes": "\n".join(self.notes)}


def _stamp(t: object) -> pd.Timestamp | None:
    return None if pd.isna(t) else pd.Timestamp(t)


def days_from(times: pd.Series, ref: pd.Timestamp) -> np.ndarray:
    """Days from ``ref`` to each of ``times`` (UTC)."""
    return ((times - ref).dt.total_seconds() / _DAY_S).to_numpy(dtype=float)


def fit_trend(started_at: pd.Series, duration_s: pd.Series, censored: pd.Series
              ) -> TrendFit:
    """Fit one volume's trend. ``started_at``: start of each backup (UTC).
    ``duration_s``: seconds for completed backups; for censored ones the time they lasted
    at least, or NaN when unknown. ``censored``: true for backups without an end (in
    progress, failed). The three are aligned by position. Rows without a start, or
    completed rows without a positive duration, are ignored."""
    start, dur, cens = _aligned(started_at, duration_s, censored)
    has_start = start.notna().to_numpy()
    ok_dur = np.isfinite(dur) & (dur > 0)
    done = has_start & ~cens & ok_dur
    cens_known = has_start & cens & ok_dur
    n, n_cens, n_cens_used = int(done.sum()), int(cens.sum()), int(cens_known.sum())
    notes: list[str] = []
    unknown = n_cens - n_cens_used
    if unknown and unknown > CENSORED_WARN_SHARE * len(cens):
        notes.append(f"{unknown} of {len(cens)} backups are censored (running or failed) "
                     "with no known duration and were left out: the p99 may be too low")
    if n < 2:
        return TrendFit(n=n, n_censored=n_cens, n_censored_used=0, method="none",
                        why="no completed backups" if n == 0 else "only 1 completed backup",
                        notes=tuple(notes))
    t_done = start[done]
    ref = t_done.min() + (t_done - t_done.min()).mean()
    x = days_from(t_done, ref)
    y = np.log(dur[done])
    base = dict(n=n, n_censored=n_cens, ref=ref, first_at=t_done.min(),
                last_at=t_done.max())
    if n < MIN_COMPLETED or float(x.max() - x.min()) < MIN_SPAN_DAYS:
        why = (f"only {n} completed backups (a trend needs {MIN_COMPLETED})"
               if n < MIN_COMPLETED else "all completed backups started within one day")
        return TrendFit(**base, n_censored_used=0, method="pooled",
                        level_log=float(y.mean()),
                        sigma_log=max(float(np.std(y, ddof=1)), 1e-6), why=why,
                        notes=tuple(notes))
    p, cov = _ols(x, y)
    method = "ols"
    if n_cens_used:
        p, cov, method = _with_censored(x, y, days_from(start[cens_known], ref),
                                        np.log(dur[cens_known]), (p, cov), notes)
        n_cens_used = n_cens_used if method == "tobit" else 0
    return TrendFit(**base, n_censored_used=n_cens_used, method=method,
                    params=tuple(float(v) for v in p),
                    cov=tuple(tuple(float(c) for c in row) for row in cov),
                    notes=tuple(notes))


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


_COLUMNS = ["cluster", "volume", "mode", "n", "n_censored", "n_censored_used", "method",
            "ref", "a", "b", "log_sigma", *_COV, "level_log", "sigma_log", "first_at",
            "last_at", "why", "notes"]


def trend_frame(rows: list[dict]) -> pd.DataFrame:
    """Trend fits as a frame, one row per (cluster, volume, mode) (``rows``: their
    :meth:`TrendFit.as_row` with those three keys), times UTC to the nanosecond."""
    df = pd.DataFrame(rows, columns=_COLUMNS)
    for c in ("ref", "first_at", "last_at"):
        df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[ns, UTC]")
    return df.astype({"n": "int64", "n_censored": "int64", "n_censored_used": "int64",
                      "cluster": str, "volume": str, "mode": str, "method": str,
                      "why": str, "notes": str})


def fit_trends(observations: pd.DataFrame, shown: pd.DataFrame) -> pd.DataFrame:
    """Each volume's trend (:func:`fit_trend`) in the mode its fits are shown in:
    ``observations`` are the fits' (``cluster``, ``volume``, ``mode``, ``started_at``,
    ``duration_s``, ``censored``), ``shown`` one (``cluster``, ``volume``, ``mode``) per
    volume; a volume of ``shown`` with no observation in its mode gets the fit of no
    data. Each volume's trend is its own: they are fitted on both cores."""
    keys = shown[["cluster", "volume", "mode"]].astype(str).reset_index(drop=True)
    obs = observations[["cluster", "volume", "mode", "started_at", "duration_s",
                        "censored"]]
    obs = obs.astype({"cluster": str, "volume": str, "mode": str}).merge(
        keys, on=["cluster", "volume", "mode"])
    groups = dict(tuple(obs.groupby(["cluster", "volume"], sort=False)))
    empty = obs.iloc[:0]
    todo = [groups.get((c, v), empty) for c, v in zip(keys["cluster"], keys["volume"],
                                                      strict=True)]

    def one(g: pd.DataFrame) -> TrendFit:
        return fit_trend(g["started_at"], g["duration_s"], g["censored"])

    fits = map_volumes(one, todo)
    return trend_frame([{**k, **f.as_row()}
                        for k, f in zip(keys.to_dict("records"), fits, strict=True)])
