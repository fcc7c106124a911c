"""The numerics of the duration fits: censored normal maximum likelihood, Kaplan-Meier
quantiles and a rank-safe OLS, vectorised over groups (a group: one cluster, volume and
mode). They work on log durations and know nothing of Longhorn; the rules that feed them
are in :mod:`advisor.model.durations`' docstring.

The censored likelihood is maximised in Olsen's parametrisation ``(a, b) = (mu/sigma,
1/sigma)``, where it is concave, by Newton's method with step halving; completed rows
enter by their sufficient statistics, so an iteration costs only the censored rows.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from advisor.model.columns import sort_by

__all__ = ["QUANTILE_Z", "SIGMA_FLOOR", "censored_mle", "kaplan_meier", "ols"]

SIGMA_FLOOR = 0.01
"""Smallest sigma of log duration (identical durations would give 0)."""
QUANTILE_Z = {"p50": 0.0, "p95": 1.6448536269514722, "p99": 2.3263478740408408}
"""The standard normal quantile of each duration quantile the fits report."""
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def censored_mle(n: np.ndarray, s1: np.ndarray, s2: np.ndarray, gc: np.ndarray,
                 yc: np.ndarray, iterations: int = 60) -> tuple[np.ndarray, ...]:
    """Censored normal MLE per group from the uncensored sums ``n``, ``s1`` (log T),
    ``s2`` (squares) and the censored rows' groups ``gc`` and log times ``yc``. Returns
    ``a, b`` and the inverse observed information (``caa, cab, cbb``)."""
    G = len(n)
    mu = s1 / n
    b = 1 / np.sqrt(np.maximum(s2 / n - mu**2, SIGMA_FLOOR**2))
    a = mu * b

    def loglik(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ll = n * np.log(b) - (b**2 * s2 - 2 * a * b * s1 + n * a**2) / 2
        return ll + np.bincount(gc, special.log_ndtr(a[gc] - b[gc] * yc), G)

    def hessian(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
        w = a[gc] - b[gc] * yc
        h = np.exp((-0.5 * w * w - _HALF_LOG_2PI) - special.log_ndtr(w))  # inverse Mills ratio
        k = h * (w + h)
        return (b * s1 - n * a + np.bincount(gc, h, G),
                n / b - (b * s2 - a * s1) - np.bincount(gc, yc * h, G),
                -n - np.bincount(gc, k, G), s1 + np.bincount(gc, yc * k, G),
                -n / b**2 - s2 - np.bincount(gc, yc**2 * k, G))

    for _ in range(iterations if len(gc) else 0):
        ga, gb, haa, hab, hbb = hessian(a, b)
        det = haa * hbb - hab**2
        da, db = -(hbb * ga - hab * gb) / det, -(haa * gb - hab * ga) / det
        if np.max(np.abs(np.r_[da, db, 0.0])) < 1e-10:
            break
        ll0, step = loglik(a, b), np.ones(G)
        for _ in range(40):  # halve the step wherever the likelihood does not climb
            a1, b1 = a + step * da, np.maximum(b + step * db, 1e-12)
            worse = ~(loglik(a1, b1) >= ll0 - 1e-9)
            if not worse.any():
                break
            step[worse] /= 2
        a, b = a1, b1
    _, _, haa, hab, hbb = hessian(a, b)
    det = haa * hbb - hab**2
    return a, b, -hbb / det, hab / det, -haa / det


def kaplan_meier(g: np.ndarray, y: np.ndarray, event: np.ndarray, G: int
                 ) -> list[np.ndarray]:
    """Kaplan-Meier median and p95 per group (the smallest time with ``F >= p``; NaN
    where the curve stays above ``1 - p``), vectorised; events before censored at ties."""
    order = sort_by(g, y, ~event)
    g, y, e = g[order], y[order], event[order]
    counts = np.bincount(g, minlength=G)
    first = np.cumsum(counts) - counts
    at_risk = counts[g] - (np.arange(len(g)) - first[g])
    with np.errstate(divide="ignore"):
        logf = np.maximum(np.where(e, np.log1p(-1.0 / at_risk), 0.0), -50.0)
    cs = np.cumsum(logf)
    log_s = cs - np.r_[0.0, cs][first][g]
    out = []
    for p in (0.5, 0.95):
        hit = np.flatnonzero(e & (log_s <= math.log1p(-p) + 1e-12))
        q = np.full(G, np.nan)
        groups, at = np.unique(g[hit], return_index=True)
        q[groups] = np.exp(y[hit[at]])
        out.append(q)
    return out


def ols(F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, ...]:
    """OLS of ``y`` on ``[1, F]``, standardised, with a rank cut-off (uploads and sizes
    can be collinear). Returns coefficients on the original scale, the residual variance,
    ``(X'X)^+`` of the standardised design, and the features' means and scales."""
    mean, sd = F.mean(axis=0), F.std(axis=0)
    sd[sd == 0] = 1.0
    X = np.column_stack([np.ones(len(y)), (F - mean) / sd])
    beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=1e-6)
    resid = y - X @ beta
    s2 = float(resid @ resid / max(len(y) - rank, 1))
    coef = np.r_[beta[0] - (beta[1:] * mean / sd).sum(), beta[1:] / sd]
    return coef, s2, np.linalg.pinv(X.T @ X, rcond=1e-12), mean, sd
