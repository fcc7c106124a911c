"""Does the model fit the week? The week's lock conflicts against the predicted range,
and, when they fall outside it, the causes the history lets it name.

Observed: the Backups asked for (else started, else collected) in the scored week whose
messages show a lock conflict (:data:`~advisor.model.observed.OBSERVED_KINDS`).
Predicted: the sum over volumes of the risk model's expected count for the week, with the
central 95 % of the fleet's week as the draws give it (each volume's draws are weeks;
the fleet's takes one of each, all of one stratum, so that the deletion prior's doubt,
which is the cluster's, moves every volume together: :func:`~advisor.model.recovery.
fleet_sum`). The report's summary and ``advisor recommend`` both say it, from
:func:`week_fit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from advisor.model.observed import OBSERVED_KINDS, conflicts_per_week
from advisor.model.recovery import fleet_sum

if TYPE_CHECKING:
    from advisor.advice.analyse import Analysis

__all__ = ["in_week", "week_conflicts", "week_fit"]


def in_week(backups: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Which Backups count in the week: asked for (else started, else collected) in it."""
    when = backups["requested_at"].fillna(backups["started_at"]).fillna(
        backups["collected_at"])
    return (when >= start) & (when < end)


def week_conflicts(a: Analysis) -> dict:
    """The week's lock conflicts: ``observed`` (and ``by_kind``), ``predicted`` (the
    expected count) and its 95 % ``range`` (the fleet's week drawn from its volumes'
    draws: :func:`~advisor.model.recovery.fleet_sum`)."""
    b = a.backups
    week = b[in_week(b, a.window.start, a.window.end)] if len(b) else b
    kinds = week["lock_conflict"] if len(week) else pd.Series(dtype=str)
    seen = a.observed
    predicted = float(np.nansum(seen["predicted_per_week"])) if len(seen) else 0.0
    # each draw is a week of the volume; the fleet's week takes one of each, of one
    # stratum, so the deletion prior's doubt (the cluster's) moves them together
    total = fleet_sum((conflicts_per_week(v.score) for v in a.assessment.volumes),
                      seed=a.settings.seed)
    lo, hi = np.quantile(total, [0.025, 0.975]) if predicted > 0 else (0.0, 0.0)
    return {"observed": int(kinds.isin(OBSERVED_KINDS).sum()),
            "by_kind": {k: int((kinds == k).sum()) for k in OBSERVED_KINDS},
            "predicted": predicted, "range": [float(lo), float(hi)]}


def week_fit(a: Analysis, jobs: pd.DataFrame) -> dict:
    """Whether the week's lock conflicts (:func:`week_conflicts`) fall in the predicted
    range, and, when not, the likely causes the history shows: deletion durations from
    the prior, schedules changed within the week (``jobs``: the history's RecurringJob
    observations), too little history, volumes on the fleet prior."""
    c = week_conflicts(a)
    observed, (lo, hi) = c["observed"], c["range"]
    verdict = ("more than predicted" if observed > hi else
               "fewer than predicted" if observed < lo else "fits")
    causes = []
    if verdict != "fits":
        causes += [f"{n} (the stated prior: 30 s + 0.5 s/GiB + 5 s per backup kept; "
                   "advisor watch measures them)" for n in a.notes
                   if n.startswith("deletion durations:") and "prior" in n]
        changed = _changed_jobs(a, jobs)
        if changed:
            causes.append("schedules changed within the week (" + ", ".join(changed)
                          + "): the prediction assumes the week-end schedule throughout")
        weeks = a.observed["history_weeks"] if len(a.observed) else pd.Series(dtype=float)
        if len(weeks) and float(weeks.median()) < 2:
            causes.append(f"too little history: {float(weeks.median()):.1f} weeks per "
                          "volume (median); durations fitted on few backups")
        causes += [f"{n}: their durations are not their own" for n in a.notes
                   if n.endswith("on fleet priors")]
    text = f"{observed} lock conflicts observed, {lo:.0f}–{hi:.0f} predicted (95 %): "
    if verdict == "fits":
        text += "the model fits the week"
    elif causes:
        text += f"{verdict}; likely causes: " + "; ".join(causes)
    else:
        text += f"{verdict}; no cause the history shows"
    return {"conflicts": verdict, "causes": causes, "text": text}


def _changed_jobs(a: Analysis, jobs: pd.DataFrame) -> list[str]:
    """RecurringJobs of the cluster that the history saw with more than one cron,
    retain or concurrency within the week."""
    if jobs.empty or not {"collected_at", "recurring_job", "cron"} <= set(jobs):
        return []
    t = jobs["collected_at"]
    week = jobs[(t >= a.window.start) & (t < a.window.end)]
    if "cluster" in week and a.cluster:
        week = week[week["cluster"].astype(str) == a.cluster]
    cols = [c for c in ("cron", "retain", "concurrency") if c in week]
    if week.empty:
        return []
    n = week.groupby(week["recurring_job"].astype(str))[cols].nunique().max(axis=1)
    return sorted(n[n > 1].index)
