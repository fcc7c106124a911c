"""How likely each volume's backupstore operations are to meet the lock, with their
Monte Carlo error.

A :class:`VolumePlan` is what one volume's risk depends on: the backup jobs that cover it
(with its backup duration in each), its deletion duration, its place in each job's runs
of many volumes (:class:`~advisor.model.fastpath.RunPool`) and a DR volume restoring it.
:func:`assess` scores every plan with :func:`~advisor.model.fastpath.score_volume` over a
window (default: one week from the next Monday) and reports, per volume:

- the probability that a run meets a lock conflict (its backup fails or waits, or its
  retention deletion is blocked), and that a week has at least one;
- expected conflicts per week by kind: ``delete_blocked`` (informational: the deletion
  is retried), ``create_blocked`` (<= 1.7: a failed backup, a lost recovery point),
  ``pending_behind_deletion`` (>= 1.8: a delayed backup), ``restore_blocked`` (a DR
  restore tried again at the next poll);
- per job: expected skipped slots per week, the probability that a slot is skipped, and
  the effective interval (the window over the runs that started).

Every figure is a mean over draws with its standard error. The number of draws adapts:
it starts at ``min_draws`` and doubles until the standard error of the per-run conflict
probability is at most ``precision`` (default: a quarter of 1 %) or ``max_draws`` is
reached; the result says how many were used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from advisor.longhorn import LATEST
from advisor.model.fastpath import (
    CONFLICT_KINDS,
    WEEK_S,
    Estimate,
    RunPool,
    VolumeScore,
    score_volume,
)
from advisor.model.fleet import Duration, Fleet, JobSpec
from advisor.model.simulate import run_members
from advisor.schema import utc

__all__ = ["RiskAssessment", "VolumePlan", "VolumeRisk", "assess", "assess_volume",
           "plans_from_fleet"]

DEFAULT_PRECISION = 0.0025


@dataclass(frozen=True)
class VolumePlan:
    """What one volume's lock risk depends on (see the module docstring)."""

    volume: str
    jobs: tuple[tuple[JobSpec, Duration], ...]
    deletion: Duration
    queues: Mapping[str, tuple[RunPool, int]] = field(default_factory=dict)
    restore: tuple[float, Duration] | None = None
    kept: Mapping[str, int] | None = None
    """Per job, the backups of the volume it keeps at the window's start (default: its
    ``retain``, the steady state of a volume the job has covered for a while)."""
    cluster: str = ""
    failed_backup_ttl_s: float | None = None
    notes: tuple[str, ...] = ()
    """Assumptions this plan rests on (a fleet prior, a deletion prior, ...)."""


@dataclass(frozen=True)
class VolumeRisk:
    """One volume's risk figures (see the module docstring); ``score`` keeps the
    per-draw counts."""

    cluster: str
    volume: str
    p_conflict_per_run: Estimate
    p_conflict_per_week: Estimate
    expected_per_week: dict[str, Estimate]
    skipped_per_week: dict[str, Estimate]
    p_skip_per_slot: dict[str, Estimate]
    effective_interval_s: dict[str, Estimate]
    draws: int
    score: VolumeScore
    notes: tuple[str, ...] = ()

    def row(self) -> dict:
        """The figures as one flat record (means and standard errors)."""
        out = {"cluster": self.cluster, "volume": self.volume,
               "p_conflict_per_run": self.p_conflict_per_run.mean,
               "p_conflict_per_run_se": self.p_conflict_per_run.se,
               "p_conflict_per_week": self.p_conflict_per_week.mean,
               "p_conflict_per_week_se": self.p_conflict_per_week.se,
               "expected_conflicts_per_week": sum(e.mean for e in
                                                  self.expected_per_week.values()),
               "skipped_runs_per_week": sum(e.mean for e in
                                            self.skipped_per_week.values()),
               "draws": self.draws}
        for kind, e in self.expected_per_week.items():
            out[f"{kind}_per_week"] = e.mean
            out[f"{kind}_per_week_se"] = e.se
        out["notes"] = "; ".join(self.notes)
        return out


@dataclass(frozen=True)
class RiskAssessment:
    """The risk of every planned volume, and how it was computed."""

    volumes: tuple[VolumeRisk, ...]
    version: str
    start: pd.Timestamp
    end: pd.Timestamp
    precision: float

    @property
    def table(self) -> pd.DataFrame:
        """One row per volume, riskiest first."""
        df = pd.DataFrame([v.row() for v in self.volumes])
        if df.empty:
            return df
        return df.sort_values(["p_conflict_per_run", "expected_conflicts_per_week"],
                              ascending=False, kind="stable").reset_index(drop=True)

    def for_volume(self, volume: str, cluster: str | None = None) -> VolumeRisk:
        for v in self.volumes:
            if v.volume == volume and (cluster is None or v.cluster == cluster):
                return v
        raise KeyError(f"no risk for volume {volume!r}")

    def _repr_html_(self) -> str:
        head = (f"<p>Lock risk of {len(self.volumes)} volumes, Longhorn {self.version}, "
                f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}</p>")
        return head + self.table.to_html(index=False, float_format=lambda x: f"{x:.4g}")


def _concat(scores: Sequence[VolumeScore]) -> VolumeScore:
    if len(scores) == 1:
        return scores[0]
    first = scores[0]
    cat = {k: np.concatenate([getattr(s, k) for s in scores])
           for k in (*CONFLICT_KINDS, "conflicted_runs")}
    per_job = {k: {j: np.concatenate([getattr(s, k)[j] for s in scores])
                   for j in getattr(first, k)}
               for k in ("skipped_slots", "late_starts", "runs")}
    return replace(first, **cat, **per_job)


