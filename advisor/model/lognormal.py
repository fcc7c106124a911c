"""The lognormal fit of each (cluster, volume, mode)'s backup durations: its own
history's censored MLE when it has enough completed backups, else the fleet prior (an
OLS across volumes of the own-history ``mu`` on uploads and size, shrunk toward the
volume's own completed backups), with 95 % intervals of p50/p95/p99 and the
Kaplan-Meier check. :mod:`advisor.model.durations`' docstring states the rules; the
numerics are :mod:`advisor.model.censored`'s."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.model.censored import QUANTILE_Z, SIGMA_FLOOR, censored_mle, kaplan_meier, ols

__all__ = ["SIGMA_DEFAULT", "SPREAD_DEFAULT", "fit_table"]

SIGMA_DEFAULT = 0.5
"""Assumption: sigma of log duration when no volume of the fleet has two backups."""
SPREAD_DEFAULT = 1.0
"""Assumption: sd of log median duration between volumes when fewer than three volumes
have history (one or two volumes: a factor of e either way)."""
_Z_CI = 1.959963984540054
_FEATURES = ("log_upload_bytes", "log_actual_size_bytes")
_MODELS = ((0, 1), (1,), (0,), ())  # feature sets tried in turn for a sparse volume


@dataclass(frozen=True)
class _Groups:
    """The fit's groups (cluster, volume, mode) and their sufficient statistics."""

    modes: np.ndarray  # the modes seen in the fleet (0: full, 1: incremental)
    g: np.ndarray  # each row's group
    gcv: np.ndarray  # each group's key
    inc: np.ndarray  # each group: incremental
    n_e: np.ndarray  # completed rows (float)
    n_c: np.ndarray  # censored rows
    s1: np.ndarray  # sum of completed log durations
    s2: np.ndarray  # sum of their squares
    own: np.ndarray  # enough completed rows for a fit of its own


def _groups(cv: np.ndarray, full: np.ndarray, n_keys: int, y: np.ndarray,
            censored: np.ndarray, min_obs: int) -> _Groups:
    """Every key gets a group per mode it has rows in, and per mode seen in the fleet
    when it has none."""
    modes = np.unique((~full).astype(np.int64))  # 0: full, 1: incremental
    present = np.zeros(2 * n_keys, bool)
    present[cv * 2 + ~full] = True
    present.reshape(-1, 2)[:, modes] |= np.bincount(cv, minlength=n_keys)[:, None] == 0
    gid = np.cumsum(present) - 1
    uniq = np.flatnonzero(present)
    G, g = len(uniq), gid[cv * 2 + ~full]
    ev = ~censored
    ge, ye = g[ev], y[ev]
    n_e = np.bincount(ge, minlength=G).astype(float)
    return _Groups(modes, g, uniq // 2, uniq % 2 == 1, n_e,
                   np.bincount(g[censored], minlength=G), np.bincount(ge, ye, G),
                   np.bincount(ge, ye**2, G), n_e >= max(min_obs, 2))


