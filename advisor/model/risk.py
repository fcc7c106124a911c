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

Every figure is a mean over draws with its standard error. The number of draws adapts
(:class:`Draws`): it starts at ``min_draws`` and doubles until the standard error of the
per-run conflict probability is at most ``precision`` (default: a quarter of 1 %) and,
if asked (as :func:`assess_fleet` does), the per-week probability's at most
``week_precision``, or ``max_draws`` is reached; the result says how many were used.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypedDict, Unpack

import numpy as np
import pandas as pd

from advisor.longhorn import LATEST, behaviour, run_lanes
from advisor.model.executor import cores, map_volumes
from advisor.model.fastpath import (
    CONFLICT_KINDS,
    WEEK_S,
    Estimate,
    RunPool,
    VolumeScore,
    estimate,
    proportion,
    score_volume,
    zero_if_nan,
)
from advisor.model.fleet import Duration, Fleet, JobSpec
from advisor.model.recovery import RecoveryDraws
from advisor.model.simulate import run_members
from advisor.model.window import default_window, weeks_to_run

__all__ = ["FLEET_DRAWS", "Draws", "RiskAssessment", "VolumePlan", "VolumeRisk", "Waits",
           "assess", "assess_fleet", "assess_volume", "decided", "learn_waits",
           "plans_from_fleet", "run_figures", "score_plan", "settled", "target_figure",
           "weeks_to_run"]

DEFAULT_PRECISION = 0.0025
RECOVERY_DRAWS = 400
"""Draws whose recovery points are kept: enough for the central 95 % of a week's
figures; a volume drawn further for its per-run precision does not need more."""
WARMUP_S = 6 * 3600.0
"""Each draw starts this long before the window and counts nothing before it (see
:func:`~advisor.model.fastpath.score_volume`): enough for runs that outlast an hourly
or shorter interval to reach where they would be. Without it, every job's first run in
the window is on time, and jobs firing together at the window's start (Monday 00:00:
a daily and an hourly job at minute 0) always meet."""


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
    p_conflict_per_run_by_job: dict[str, Estimate]
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
               for k in ("skipped_slots", "late_starts", "runs", "conflicted_runs_by_job")}
    kept = [s.recovery for s in scores if s.recovery is not None]
    recovery = RecoveryDraws.concat(kept) if kept else None
    return replace(first, **cat, **per_job, recovery=recovery)


def run_figures(score: VolumeScore) -> tuple[Estimate, dict[str, Estimate],
                                              dict[str, Estimate]]:
    """The per-run figures a target is checked on: the probability that a run meets a
    lock conflict (any job's, and per job) and, per job, that a slot is skipped."""
    return (score.p_any_conflict_per_run(),
            {j: score.p_any_conflict_per_run(j) for j in score.runs},
            {j: proportion(s, s + score.runs[j]) for j, s in score.skipped_slots.items()})


def _risk(plan: VolumePlan, score: VolumeScore) -> VolumeRisk:
    scale = WEEK_S / score.window_s
    p_run, p_run_by_job, p_skip = run_figures(score)
    skipped, interval = {}, {}
    for job, _ in plan.jobs:
        s, r = score.skipped_slots[job.name], score.runs[job.name]
        skipped[job.name] = estimate(s * scale)
        has = r > 0
        interval[job.name] = estimate(score.window_s / r[has]) if has.any() else \
            Estimate(math.inf, 0.0)
    return VolumeRisk(plan.cluster, plan.volume, p_run, score.p_any_conflict_per_week(),
                      p_run_by_job, {k: score.expected_per_week(k) for k in CONFLICT_KINDS},
                      skipped, p_skip, interval, score.draws, score, plan.notes)


Focus = str | frozenset[str] | None
"""The jobs whose figures a target is checked on: one job, several (each is checked on
its own), or None (the volume's figures over all its jobs)."""


@dataclass(frozen=True)
class Draws:
    """How a volume's figures are drawn: from ``seed``, ``min_draws`` draws first, then
    more, doubling, up to ``max_draws``, until the per-run conflict probability's
    standard error is at most ``precision`` and, with ``week_precision``, the per-week
    one's at most that. With ``target``, the figure the interval search and the gate
    compare with it decides instead (of ``focus``'s runs if given): drawing stops once
    the volume is clearly on one side of ``target`` (see :func:`assess_volume`)."""

    seed: int = 0
    precision: float = DEFAULT_PRECISION
    min_draws: int = 500
    max_draws: int = 16_000
    week_precision: float | None = None
    target: float | None = None
    focus: Focus = None
    recovery: bool = False
    """Keep the recovery points (:mod:`advisor.model.recovery`) of the first
    :data:`RECOVERY_DRAWS` draws too."""