def _risk(plan: VolumePlan, score: VolumeScore) -> VolumeRisk:
    scale = WEEK_S / score.window_s
    skipped, p_skip, interval = {}, {}, {}
    for job, _ in plan.jobs:
        s, r = score.skipped_slots[job.name], score.runs[job.name]
        skipped[job.name] = _mean(s * scale)
        slots = s + r
        p_skip[job.name] = _mean(np.divide(s, slots, out=np.zeros(len(s)), where=slots > 0))
        has = r > 0
        interval[job.name] = _mean(score.window_s / r[has]) if has.any() else \
            Estimate(math.inf, 0.0)
    return VolumeRisk(plan.cluster, plan.volume, score.p_any_conflict_per_run(),
                      score.p_any_conflict_per_week(),
                      {k: score.expected_per_week(k) for k in CONFLICT_KINDS},
                      skipped, p_skip, interval, score.draws, score, plan.notes)


def _mean(x: np.ndarray) -> Estimate:
    x = np.asarray(x, dtype=float)
    if not len(x):
        return Estimate(math.nan, math.nan)
    return Estimate(float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))
                    if len(x) > 1 else 0.0)


def default_window(start: str | pd.Timestamp | None = None, weeks: int = 1
                   ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``weeks`` weeks from the Monday 00:00 UTC on or after ``start`` (default: the
    Monday after today)."""
    t = utc(start) if start is not None else pd.Timestamp.now(tz="UTC")
    monday = (t + pd.Timedelta(days=(7 - t.weekday()) % 7)).normalize()
    if monday < t:
        monday += pd.Timedelta(days=7)
    return monday, monday + pd.Timedelta(weeks=weeks)


def assess_volume(plan: VolumePlan, start: str | pd.Timestamp, end: str | pd.Timestamp,
                  *, version: str = LATEST, seed: int = 0,
                  precision: float = DEFAULT_PRECISION, min_draws: int = 500,
                  max_draws: int = 16_000, tz: str | None = None,
                  threads: int | None = None) -> VolumeRisk:
    """Score one plan, adding draws until the per-run conflict probability's standard
    error is at most ``precision`` (or ``max_draws`` are used)."""
    if not plan.jobs:
        raise ValueError(f"volume {plan.volume!r}: no backup job covers it")
    scores: list[VolumeScore] = []
    draws, batch = 0, min_draws
    while True:
        scores.append(score_volume(
            plan.jobs, plan.deletion, start, end, draws=batch, version=version,
            seed=seed + 7919 * len(scores), tz=tz, restore=plan.restore,
            failed_backup_ttl_s=plan.failed_backup_ttl_s, queues=plan.queues,
            kept=plan.kept if plan.kept is not None else {j.name: j.retain
                                                          for j, _ in plan.jobs},
            threads=threads))
        draws += batch
        score = _concat(scores)
        se = score.p_any_conflict_per_run().se
        if not se > precision or draws >= max_draws:  # (a NaN se: no runs at all)
            return _risk(plan, score)
        batch = min(draws, max_draws - draws)


def assess(plans: Iterable[VolumePlan], *, start: str | pd.Timestamp | None = None,
           weeks: int = 1, version: str = LATEST, seed: int = 0,
           precision: float = DEFAULT_PRECISION, min_draws: int = 500,
           max_draws: int = 16_000, tz: str | None = None) -> RiskAssessment:
    """Score every plan over ``weeks`` weeks from the Monday on or after ``start``."""
    t0, t1 = default_window(start, weeks)
    out = tuple(assess_volume(p, t0, t1, version=version, seed=seed, precision=precision,
                              min_draws=min_draws, max_draws=max_draws, tz=tz)
                for p in plans)
    return RiskAssessment(out, version, t0, t1, precision)


def plans_from_fleet(fleet: Fleet, *, pool_runs: int = 4096, seed: int = 0
                     ) -> list[VolumePlan]:
    """The plans of a fleet whose durations are known (a scenario, the sample fleet's
    ground truth): one per volume that a backup job covers, in name order. A DR volume
    gets no plan of its own: its restores show as ``restore_blocked`` of the volume it
    follows."""
    members = run_members(fleet)
    by_name = {v.name: v for v in fleet.volumes}
    jobs = {j.name: j for j in fleet.jobs}
    pools: dict[str, RunPool] = {}
    for name, vols in members.items():
        if len(vols) > 1:
            spec = jobs[name]
            lanes = len(vols) if spec.task == "system-backup" else spec.concurrency
            pools[name] = RunPool([by_name[v].backup_duration_for(name) for v in vols],
                                  lanes, runs=pool_runs, seed=seed)
    restores = {v.restore_of: (fleet.poll_interval_s,
                               v.restore_duration or v.backup_duration)
                for v in fleet.volumes if v.standby and v.restore_of}
    plans = []
    for v in sorted(fleet.volumes, key=lambda v: v.name):
        covering = [n for n, vols in members.items() if v.name in vols]
        if not covering:
            continue
        plans.append(VolumePlan(
            v.name, tuple((jobs[n], v.backup_duration_for(n)) for n in covering),
            v.deletion_duration,
            {n: (pools[n], members[n].index(v.name)) for n in covering if n in pools},
            restores.get(v.name), failed_backup_ttl_s=fleet.failed_backup_ttl_s))
    return plans