def _own_history(gr: _Groups, y: np.ndarray, censored: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``mu``, ``sigma`` and the standard error of each log quantile (delta method) of
    the groups with a fit of their own (NaN elsewhere)."""
    G, own = len(gr.gcv), gr.own
    mu, sigma = np.full(G, np.nan), np.full(G, np.nan)
    se = {q: np.full(G, np.nan) for q in QUANTILE_Z}
    cmask = censored & own[gr.g]
    a, b, caa, cab, cbb = censored_mle(gr.n_e[own], gr.s1[own], gr.s2[own],
                                       (np.cumsum(own) - 1)[gr.g[cmask]], y[cmask])
    mu[own], sigma[own] = a / b, np.maximum(1 / b, SIGMA_FLOOR)
    for q, z in QUANTILE_Z.items():  # delta method: log q = (a + z) / b
        ja, jb = 1 / b, -(a + z) / b**2
        se[q][own] = np.sqrt(np.maximum(ja**2 * caa + 2 * ja * jb * cab + jb**2 * cbb, 0))
    return mu, sigma, se


def _fleet_prior(mode: str, in_mode: np.ndarray, own: np.ndarray, y_vol: np.ndarray,
                 feats: np.ndarray, sig_own: np.ndarray, sigma_within: float
                 ) -> tuple[np.ndarray, np.ndarray, float, float, list[dict]]:
    """The prediction of mu and its variance for every group of one mode (NaN where no
    model applies), the pooled sigma and its between-volume variance, the regressions."""
    train = own & in_mode
    if train.sum() < 3:  # too few rich volumes: learn from every volume's mean log
        train = in_mode & np.isfinite(y_vol)
    sig = sig_own[own & in_mode]
    sigma = float(np.median(sig)) if len(sig) >= 3 else sigma_within
    var_sigma = float(np.var(sig, ddof=1)) if len(sig) >= 3 else (sigma / 2) ** 2
    pred, var = np.full(len(own), np.nan), np.full(len(own), np.nan)
    rows = []
    for fs in _MODELS:
        has = np.all(np.isfinite(feats[:, list(fs)]), axis=1)
        fit = train & has
        if fit.sum() < (len(fs) + 3 if fs else 1):
            continue
        coef, s2, P, mean, sd = ols(feats[fit][:, list(fs)], y_vol[fit])
        s2 = s2 if fit.sum() >= 3 else SPREAD_DEFAULT**2
        rows.append({"mode": mode, "features": ",".join(_FEATURES[f] for f in fs) or "-",
                     "n_volumes": int(fit.sum()), "intercept": coef[0],
                     **{_FEATURES[f]: coef[1 + i] for i, f in enumerate(fs)},
                     "residual_sd": math.sqrt(s2), "sigma_within": sigma,
                     "sigma_within_sd": math.sqrt(var_sigma)})
        todo = in_mode & has & np.isnan(pred)
        F0 = feats[todo][:, list(fs)]
        X0 = np.column_stack([np.ones(len(F0)), (F0 - mean) / sd])
        pred[todo] = coef[0] + F0 @ coef[1:]
        var[todo] = s2 * (1 + np.einsum("ij,jk,ik->i", X0, P, X0))
    return pred, var, sigma, var_sigma, rows


def _borrow(gr: _Groups, y_vol: np.ndarray, feats: np.ndarray, sigma_within: float,
            mu: np.ndarray, sigma: np.ndarray, se: dict[str, np.ndarray], min_obs: int
            ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The fleet prior of every group without a fit of its own, per mode, written into
    ``mu``, ``sigma`` and ``se``; returns each group's source and note, and the
    regressions."""
    own, n_e = gr.own, gr.n_e
    source = np.where(own, "own_history", "none").astype(object)
    note = np.full(len(gr.gcv), "", dtype=object)
    regressions: list[dict] = []
    for is_inc in gr.modes:
        name = "incremental" if is_inc else "full"
        in_mode = gr.inc == is_inc
        pred, var_pred, sig_p, var_sig, rows = _fleet_prior(
            name, in_mode, own, y_vol, feats, sigma, sigma_within)
        regressions += rows
        sparse = in_mode & ~own & np.isfinite(pred)
        tau2 = np.maximum(var_pred, 1e-12)
        prec = 1 / tau2 + n_e / sig_p**2
        mu[sparse] = ((pred / tau2 + gr.s1 / sig_p**2) / prec)[sparse]
        sigma[sparse] = sig_p
        for q, z in QUANTILE_Z.items():
            se[q][sparse] = np.sqrt(1 / prec[sparse] + z**2 * var_sig)
        source[sparse] = "fleet_prior"
        note[in_mode & ~own & ~np.isfinite(pred)] = f"no fleet regression for {name}"
    prior = source == "fleet_prior"
    note[prior & (n_e > 0)] = [f"{k:.0f} completed < {min_obs}: own mean shrunk toward the "
                               "fleet regression" for k in n_e[prior & (n_e > 0)]]
    note[prior & (n_e == 0) & (gr.n_c > 0)] = "only censored observations: fleet prior"
    note[prior & (n_e == 0) & (gr.n_c == 0)] = "no backups: fleet prior"
    return source, note, regressions


def fit_table(cv: np.ndarray, full: np.ndarray, keys: pd.DataFrame,
              dur: np.ndarray, censored: np.ndarray, upload: np.ndarray,
              log_act_cv: np.ndarray, min_obs: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (cluster, volume, mode): own-history or fleet-prior fit, KM check.
    ``cv`` indexes ``keys``; every key gets a row per mode seen in the fleet. Rows:
    ``full`` (a full backup), ``dur`` (seconds), ``censored``, ``upload`` (bytes); per
    key: ``log_act_cv``, the log of its actual size. Returns the table (the columns of
    :attr:`advisor.model.durations.DurationFits.table`) and the fleet regressions."""
    from scipy import stats

    y, ev = np.log(dur), ~censored
    gr = _groups(cv, full, len(keys), y, censored, min_obs)
    G, g, gcv, n_e, s1, s2, own = len(gr.gcv), gr.g, gr.gcv, gr.n_e, gr.s1, gr.s2, gr.own
    mu, sigma, se = _own_history(gr, y, censored)

    with np.errstate(divide="ignore", invalid="ignore"):
        ok = ev & (upload > 0)
        log_up = np.bincount(g[ok], np.log(upload[ok]), G) / np.bincount(g[ok], minlength=G)
        ybar = s1 / n_e
        two = n_e >= 2
        within = (s2 - s1**2 / n_e)[two].sum() / (n_e[two] - 1).sum()
    feats = np.column_stack([log_up, log_act_cv[gcv]])
    sigma_within = math.sqrt(within) if within > 0 else SIGMA_DEFAULT
    source, note, regressions = _borrow(gr, np.where(own, mu, ybar), feats, sigma_within,
                                        mu, sigma, se, min_obs)

    km50, km95 = kaplan_meier(g, y, ev, G)

    table = pd.DataFrame({"cluster": keys["cluster"].to_numpy()[gcv],
                          "volume": keys["volume"].to_numpy()[gcv],
                          "mode": np.where(gr.inc, "incremental", "full"), "source": source,
                          "n_completed": n_e.astype(int), "n_censored": gr.n_c,
                          "mu_log": mu, "sigma_log": sigma})
    crit = np.where(own, stats.t.ppf(0.975, np.maximum(n_e - 1, 1)), _Z_CI)
    for q, z in QUANTILE_Z.items():
        lq = mu + z * sigma
        table[f"{q}_s"] = np.exp(lq)
        table[f"{q}_lo_s"] = np.exp(lq - crit * se[q])
        table[f"{q}_hi_s"] = np.exp(lq + crit * se[q])
    table["km_p50_s"], table["km_p95_s"] = km50, km95
    table["note"] = note
    return (table.sort_values(["cluster", "volume", "mode"], ignore_index=True),
            pd.DataFrame(regressions, columns=["mode", "features", "n_volumes", "intercept",
                                               *_FEATURES, "residual_sd", "sigma_within",
                                               "sigma_within_sd"]))