FLEET_DRAWS = Draws(min_draws=200, week_precision=0.025, recovery=True)
""":func:`assess_fleet`'s: the per-week probability known to 2.5 points too, so a volume
whose weeks all or never meet a conflict needs no more than 200 draws, one that meets one
in about half its weeks 400."""


def target_figure(risk: VolumeRisk, focus: str | None) -> tuple[float, float]:
    """The figure a target is checked on, and its standard error: the larger (by
    ``p + 2 se``) of the per-run conflict probability (of ``focus``'s runs, if given)
    and a skipped slot's probability (of ``focus``, else of the worst job)."""
    if focus is not None and focus in risk.p_skip_per_slot:
        options = [risk.p_conflict_per_run_by_job[focus], risk.p_skip_per_slot[focus]]
    else:
        options = [risk.p_conflict_per_run, *risk.p_skip_per_slot.values()]
    best = max(options, key=lambda e: e.upper)
    return zero_if_nan(best.mean), zero_if_nan(best.se)


def decided(risk: VolumeRisk, focus: str | None, target: float) -> bool:
    """Whether a volume is clearly on one side of ``target`` by the figure
    :func:`target_figure` picks: ``p + 2 se <= target`` or ``p - 2 se > target``."""
    p, s = target_figure(risk, focus)
    return p + 2 * s <= target or p - 2 * s > target


def settled(risk: VolumeRisk, focus: Focus, target: float, precision: float) -> bool:
    """Whether drawing can stop: the figure of ``focus`` (of each job, for a set; a
    job with no run in the window has none) is clearly on one side of ``target``
    (:func:`_decided`) or known to within ``precision``."""
    if isinstance(focus, frozenset):
        return all(settled(risk, j, target, precision) for j in focus
                   if j in risk.p_skip_per_slot)
    return decided(risk, focus, target) or not target_figure(risk, focus)[1] > precision


class PlanOptions(TypedDict, total=False):
    """:func:`score_plan`'s optional keywords, passed to :func:`score_volume`."""

    tz: str | None
    threads: int | None
    recovery: bool


def score_plan(plan: VolumePlan, start: str | pd.Timestamp, end: str | pd.Timestamp, *,
               draws: int, version: str = LATEST, seed: int = 0,
               **options: Unpack[PlanOptions]) -> VolumeScore:
    """One batch of ``draws`` draws of a plan (:func:`score_volume` with the plan's
    jobs, queues, restores and kept backups, from :data:`WARMUP_S` before ``start``):
    what :func:`assess_volume` adds up, for a caller that needs only some figures."""
    return score_volume(
        plan.jobs, plan.deletion, start, end, draws=draws, version=version, seed=seed,
        restore=plan.restore, failed_backup_ttl_s=plan.failed_backup_ttl_s,
        queues=plan.queues,
        kept=plan.kept if plan.kept is not None else {j.name: j.retain
                                                      for j, _ in plan.jobs},
        warmup_s=WARMUP_S, **options)


def assess_volume(plan: VolumePlan, start: str | pd.Timestamp, end: str | pd.Timestamp,
                  draws: Draws = Draws(), *, version: str = LATEST, tz: str | None = None,
                  threads: int | None = None) -> VolumeRisk:
    """Score one plan, adding draws until the per-run conflict probability's standard
    error is at most ``draws.precision`` and, with ``draws.week_precision``, the per-week
    one's at most that (or ``draws.max_draws`` are used). With ``draws.target``, the
    figure that the interval search
    (:func:`advisor.advice.search.intervals.minimum_interval`) checks decides instead
    (the larger per-run conflict or skip probability, of ``draws.focus``'s runs if given:
    one job or a set, each on its own): drawing stops as soon as the volume is clearly on
    one side of the target (``p + 2 se <= target`` or ``p - 2 se > target``), or that
    figure's standard error is at most ``precision``; a volume far from the target needs
    few draws, and a rare job's figure (a monthly run) gets the draws it needs."""
    if not plan.jobs:
        raise ValueError(f"volume {plan.volume!r}: no backup job covers it")
    d = draws
    scores: list[VolumeScore] = []
    done, batch = 0, d.min_draws
    while True:
        scores.append(score_plan(plan, start, end, draws=batch, version=version,
                                 seed=d.seed + 7919 * len(scores), tz=tz, threads=threads,
                                 recovery=d.recovery and done < RECOVERY_DRAWS))
        done += batch
        score = _concat(scores)
        if d.target is not None:  # the figure checked against the target decides
            risk = _risk(plan, score)
            if settled(risk, d.focus, d.target, d.precision) or done >= d.max_draws:
                return risk
        else:
            se = score.p_any_conflict_per_run().se
            week_ok = d.week_precision is None or \
                score.p_any_conflict_per_week().se <= d.week_precision
            if (not se > d.precision and week_ok) or done >= d.max_draws:
                return _risk(plan, score)  # (a NaN se: no runs at all)
        batch = min(done, d.max_draws - done)


