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
probability is at most ``precision`` (default: a quarter of 1 %) and, if asked (as
:func:`assess_fleet` does), the per-week probability's at most ``week_precision``, or
``max_draws`` is reached; the result says how many were used.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np
import pandas as pd

from advisor.longhorn import LATEST, behaviour, run_lanes
from advisor.model.fastpath import (
    CONFLICT_KINDS,
    WEEK_S,
    Estimate,
    RunPool,
    VolumeScore,
    estimate,
    proportion,
    score_volume,
)
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.recommend import (
    Recommendation,
    VolumeOutcome,
    interval_of,
    ladder_cron,
    minimum_interval,
)
from advisor.model.simulate import run_members
from advisor.schedules import fire_times
from advisor.schema import utc

__all__ = ["RiskAssessment", "VolumePlan", "VolumeRisk", "Waits", "assess", "assess_fleet",
           "assess_volume", "fleet_scorer", "learn_waits", "plans_from_fleet",
           "recommend_intervals", "run_figures", "score_plan", "settled", "target_figure",
           "weeks_to_run"]

DEFAULT_PRECISION = 0.0025
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
    return replace(first, **cat, **per_job)


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


def default_window(start: str | pd.Timestamp | None = None, weeks: int = 1
                   ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``weeks`` weeks from the Monday 00:00 UTC on or after ``start`` (default: the
    Monday after today)."""
    t = utc(start) if start is not None else pd.Timestamp.now(tz="UTC")
    monday = (t + pd.Timedelta(days=(7 - t.weekday()) % 7)).normalize()
    if monday < t:
        monday += pd.Timedelta(days=7)
    return monday, monday + pd.Timedelta(weeks=weeks)


Focus = str | frozenset[str] | None
"""The jobs whose figures a target is checked on: one job, several (each is checked on
its own), or None (the volume's figures over all its jobs)."""


def target_figure(risk: VolumeRisk, focus: str | None) -> tuple[float, float]:
    """The figure a target is checked on, and its standard error: the larger (by
    ``p + 2 se``) of the per-run conflict probability (of ``focus``'s runs, if given)
    and a skipped slot's probability (of ``focus``, else of the worst job)."""
    if focus is not None and focus in risk.p_skip_per_slot:
        options = [risk.p_conflict_per_run_by_job[focus], risk.p_skip_per_slot[focus]]
    else:
        options = [risk.p_conflict_per_run, *risk.p_skip_per_slot.values()]
    best = max(options, key=lambda e: e.upper)
    return _or0(best.mean), _or0(best.se)


def _decided(risk: VolumeRisk, focus: str | None, target: float) -> bool:
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
    return _decided(risk, focus, target) or not target_figure(risk, focus)[1] > precision


def score_plan(plan: VolumePlan, start: str | pd.Timestamp, end: str | pd.Timestamp, *,
               draws: int, version: str = LATEST, seed: int = 0, tz: str | None = None,
               threads: int | None = None) -> VolumeScore:
    """One batch of ``draws`` draws of a plan (:func:`score_volume` with the plan's
    jobs, queues, restores and kept backups, from :data:`WARMUP_S` before ``start``):
    what :func:`assess_volume` adds up, for a caller that needs only some figures."""
    return score_volume(
        plan.jobs, plan.deletion, start, end, draws=draws, version=version, seed=seed,
        tz=tz, restore=plan.restore, failed_backup_ttl_s=plan.failed_backup_ttl_s,
        queues=plan.queues,
        kept=plan.kept if plan.kept is not None else {j.name: j.retain
                                                      for j, _ in plan.jobs},
        threads=threads, warmup_s=WARMUP_S)


def assess_volume(plan: VolumePlan, start: str | pd.Timestamp, end: str | pd.Timestamp,
                  *, version: str = LATEST, seed: int = 0,
                  precision: float = DEFAULT_PRECISION, min_draws: int = 500,
                  max_draws: int = 16_000, tz: str | None = None,
                  threads: int | None = None, target: float | None = None,
                  focus: Focus = None, week_precision: float | None = None
                  ) -> VolumeRisk:
    """Score one plan, adding draws until the per-run conflict probability's standard
    error is at most ``precision`` and, with ``week_precision``, the per-week one's at
    most that (or ``max_draws`` are used). With ``target``, the figure that
    :func:`advisor.model.recommend.minimum_interval` checks decides instead (the larger
    per-run conflict or skip probability, of ``focus``'s runs if given: one job or a
    set, each on its own): drawing stops
    as soon as the volume is clearly on one side of the target (``p + 2 se <= target``
    or ``p - 2 se > target``), or that figure's standard error is at most
    ``precision``; a volume far from the target needs few draws, and a rare job's
    figure (a monthly run) gets the draws it needs."""
    if not plan.jobs:
        raise ValueError(f"volume {plan.volume!r}: no backup job covers it")
    scores: list[VolumeScore] = []
    draws, batch = 0, min_draws
    while True:
        scores.append(score_plan(plan, start, end, draws=batch, version=version,
                                 seed=seed + 7919 * len(scores), tz=tz, threads=threads))
        draws += batch
        score = _concat(scores)
        if target is not None:  # the figure checked against the target decides
            risk = _risk(plan, score)
            if settled(risk, focus, target, precision) or draws >= max_draws:
                return risk
        else:
            se = score.p_any_conflict_per_run().se
            week_ok = week_precision is None or \
                score.p_any_conflict_per_week().se <= week_precision
            if (not se > precision and week_ok) or draws >= max_draws:
                return _risk(plan, score)  # (a NaN se: no runs at all)
        batch = min(draws, max_draws - draws)


def assess(plans: Iterable[VolumePlan], *, start: str | pd.Timestamp | None = None,
           weeks: int = 1, version: str = LATEST, seed: int = 0,
           precision: float = DEFAULT_PRECISION, min_draws: int = 500,
           max_draws: int = 16_000, tz: str | None = None, target: float | None = None,
           focus: str | None = None, week_precision: float | None = None
           ) -> RiskAssessment:
    """Score every plan over ``weeks`` weeks from the Monday on or after ``start``
    (``target``, ``focus``, ``week_precision``: see :func:`assess_volume`)."""
    t0, t1 = default_window(start, weeks)
    plans = list(plans)

    def one(p: VolumePlan, threads: int | None = None) -> VolumeRisk:
        return assess_volume(p, t0, t1, version=version, seed=seed, precision=precision,
                             min_draws=min_draws, max_draws=max_draws, tz=tz,
                             target=target, focus=focus, threads=threads,
                             week_precision=week_precision)

    # volumes side by side, one core each; a volume's result does not depend on where
    # it is scored
    if len(plans) > 1 and _cores() > 1:
        warm_spans(plans)
        out = tuple(map_volumes(lambda p: one(p, 1), plans))
    else:
        out = tuple(one(p) for p in plans)
    return RiskAssessment(out, version, t0, t1, precision)


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
        with ThreadPoolExecutor(max_workers=_cores()) as ex:
            list(ex.map(lambda x: x[0].lay_out(x[1]), todo))


def _cores() -> int:
    return min(2, len(os.sched_getaffinity(0)))


T = TypeVar("T")
R = TypeVar("R")
_FORKED: list[tuple[Callable, Sequence]] = []
"""The map in progress (:func:`map_volumes`), as forked workers inherit it."""
FORK_CHUNK = 16
"""Volumes a forked worker scores per message."""


def _forked(span: tuple[int, int]) -> list:
    fn, items = _FORKED[-1]
    return [fn(items[i]) for i in range(*span)]


def map_volumes(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``fn`` over ``items`` on up to two cores, in order. Scoring a volume holds the
    GIL for more than half its time (drawing durations, the figures), so threads gain
    little: with enough items, two forked worker processes score them (they inherit
    ``fn`` and ``items``, plans and run pools included, without copying them; results
    come back pickled). Otherwise, or where fork is not available, threads; with one
    core or one item, here."""
    n = len(items)
    if n < 2 or _cores() < 2:
        return [fn(x) for x in items]
    if n >= 4 * FORK_CHUNK and \
            "fork" in multiprocessing.get_all_start_methods():
        _FORKED.append((fn, items))
        try:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=_cores(), mp_context=ctx) as pool:
                spans = [(lo, min(lo + FORK_CHUNK, n)) for lo in range(0, n, FORK_CHUNK)]
                return [r for part in pool.map(_forked, spans) for r in part]
        finally:
            _FORKED.pop()
    with ThreadPoolExecutor(max_workers=_cores()) as pool:
        return list(pool.map(fn, items))


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
                     waits: Waits | None = None) -> list[VolumePlan]:
    """The plans of a fleet whose durations are known (a scenario, the sample fleet's
    ground truth): one per volume that a backup job covers, in name order. A DR volume
    gets no plan of its own: its restores show as ``restore_blocked`` of the volume it
    follows. ``waits`` hold the lanes of the job runs longer (:func:`assess_fleet`).
    Run pools are kept between calls with the same volumes and waits (:data:`_POOLS`)."""
    members = run_members(fleet)
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
    if len(new) > 1 and _cores() > 1:
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
        if not mine:
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
            score = assess_volume(plan, t0, t1, version=version, seed=seed,
                                  precision=0.01, min_draws=min_draws,
                                  max_draws=max_draws, threads=1).score
        return (sum(float(score.runs[j.name].mean()) for j, _ in plan.jobs),
                float(score.pending_behind_deletion.mean()))

    out = {}
    for plan, (runs, pending) in zip(plans, map_volumes(one, plans), strict=True):
        if runs > 0 and pending > 0:
            out[plan.volume] = (min(pending / runs, 1.0), plan.deletion)
    return out


def assess_fleet(fleet: Fleet, *, start: str | pd.Timestamp | None = None, weeks: int = 1,
                 version: str = LATEST, seed: int = 0, precision: float = DEFAULT_PRECISION,
                 volumes: Iterable[str] | None = None, waits: Waits | None = None,
                 min_draws: int = 200, max_draws: int = 16_000,
                 target: float | None = None, week_precision: float | None = 0.025
                 ) -> RiskAssessment:
    """:func:`assess` of a fleet's volumes (or of ``volumes``), with one round of
    feedback between the volumes of a job's runs: a backup Pending behind a deletion
    holds its lane, which delays the volumes after it and lengthens the run (so later
    fire times are skipped more often). The waits come from :func:`learn_waits` unless
    given. Draws are added until both the per-run probability's standard error is at
    most ``precision`` and the per-week one's at most ``week_precision`` (2.5 points): a
    volume whose weeks all or never meet a conflict needs no more than ``min_draws``,
    one that meets one in about half its weeks 400 (the draws double). ``target``: a
    volume gets only the draws that place it on one side of it (see
    :func:`assess_volume`)."""
    if waits is None:
        waits = learn_waits(fleet, start=start, weeks=weeks, version=version, seed=seed)
    plans = plans_from_fleet(fleet, seed=seed, waits=waits)
    if volumes is not None:
        wanted = set(volumes)
        plans = [p for p in plans if p.volume in wanted]
    return assess(plans, start=start, weeks=weeks, version=version, seed=seed,
                  precision=precision, min_draws=min_draws, max_draws=max_draws,
                  target=target, week_precision=week_precision)


def _or0(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def _outcome(volume: VolumeSpec, r: VolumeRisk, focus: str | None):
    """The :class:`~advisor.model.recommend.VolumeOutcome` of one scored volume: of
    ``focus``'s runs when it covers the volume, else of all its runs."""
    if focus is not None and focus in r.p_skip_per_slot:
        skip, p = r.p_skip_per_slot[focus], r.p_conflict_per_run_by_job[focus]
    else:
        skip = max(r.p_skip_per_slot.values(), key=lambda e: e.mean,
                   default=Estimate(0.0, 0.0))
        p = r.p_conflict_per_run
    # (a job with no run in the window: nothing met, as far as it shows)
    return VolumeOutcome(
        p_conflict_per_run=_or0(p.mean), p_conflict_per_run_se=_or0(p.se),
        p_skip_per_run=_or0(skip.mean), p_skip_per_run_se=_or0(skip.se),
        p99_backup_s=max(volume.backup_duration_for(j).p99_s for j in r.p_skip_per_slot),
        p99_deletion_s=volume.deletion_duration.p99_s)


def fleet_scorer(fleet: Fleet, *, start: str | pd.Timestamp | None = None, weeks: int = 1,
                 version: str = LATEST, seed: int = 0,
                 precision: float = DEFAULT_PRECISION, focus: str | None = None,
                 waits: Waits | None = None, target: float | None = None,
                 current: RiskAssessment | None = None):
    """A scorer for :mod:`advisor.model.recommend`: the per-volume outcome of a proposed
    set of jobs that replaces the fleet's jobs of the same names. With ``focus``, the
    outcome of that job's runs only, on the volumes it covers (the conflicts its runs
    meet, its skipped slots): another job's own trouble on the same volume is not this
    job's interval's doing.
    ``waits``: as :func:`assess_fleet`'s (learnt from ``fleet`` when not given).
    ``target``: the per-run probability the caller compares with; each volume then gets
    only the draws that place it on one side of it (from 64), which is what makes a
    fleet of thousands of volumes affordable. A proposal's volumes are then scored worst
    first (by their last outcome) and the scoring stops once one is over ``target``:
    the proposal breaks it whatever the others do, so its outcome holds only the
    volumes scored (as the :data:`~advisor.model.recommend.Scorer` contract allows).
    The current jobs (no job changed) are always scored on every volume, so the worst
    one is known. ``current``: an assessment of the fleet's jobs as they are, over the
    same window (:func:`assess_fleet`); their outcome is read from it rather than
    scored again."""
    current_jobs = {j.name: j for j in fleet.jobs}
    by_name = {v.name: v for v in fleet.volumes}
    memo: dict[tuple[JobSpec, ...], Mapping[str, VolumeOutcome]] = {}
    # the lanes' waits under the current schedule, for every proposal: a longer interval
    # leaves fewer waits, so its risk is overstated a little (a shorter one's, which is
    # only ever shown as "could run", understated)
    if waits is None:
        waits = learn_waits(fleet, start=start, weeks=weeks, version=version, seed=seed)
    t0, t1 = default_window(start, weeks)
    known = {r.volume: r for r in current.volumes} if current is not None and (
        current.start, current.end, current.version) == (t0, t1, version) else {}
    last: dict[str, float] = {}  # each volume's last upper bound: the worst go first

    def keep(r: VolumeRisk) -> VolumeOutcome:
        out = _outcome(by_name[r.volume], r, focus)
        last[r.volume] = out.upper
        return out

    def run(plans: list[VolumePlan], whole: bool) -> dict[str, VolumeOutcome]:
        common = dict(start=start, weeks=weeks, version=version, seed=seed,
                      precision=precision, target=target, focus=focus,
                      min_draws=500 if target is None else 64)
        if target is None or whole:
            return {r.volume: keep(r) for r in assess(plans, **common).volumes}
        plans = sorted(plans, key=lambda p: -last.get(p.volume, math.inf))
        out: dict[str, VolumeOutcome] = {}
        i, size = 0, 4  # a few first, since the worst usually decides; then more at once
        while i < len(plans):
            scored = [keep(r) for r in assess(plans[i:i + size], **common).volumes]
            out.update(zip((p.volume for p in plans[i:i + size]), scored, strict=True))
            if any(o.upper > target for o in scored):
                break
            i, size = i + size, min(2 * size, 64)
        return out

    def score(proposed: Sequence[JobSpec]) -> Mapping[str, VolumeOutcome]:
        key = tuple(sorted(proposed, key=lambda j: j.name))
        if key in memo:
            return memo[key]
        changed = {j.name: j for j in proposed}
        differ = {n for n, j in changed.items() if current_jobs.get(n) != j}
        jobs = tuple(changed.pop(j.name, j) for j in fleet.jobs) + tuple(changed.values())
        # only the volumes a changed job covers can change (all, for the current jobs);
        # with focus, only its volumes count
        plans = [p for p in plans_from_fleet(replace(fleet, jobs=jobs), seed=seed,
                                             waits=waits)
                 if (focus is None and not differ)
                 or any(j.name in differ if focus is None else j.name == focus
                        for j, _ in p.jobs)]
        out: dict[str, VolumeOutcome] = {}
        if not differ and known:  # what ``current`` tells on the target's either side
            for p in plans:
                r = known.get(p.volume)
                if r is not None and (target is None or _decided(r, focus, target)):
                    out[p.volume] = keep(r)
            plans = [p for p in plans if p.volume not in out]
        out.update(run(plans, whole=not differ))  # the jobs as they are: every volume
        memo[key] = out
        return out

    return score


def _apart(job: JobSpec, others: Sequence[JobSpec], tz: str | None = None) -> str | None:
    """``job``'s cron moved to the minute (and, for a daily or longer job, the hour)
    farthest from the fire times of ``others`` over a week, keeping its interval; None
    when it cannot be moved (an uneven schedule) or is already farthest."""
    gap = interval_of(job.cron)
    if not gap or not others:
        return None
    t0 = pd.Timestamp("2027-01-04T00:00:00Z")
    taken = np.unique(np.concatenate([
        fire_times(o.cron, t0 - pd.Timedelta(seconds=1), t0 + pd.Timedelta(weeks=1), tz)
        .astype(np.int64) for o in others]) - int(t0.timestamp()))
    if not len(taken):
        return None
    period = int(min(gap, 86400))  # where in the hour (or day) the job fires
    step = 60 if period <= 3600 else 3600
    marks = np.unique(taken % period)

    def distance(phase: int) -> int:
        d = np.abs(marks - phase) % period
        return int(np.minimum(d, period - d).min())

    own = int((fire_times(job.cron, t0 - pd.Timedelta(seconds=1), t0 + pd.Timedelta(
        seconds=gap * 2), tz).astype(np.int64)[0] - int(t0.timestamp())) % period)
    best = max(range(0, period, step), key=lambda ph: (distance(ph), -ph))
    if distance(best) <= distance(own):
        return None
    minute, hour = (best // 60) % 60, best // 3600
    like = f"{minute} * * * *" if period <= 3600 else f"{minute} {hour} * * *"
    if gap >= 7 * 86400:
        like = f"{minute} {hour} * * {job.cron.split()[4] if len(job.cron.split()) == 5 else 0}"
    return ladder_cron(gap, like)


def weeks_to_run(job: JobSpec) -> int:
    """Whole weeks a window needs for ``job`` to run in it (a monthly job: 5), at most
    53."""
    gap = interval_of(job.cron, median=True) or WEEK_S
    return min(53, max(1, math.ceil(gap / WEEK_S)))


def recommend_intervals(fleet: Fleet, *, target: float = 0.01,
                        start: str | pd.Timestamp | None = None, version: str = LATEST,
                        seed: int = 0, precision: float = DEFAULT_PRECISION,
                        jobs: Iterable[str] | None = None, waits: Waits | None = None,
                        current: RiskAssessment | None = None) -> list:
    """Per backupstore job of ``fleet`` (or of ``jobs``), a :class:`Recommendation
    <advisor.model.recommend.Recommendation>`: the smallest ladder interval that keeps
    every volume it covers under ``target`` per run
    (:func:`advisor.model.recommend.minimum_interval`, scored with the fast path for the
    job's own runs). When no interval does at the job's current phase, the search is
    repeated with the job moved to the minute (or hour) farthest from the other jobs
    that share its volumes, since jobs firing together meet at every interval.
    ``waits``: as :func:`assess_fleet`'s; ``current``: the fleet's :func:`assess_fleet`
    with those waits (its figures are the starting point of every job's search)."""
    members = run_members(fleet)
    wanted = set(jobs) if jobs is not None else None
    if waits is None:  # per run, so one week of the current schedule tells them
        waits = learn_waits(fleet, start=start, version=version, seed=seed)

    out = []
    for j in fleet.jobs:
        if j.name not in members or not members[j.name] or (
                wanted is not None and j.name not in wanted):
            continue
        vols = set(members[j.name])
        scorer = fleet_scorer(fleet, start=start, weeks=weeks_to_run(j), version=version,
                              seed=seed, precision=precision, focus=j.name, waits=waits,
                              target=target, current=current)
        advice = minimum_interval(j, fleet.jobs, scorer, target, volumes=members[j.name])
        rec = advice.recommendation
        sharing = [o for o in fleet.jobs if o.name != j.name and o.name in members
                   and vols & set(members[o.name])]
        moved = _apart(j, sharing) if not advice.meets_target else None
        if moved is not None:
            shifted = replace(j, cron=moved)
            jobs2 = tuple(shifted if o.name == j.name else o for o in fleet.jobs)
            alt = minimum_interval(shifted, jobs2, fleet_scorer(
                replace(fleet, jobs=jobs2), start=start, weeks=weeks_to_run(j), version=version,
                seed=seed, precision=precision, focus=j.name, waits=waits, target=target),
                target,
                volumes=members[j.name])
            if alt.meets_target or alt.after.p_conflict_per_run < \
                    advice.after.p_conflict_per_run:
                names = ", ".join(o.name for o in sharing)
                rec = Recommendation(
                    j.name, "interval+offset", j.cron, alt.recommended_cron,
                    advice.now.p_conflict_per_run, alt.after.p_conflict_per_run,
                    f"moved away from the fire times of {names} (which share its "
                    f"volumes) to {moved!r}; then {alt.reason}",
                    alt.recommendation.scored, advice.now_volume, advice.now)
        out.append(rec)
    return out
