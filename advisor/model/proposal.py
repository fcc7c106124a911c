"""The lock risk of proposed RecurringJobs on a fleet whose durations are known: what
``advisor check`` judges before a change is applied.

The proposal replaces the fleet's jobs of the same names and adds the others; every
volume a proposed backupstore job covers is scored with the fast path
(:func:`advisor.model.risk.assess_volume`), with the feedback between the volumes of a
run (:func:`advisor.model.risk.learn_waits`). Only the proposed jobs' own figures are
asked for, and only as precisely as the gate needs. Every volume gets a first pass of
:data:`FIRST_DRAWS` draws. A job then clearly over the target on some volume
(``p - 2 se > target``) is risky whatever its other volumes show, so they are drawn no
further; its likeliest volumes are scored again on fresh draws (:data:`WORST_DRAWS`),
and the worst of those is reported: the largest of many noisy first-pass figures would
be biased up. For the other jobs, each volume is drawn until the job's per-run conflict
and skip probabilities on it are clearly on one side of the target (``p + 2 se``,
``p - 2 se``) or known to within the precision. Volumes are scored in two forked
processes (:func:`advisor.model.executor.map_volumes`).

A job that fires rarely (weekly, monthly: at least :data:`~advisor.model.risk.WARMUP_S`
plus its horizon between fire times) is scored in a window around each of its fire
times rather than over whole weeks: from the warm-up before the fire time to a horizon
after it long enough for its run and its retention deletion to end (twice the p99 of its
run plus the p99 of a deletion, at least a day), since nothing later bears on that run.
A monthly run then costs about a day and a half of simulated time per draw instead of
five weeks, and the hundreds of draws that placing a rare run's probability against a 1 %
target takes stay affordable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from advisor.longhorn import LATEST
from advisor.model.executor import map_volumes
from advisor.model.fastpath import Estimate, VolumeScore
from advisor.model.fleet import Fleet, JobSpec
from advisor.model.risk import (
    WARMUP_S,
    Draws,
    VolumePlan,
    VolumeRisk,
    Waits,
    assess_volume,
    default_window,
    learn_waits,
    plans_from_fleet,
    run_figures,
    score_plan,
    settled,
    target_figure,
    warm_spans,
    weeks_to_run,
)
from advisor.model.simulate import run_members
from advisor.schedules import fire_times

__all__ = ["CHECK_DRAWS", "JobRisk", "assess_proposal", "merge_jobs"]

DAY_S = 86400.0
WAITS_POOL_RUNS = 512
WAITS_DRAWS = 8
"""The first pass that learns the waits (:func:`~advisor.model.risk.learn_waits`):
realisations per run pool and draws per volume (fixed). It only needs, per volume, how
often a backup waits behind its own deletion: a week of hourly runs in 8 draws is 1,344
runs."""
POOL_RUNS = 1024
"""Realisations of each job's run (:class:`~advisor.model.fastpath.RunPool`) the
volumes' draws are taken from (``advisor recommend``: 4,096): a gate's draws are few (a
daily run's 1 % needs a few hundred), and laying runs out on lanes is much of a check's
time. The reported standard errors include the pool's own (:func:`_with_pool`)."""
FIRST_DRAWS = 16
"""Draws of every volume in the first pass: enough to see a job clearly over a 1 %
target (a week of hourly runs is 2,688 runs); a volume whose verdict is still open gets
more (doubling)."""
WORST_RESCORED = 4
WORST_DRAWS = 256
"""A job found risky is not scored further on every volume; its likeliest volumes (by
the first pass) are scored again on this many fresh draws, and the worst of those is
reported."""
WEEKS_FOR_RATE = 52
"""Weeks over which a job's fire times are counted for its runs per week."""


@dataclass(frozen=True)
class JobRisk:
    """One proposed job's lock risk on the volumes its runs cover.

    ``p_conflict_per_run`` / ``p_skip_per_slot``: per volume where the job runs in the
    scored windows (a job that does not fire in them has none). ``windows``: the
    spans scored (one week or more; or one around each fire time of a rare job).
    ``runs_per_week``: its fire times per week over a year. ``draws``: per volume."""

    job: str
    volumes: tuple[str, ...]
    p_conflict_per_run: dict[str, Estimate]
    p_skip_per_slot: dict[str, Estimate]
    draws: dict[str, int]
    windows: tuple[tuple[pd.Timestamp, pd.Timestamp], ...]
    runs_per_week: float
    rescored: tuple[str, ...] = ()
    """For a job found above the target: its likeliest volumes, scored again (the
    others keep their first-pass figures)."""

    def figure(self, volume: str) -> Estimate:
        """What the target is checked on for this job on ``volume``: the larger, by
        ``p + 2 se``, of its per-run conflict and skipped-slot probabilities there (the
        rule of the advice, :attr:`~advisor.advice.search.outcome.VolumeOutcome.upper`)."""
        return max(self.p_conflict_per_run[volume], self.p_skip_per_slot[volume],
                   key=lambda e: e.upper)

    def worst(self) -> tuple[str, Estimate] | None:
        """The volume whose :meth:`figure` is largest (among ``rescored``, when there
        are), and that figure: the volume the advice calls the worst."""
        among = [v for v in self.rescored if v in self.p_conflict_per_run] or \
            sorted(self.p_conflict_per_run)
        if not among:
            return None
        v = max(among, key=lambda k: self.figure(k).upper)
        return v, self.figure(v)

    @property
    def expected_per_week(self) -> float:
        """Expected runs of this job a week that meet a lock conflict, over its
        volumes: each volume's per-run probability times the job's runs per week."""
        return sum(e.mean for e in self.p_conflict_per_run.values()) * self.runs_per_week

    @property
    def rare(self) -> bool:
        """Scored in windows around its fire times (see the module docstring)."""
        return any(t1 - t0 < pd.Timedelta(weeks=1) for t0, t1 in self.windows)


def merge_jobs(fleet: Fleet, proposed: Sequence[JobSpec]) -> Fleet:
    """``fleet`` with ``proposed`` in place of its jobs of the same names, the others
    added."""
    mine = {j.name: j for j in proposed}
    there = {j.name for j in fleet.jobs}
    return replace(fleet, jobs=(*(mine.get(j.name, j) for j in fleet.jobs),
                                *(j for j in proposed if j.name not in there)))


def _horizon(job: str, plans: Sequence[VolumePlan]) -> float:
    """How long after a fire time the job's run and its retention deletions take, with
    room: twice the p99 of the run (the slowest lane of its pool, else its volume's
    backup) plus the p99 deletion, at least a day."""
    pools = {id(p.queues[job][0]): p.queues[job][0] for p in plans if job in p.queues}
    run = max((float(np.quantile(pool.span, 0.99)) for pool in pools.values()),
              default=0.0)
    for p in plans:
        if job not in p.queues:
            run = max(run, max(d.p99_s for j, d in p.jobs if j.name == job))
    deletion = max(d.p99_s for d in {p.deletion for p in plans})
    return max(DAY_S, 2.0 * (run + deletion))


def _windows(job: JobSpec, t0: pd.Timestamp, t1: pd.Timestamp, horizon_s: float,
             tz: str | None) -> list[tuple[pd.Timestamp, pd.Timestamp]] | None:
    """A window per fire time of ``job`` in ``t0`` - ``t1``, from a minute before it
    to ``horizon_s`` after, when no other fire time of the job falls in a window or
    its warm-up and the windows are shorter than half the span; else None."""
    before = pd.Timedelta(seconds=WARMUP_S + 60)
    after = pd.Timedelta(seconds=horizon_s)
    fires = fire_times(job.cron, t0 - before, t1 + after, tz)
    inside = [pd.Timestamp(f, tz="UTC") for f in fires
              if t0 <= pd.Timestamp(f, tz="UTC") < t1]
    if not inside:
        return None
    gaps = np.diff(fires.astype(np.int64))
    if len(gaps) and gaps.min() < WARMUP_S + 60 + horizon_s:
        return None
    if len(inside) * (WARMUP_S + 60 + horizon_s) > 0.5 * (t1 - t0).total_seconds():
        return None
    return [(f - pd.Timedelta(seconds=60), f + after) for f in inside]


def _runs_per_week(job: JobSpec, t0: pd.Timestamp, tz: str | None) -> float:
    n = len(fire_times(job.cron, t0 - pd.Timedelta(seconds=1),
                       t0 + pd.Timedelta(weeks=WEEKS_FOR_RATE), tz))
    return n / WEEKS_FOR_RATE


def _with_pool(e: Estimate) -> Estimate:
    """``e`` with the error of the run pool its draws came from: an average over
    :data:`POOL_RUNS` fixed realisations of the job's runs errs at most as that many
    independent runs would, ``sqrt(p (1 - p) / POOL_RUNS)`` (the draws' own standard
    error does not see it)."""
    p = min(max(e.mean, 0.0), 1.0)
    return Estimate(e.mean, math.sqrt(e.se ** 2 + p * (1.0 - p) / POOL_RUNS))


def _pooled(parts: Sequence[Estimate]) -> Estimate:
    """The mean of estimates from independent windows (one run each), and its se."""
    k = len(parts)
    return Estimate(sum(e.mean for e in parts) / k,
                    math.sqrt(sum(e.se ** 2 for e in parts)) / k)


@dataclass(frozen=True)
class _Figures:
    """The figures of a scored volume the gate reads (a :class:`VolumeRisk` without its
    per-draw counts, which would only be pickled back from the workers)."""

    p_conflict_per_run: Estimate
    p_conflict_per_run_by_job: dict[str, Estimate]
    p_skip_per_slot: dict[str, Estimate]
    draws: int

    @classmethod
    def of(cls, score: VolumeScore) -> _Figures:
        """The figures of one batch (:func:`~advisor.model.risk.run_figures`)."""
        return cls(*run_figures(score), score.draws)


def _clearly_above(risk: VolumeRisk | _Figures, job: str, target: float) -> bool:
    if job not in risk.p_skip_per_slot:
        return False
    p, se = target_figure(risk, job)
    return p - 2 * se > target


CHECK_DRAWS = Draws(min_draws=FIRST_DRAWS)
"""A check's draws: every volume first gets :data:`FIRST_DRAWS`, then, where its verdict
is still open, more (doubling, at most ``max_draws``) until it is clear or known to
within ``precision``. The check's own target decides (its ``target`` and ``focus`` are
set per job)."""


def assess_proposal(fleet: Fleet, proposed: Sequence[JobSpec], *,
                    start: str | pd.Timestamp | None = None, version: str = LATEST,
                    target: float = 0.01, draws: Draws = CHECK_DRAWS,
                    waits: Waits | None = None, tz: str | None = None
                    ) -> dict[str, JobRisk]:
    """Each proposed backupstore job's :class:`JobRisk` on ``fleet`` with the proposal
    merged in (:func:`merge_jobs`): a job scored over :func:`weeks_to_run` weeks from
    the Monday on or after ``start``, a rare one around each of its fire times in
    them (see the module docstring). ``target``: the per-run probability the gate
    checks; ``draws``: how many draws, and from which seed; ``waits``: as
    :func:`~advisor.model.risk.assess_fleet`'s (learned on the merged fleet unless
    given). Jobs that cover no volume are left out."""
    merged = merge_jobs(fleet, proposed)
    members = run_members(merged)
    mine = [j for j in proposed if members.get(j.name)]
    if not mine:
        return {}
    if waits is None:  # (coarse: a probability per volume and run, for the lanes)
        waits = learn_waits(merged, start=start, version=version, seed=draws.seed,
                            pool_runs=WAITS_POOL_RUNS, min_draws=WAITS_DRAWS,
                            max_draws=WAITS_DRAWS)
    plans = {p.volume: p for p in plans_from_fleet(merged, seed=draws.seed, waits=waits,
                                                   pool_runs=POOL_RUNS)}
    covered = {j.name: [v for v in members[j.name] if v in plans] for j in mine}
    spans = {j.name: _spans(j, start, [plans[v] for v in covered[j.name]], tz) for j in mine}
    gate = _Gate(plans, covered, spans, version, tz, target, draws)
    tasks = gate.tasks()
    # first every volume at min_draws; then more only where the verdict needs them
    gate.score({k: frozenset(js) for k, js in tasks.items()}, draws.min_draws,
               draws.min_draws, draws.seed)
    risky = gate.above()
    again = {k: frozenset(j for j in js if j not in risky
                          and not settled(gate.done[k], j, target, draws.precision))
             for k, js in tasks.items()}
    gate.score({k: js for k, js in again.items() if js}, draws.min_draws, draws.max_draws,
               draws.seed)
    picked = gate.rescore_worst(gate.above())  # (and those the second pass found over)
    t0 = default_window(start)[0]
    return {j.name: gate.risk(j.name, _runs_per_week(j, t0, tz), picked.get(j.name, ()))
            for j in mine}


def _spans(job: JobSpec, start: str | pd.Timestamp | None, plans: Sequence[VolumePlan],
           tz: str | None) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Where ``job`` is scored: :func:`weeks_to_run` weeks from ``start``, or, for a rare
    job, a window around each of its fire times in them (:func:`_windows`)."""
    t0, t1 = default_window(start, weeks_to_run(job))
    return _windows(job, t0, t1, _horizon(job.name, plans), tz) or [(t0, t1)]


_Task = tuple[str, pd.Timestamp, pd.Timestamp]
"""A volume and a span it is scored in."""


@dataclass
class _Gate:
    """One check's scoring: the merged fleet's plans, each proposed job's volumes and
    spans, and the figures scored so far per volume and span (``done``)."""

    plans: dict[str, VolumePlan]
    covered: dict[str, list[str]]
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]
    version: str
    tz: str | None
    target: float
    draws: Draws
    done: dict[_Task, _Figures] = field(default_factory=dict)

    def tasks(self) -> dict[_Task, set[str]]:
        """One task per volume and span: the jobs scored whole-span share a volume's
        draws."""
        tasks: dict[_Task, set[str]] = {}
        for job, volumes in self.covered.items():
            for v in volumes:
                for t0, t1 in self.spans[job]:
                    tasks.setdefault((v, t0, t1), set()).add(job)
        return tasks

    def score(self, todo: dict[_Task, frozenset[str]], least: int, most: int,
              seed: int) -> None:
        """Score each task of ``todo`` for its jobs (``least`` to ``most`` draws) into
        ``done``."""
        order = sorted(todo, key=lambda k: (k[0], k[1]))
        warm_spans(self.plans[k[0]] for k in order)
        self.done.update(zip(order, map_volumes(
            lambda k: self._one(k, todo[k], least, most, seed), order), strict=True))

    def _one(self, task: _Task, focus: frozenset[str], least: int, most: int,
             seed: int) -> _Figures:
        v, t0, t1 = task
        if least == most:  # one batch: only the figures the gate reads
            return _Figures.of(score_plan(self.plans[v], t0, t1, draws=least,
                                          version=self.version, seed=seed, tz=self.tz,
                                          threads=1))
        draws = Draws(seed=seed, precision=self.draws.precision, min_draws=least,
                      max_draws=most, target=self.target, focus=focus)
        r = assess_volume(self.plans[v], t0, t1, draws, version=self.version, tz=self.tz,
                          threads=1)
        return _Figures(r.p_conflict_per_run, r.p_conflict_per_run_by_job,
                        r.p_skip_per_slot, r.draws)

    def above(self) -> set[str]:
        """The jobs clearly over the target on some volume and span."""
        return {job for job, volumes in self.covered.items() if any(
            _clearly_above(self.done[v, t0, t1], job, self.target)
            for v in volumes for t0, t1 in self.spans[job])}

    def rescore_worst(self, risky: set[str]) -> dict[str, tuple[str, ...]]:
        """Each risky job's likeliest volumes, scored again on fresh draws: its worst
        volume, picked among noisy figures, is biased up; a re-estimate is not."""
        final: dict[_Task, frozenset[str]] = {}
        picked: dict[str, tuple[str, ...]] = {}
        for job in (j for j in self.covered if j in risky):
            p, skip, _ = _figures(job, self.covered[job], self.spans[job], self.done)
            picked[job] = tuple(sorted(p, key=lambda v: (-max(p[v].mean, skip[v].mean),
                                                         v))[:WORST_RESCORED])
            for v in picked[job]:
                for t0, t1 in self.spans[job]:
                    final[v, t0, t1] = final.get((v, t0, t1), frozenset()) | {job}
        if final:  # (fresh draws, so the re-estimate is independent of the pick)
            self.score(final, WORST_DRAWS, WORST_DRAWS, self.draws.seed + 1)
        return picked

    def risk(self, job: str, runs_per_week: float, rescored: tuple[str, ...]) -> JobRisk:
        """``job``'s figures, pooled over its spans."""
        p, skip, draws = _figures(job, self.covered[job], self.spans[job], self.done)
        # a volume whose runs come from a pool: its draws reuse the pool's realisations
        pooled = {v for v in p if job in self.plans[v].queues}
        p = {v: _with_pool(e) if v in pooled else e for v, e in p.items()}
        skip = {v: _with_pool(e) if v in pooled else e for v, e in skip.items()}
        return JobRisk(job, tuple(self.covered[job]), p, skip, draws,
                       tuple(self.spans[job]), runs_per_week, rescored)


def _figures(job: str, volumes: Sequence[str],
             spans: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
             done: dict[tuple, _Figures]
             ) -> tuple[dict[str, Estimate], dict[str, Estimate], dict[str, int]]:
    """``job``'s per-run conflict and skip probabilities per volume, pooled over its
    spans, and the draws they took (volumes where it does not run are left out)."""
    p, skip, draws = {}, {}, {}
    for v in volumes:
        scored = [done[v, t0, t1] for t0, t1 in spans]
        runs = [r for r in scored if r.p_conflict_per_run_by_job[job].mean ==
                r.p_conflict_per_run_by_job[job].mean]  # (NaN: no run)
        if runs:
            p[v] = _pooled([r.p_conflict_per_run_by_job[job] for r in runs])
            skip[v] = _pooled([r.p_skip_per_slot[job] for r in runs])
            draws[v] = sum(r.draws for r in runs)
    return p, skip, draws