def assess(plans: Iterable[VolumePlan], draws: Draws = Draws(), *,
           start: str | pd.Timestamp | None = None, weeks: int = 1, version: str = LATEST,
           tz: str | None = None) -> RiskAssessment:
    """Score every plan over ``weeks`` weeks from the Monday on or after ``start``
    (``draws``: see :func:`assess_volume`)."""
    t0, t1 = default_window(start, weeks)
    plans = list(plans)

    def one(p: VolumePlan, threads: int | None = None) -> VolumeRisk:
        return assess_volume(p, t0, t1, draws, version=version, tz=tz, threads=threads)

    # volumes side by side, one core each; a volume's result does not depend on where
    # it is scored
    if len(plans) > 1 and cores() > 1:
        warm_spans(plans)
        out = tuple(map_volumes(lambda p: one(p, 1), plans))
    else:
        out = tuple(one(p) for p in plans)
    return RiskAssessment(out, version, t0, t1, draws.precision)


def warm_spans(plans: Iterable[VolumePlan]) -> None:
    """Lay out, here and on two threads, the runs each planned volume sees
    (:meth:`RunPool.span_for`) before the volumes are scored in forked processes: the
    pools keep them, so the next scoring of the same volumes (every interval a
    recommendation tries) finds them, where a forked worker's would be lost."""
    wanted: dict[int, tuple[RunPool, set[int]]] = {}
    for p in plans:
        for pool, at in p.queues.values():
            wanted.setdefault(id(pool), (pool, set()))[1].add(at)
    # each pool's volumes in two halves, so that both threads have work
    todo = [(pool, part) for pool, ats in wanted.values()
            for part in (sorted(ats)[0::2], sorted(ats)[1::2]) if part]
    if todo:
        with ThreadPoolExecutor(max_workers=cores()) as ex:
            list(ex.map(lambda x: x[0].lay_out(x[1]), todo))


Waits = Mapping[str, tuple[float, Duration]]
"""Per volume: the probability that a backup of it waits Pending behind a deletion, and
how long (see :class:`~advisor.model.fastpath.RunPool`)."""


_POOLS: OrderedDict[tuple, RunPool] = OrderedDict()
_POOLS_KEPT = 16
"""Run pools of the last calls (:func:`plans_from_fleet`): a pool depends on its job's
volumes, durations, lanes and waits, not on its cron, so every interval tried for a job,
and the assessment of the schedule as it is, share one (and the runs' spans each volume
sees, which take long to lay out)."""


def _pool(key: tuple, make: Callable[[], RunPool]) -> RunPool:
    if key in _POOLS:
        _POOLS.move_to_end(key)
        return _POOLS[key]
    pool = _POOLS[key] = make()
    while len(_POOLS) > _POOLS_KEPT:
        _POOLS.popitem(last=False)
    return pool


