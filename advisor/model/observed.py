"""Does the model fit the cluster? Lock conflicts seen in the history, against the rate
the risk model predicts, volume by volume.

Observed: the Backups of a volume whose messages report a lock conflict (the schema's
``lock_conflict``: ``delete_blocked``, ``create_blocked``, ``pending_behind_deletion``),
one per Backup, over the weeks from the volume's first Backup in the history to the
cluster's last collection. Backups deleted before any collection saw them took their
messages with them, so a history of one snapshot sees only what retention kept; the
span starts at the oldest Backup kept, so the rate stays fair.

Predicted: the same kinds from :func:`advisor.model.risk.assess` (restores, which the
history shows on DR volumes, are left out on both sides). The count over the span is
a Poisson count at each Monte Carlo draw's rate (the draws carry the durations' median
uncertainty); its 95 % interval and two one-sided tail probabilities come from that
mixture. ``fit`` says ``more than predicted`` or ``fewer than predicted`` when a tail
is under 2.5 %, else ``fits``. Conflicts come in bursts (one slow backup delays
several), which a Poisson count understates, so a ``more``/``fewer`` verdict on a
volume with many conflicts is weaker evidence than it reads. The rate is the one
predicted for the assessed window (a week by default): jobs that meet only on some
dates (a monthly and a weekly job, when the 1st is the weekly day) can leave conflicts
in the history that the window does not hold, and read ``more than predicted``;
``advisor check`` reports such collisions and how often they come.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from advisor.model.fastpath import VolumeScore
from advisor.model.risk import RiskAssessment

__all__ = ["OBSERVED_BACKUP_COLUMNS", "OBSERVED_KINDS", "conflicts_per_week",
           "observed_vs_predicted"]

OBSERVED_KINDS = ("delete_blocked", "create_blocked", "pending_behind_deletion")
"""Lock conflicts a Backup's messages can show, and the model predicts for its volume."""

OBSERVED_BACKUP_COLUMNS = ("cluster", "volume", "requested_at", "started_at",
                           "collected_at", "lock_conflict")
"""The Backup columns :func:`observed_vs_predicted` reads."""
_WEEK = pd.Timedelta(weeks=1)
_TAIL = 0.025


def _span(backups: pd.DataFrame) -> pd.DataFrame:
    """Per (cluster, volume): observed conflicts and the weeks the history covers."""
    b = backups[list(OBSERVED_BACKUP_COLUMNS)]
    first = b["requested_at"].fillna(b["started_at"]).fillna(b["collected_at"])
    last = b.groupby("cluster")["collected_at"].transform("max")
    df = pd.DataFrame({"cluster": b["cluster"].astype(str), "volume": b["volume"].astype(str),
                       "first": first, "last": last,
                       "conflict": b["lock_conflict"].isin(OBSERVED_KINDS).fillna(False)})
    g = df.groupby(["cluster", "volume"], sort=False)
    out = g.agg(first=("first", "min"), last=("last", "max"),
                observed_conflicts=("conflict", "sum")).reset_index()
    out["history_weeks"] = ((out["last"] - out["first"]) / _WEEK).clip(lower=0)
    return out.drop(columns=["first", "last"])


def conflicts_per_week(score: VolumeScore) -> np.ndarray:
    """Per draw of ``score``, its conflicts of the kinds a history shows
    (:data:`OBSERVED_KINDS`) a week."""
    return sum(score.counts(k) for k in OBSERVED_KINDS) / (score.window_s
                                                           / _WEEK.total_seconds())


def observed_vs_predicted(backups: pd.DataFrame, risk: RiskAssessment, *,
                          seed: int = 0) -> pd.DataFrame:
    """One row per assessed volume: ``history_weeks``, ``observed_conflicts``,
    ``observed_per_week``, ``predicted_per_week`` (mean over the draws),
    ``predicted_lo``/``predicted_hi`` (95 % interval of the count over
    ``history_weeks``), ``p_more``/``p_fewer`` (the tails at the observed count) and
    ``fit``: ``fits``, ``more than predicted``, ``fewer than predicted`` or ``no
    history``. ``seed`` fixes the draws of the interval."""
    from scipy import stats  # (here: it takes half a second to import)

    span = _span(backups)
    # a plan made without a cluster name matches the volume in the one cluster it is in
    alone = span[~span["volume"].duplicated(keep=False)].assign(cluster="")
    span = pd.concat([span, alone]).set_index(["cluster", "volume"])
    rng = np.random.default_rng(seed)
    rows = []
    for v in risk.volumes:
        rate = conflicts_per_week(v.score)
        key = (v.cluster, v.volume)
        weeks = float(span.at[key, "history_weeks"]) if key in span.index else 0.0
        seen = int(span.at[key, "observed_conflicts"]) if key in span.index else 0
        row = {"cluster": v.cluster, "volume": v.volume, "history_weeks": weeks,
               "observed_conflicts": seen,
               "observed_per_week": seen / weeks if weeks > 0 else np.nan,
               "predicted_per_week": float(rate.mean())}
        if weeks <= 0:
            rows.append({**row, "predicted_lo": np.nan, "predicted_hi": np.nan,
                         "p_more": np.nan, "p_fewer": np.nan, "fit": "no history"})
            continue
        mu = rate * weeks
        lo, hi = np.quantile(rng.poisson(np.repeat(mu, max(1, 4000 // len(mu)))),
                             [_TAIL, 1 - _TAIL])
        p_more = float(stats.poisson.sf(seen - 1, mu).mean())   # P(N >= seen)
        p_fewer = float(stats.poisson.cdf(seen, mu).mean())     # P(N <= seen)
        fit = ("more than predicted" if p_more < _TAIL else
               "fewer than predicted" if p_fewer < _TAIL else "fits")
        rows.append({**row, "predicted_lo": float(lo), "predicted_hi": float(hi),
                     "p_more": p_more, "p_fewer": p_fewer, "fit": fit})
    return pd.DataFrame(rows, columns=[
        "cluster", "volume", "history_weeks", "observed_conflicts", "observed_per_week",
        "predicted_per_week", "predicted_lo", "predicted_hi", "p_more", "p_fewer", "fit"])