def plans_from_fleet(fleet: Fleet, *, pool_runs: int = 4096, seed: int = 0,
                     waits: Waits | None = None,
                     only: Collection[str] | None = None) -> list[VolumePlan]:
    """The plans of a fleet whose durations are known (a scenario, the sample fleet's
    ground truth): one per volume that a backup job covers, in name order. A DR volume
    gets no plan of its own: its restores show as ``restore_blocked`` of the volume it
    follows. ``waits`` hold the lanes of the job runs longer (:func:`assess_fleet`).
    Run pools are kept between calls with the same volumes and waits (:data:`_POOLS`).
    ``only``: the volumes to plan (default all); the others' plans are not made."""
    members = run_members(fleet)
    if only is not None:  # (only the runs of the jobs on these volumes are laid out)
        wanted = set(only)
        members = {n: vols for n, vols in members.items() if wanted & set(vols)}
    by_name = {v.name: v for v in fleet.volumes}
    jobs = {j.name: j for j in fleet.jobs}
    covering: dict[str, list[str]] = {}
    position: dict[tuple[str, str], int] = {}
    keys: dict[str, tuple] = {}
    for name, vols in members.items():
        for i, v in enumerate(vols):
            covering.setdefault(v, []).append(name)
            position[name, v] = i
        if len(vols) > 1:
            spec = jobs[name]
            lanes = run_lanes(spec.task, spec.concurrency, len(vols))
            durations = tuple(by_name[v].backup_duration_for(name) for v in vols)
            held = tuple((waits or {}).get(v) for v in vols)
            keys[name] = (name, lanes, pool_runs, seed, tuple(vols), durations, held)
    # the pools not kept from an earlier call are made side by side (the lanes are
    # laid by compiled code that releases the GIL); each has its own seed, so the
    # order does not matter
    new = [k for k in keys.values() if k not in _POOLS]
    if len(new) > 1 and cores() > 1:
        with ThreadPoolExecutor(max_workers=2) as ex:
            made = list(ex.map(lambda k: RunPool(k[5], k[1], runs=pool_runs, seed=seed,
                                                 waits=k[6]), new))
    else:
        made = [RunPool(k[5], k[1], runs=pool_runs, seed=seed, waits=k[6]) for k in new]
    fresh = dict(zip(new, made, strict=True))
    # every pool is taken before any is kept: keeping one may evict another that this
    # call found kept (the cache holds _POOLS_KEPT), which must not be looked up after
    pools = {}
    for name, k in keys.items():
        if k not in fresh:
            _POOLS.move_to_end(k)
        pools[name] = fresh[k] if k in fresh else _POOLS[k]
    for k, pool in fresh.items():
        _pool(k, lambda pool=pool: pool)
    restores = {v.restore_of: (fleet.poll_interval_s,
                               v.restore_duration or v.backup_duration)
                for v in fleet.volumes if v.standby and v.restore_of}
    plans = []
    for v in sorted(fleet.volumes, key=lambda v: v.name):
        mine = covering.get(v.name)
        if not mine or (only is not None and v.name not in wanted):
            continue
        plans.append(VolumePlan(
            v.name, tuple((jobs[n], v.backup_duration_for(n)) for n in mine),
            v.deletion_duration,
            {n: (pools[n], position[n, v.name]) for n in mine if n in pools},
            restores.get(v.name), failed_backup_ttl_s=fleet.failed_backup_ttl_s))
    return plans


def learn_waits(fleet: Fleet, *, start: str | pd.Timestamp | None = None, weeks: int = 1,
                version: str = LATEST, seed: int = 0, pool_runs: int = 4096,
                min_draws: int = 50, max_draws: int = 1000) -> Waits:
    """A first, coarse pass (``min_draws`` to ``max_draws`` draws) over the volumes that
    share job runs with others: how often each one's backups wait Pending behind its
    own deletions (per run of its jobs), each wait taken as a whole deletion (an upper
    bound: a backup meets a deletion part-way through). Empty under Longhorn <= 1.7,
    where such a backup fails at once and frees its lane."""
    if behaviour(version).backup_meets_deletion != "wait":
        return {}
    plans = [p for p in plans_from_fleet(fleet, pool_runs=pool_runs, seed=seed) if p.queues]
    t0, t1 = default_window(start, weeks)

    def one(plan: VolumePlan) -> tuple[float, float]:  # (runs, backups pending), means
        if min_draws == max_draws:  # (one batch: no figure decides when to stop)
            score = score_plan(plan, t0, t1, draws=min_draws, version=version, seed=seed,
                               threads=1)
        else:
            score = assess_volume(plan, t0, t1, Draws(seed=seed, precision=0.01,
                                                      min_draws=min_draws,
                                                      max_draws=max_draws),
                                  version=version, threads=1).score
        return (sum(float(score.runs[j.name].mean()) for j, _ in plan.jobs),
                float(score.pending_behind_deletion.mean()))

    out = {}
    for plan, (runs, pending) in zip(plans, map_volumes(one, plans), strict=True):
        if runs > 0 and pending > 0:
            out[plan.volume] = (min(pending / runs, 1.0), plan.deletion)
    return out


def assess_fleet(fleet: Fleet, draws: Draws = FLEET_DRAWS, *,
                 start: str | pd.Timestamp | None = None, weeks: int = 1,
                 version: str = LATEST, volumes: Iterable[str] | None = None,
                 waits: Waits | None = None) -> RiskAssessment:
    """:func:`assess` of a fleet's volumes (or of ``volumes``), with one round of
    feedback between the volumes of a job's runs: a backup Pending behind a deletion
    holds its lane, which delays the volumes after it and lengthens the run (so later
    fire times are skipped more often). The waits come from :func:`learn_waits` (from
    ``draws.seed``) unless given. ``draws``: see :data:`FLEET_DRAWS` and
    :func:`assess_volume`."""
    if waits is None:
        waits = learn_waits(fleet, start=start, weeks=weeks, version=version,
                            seed=draws.seed)
    plans = plans_from_fleet(fleet, seed=draws.seed, waits=waits)
    if volumes is not None:
        wanted = set(volumes)
        plans = [p for p in plans if p.volume in wanted]
    return assess(plans, draws, start=start, weeks=weeks, version=version)
