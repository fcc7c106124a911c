"""Each job's advice: of the changes that could keep its volumes under the target, the
one that costs the fewest recovery points.

The candidates, each scored with the fast path against the other jobs on the job's
volumes, every interval at its better offset (the job's own phase, or the one farthest
from those jobs' fire times, :func:`_apart`):

- an interval (and offset) for all its volumes (:func:`~advisor.advice.search.intervals.
  minimum_interval`);
- when a few volumes (at most a quarter) break the target at the job's interval: those
  moved to a RecurringJob of their own at their smallest safe interval, the rest kept
  (:func:`~advisor.advice.search.split.split_job`);
- when the job skips fire times: a larger ``concurrency``, so that its run's makespan
  fits the interval (doubling, up to all its volumes at once).

Of those that meet the target, the one that gives up the fewest recovery points a week
(a volume backed up every 3 h instead of every hour gives up 112 a week) wins; when none
does, the one whose worst volume fares best, if it cuts that volume's risk by a tenth at
least. Otherwise the job is kept, and the reason names the best change found.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from advisor.advice.search.intervals import IntervalAdvice, Phases, minimum_interval
from advisor.advice.search.ladder import LADDER, ladder_cron
from advisor.advice.search.outcome import Recommendation
from advisor.advice.search.scorer import fleet_scorer
from advisor.advice.search.split import How, Split, split_job
from advisor.advice.settings import Settings
from advisor.model.fleet import Fleet, JobSpec
from advisor.model.risk import RiskAssessment, Waits, learn_waits, weeks_to_run
from advisor.model.simulate import run_members
from advisor.schedules import fire_times, interval_of
from advisor.units import duration as dur
from advisor.units import percent as pct

__all__ = ["FEW", "recommend_intervals"]

FEW = 0.25
"""The largest share of a job's volumes that a split moves to a job of their own."""
_WEEK_S = 7 * 86400.0


def _apart(job: JobSpec, others: Sequence[JobSpec], tz: str | None = None) -> str | None:
    """``job``'s cron moved to the minute (and, for a daily or longer job, the hour)
    farthest from the fire times of ``others`` over a week, keeping its interval; None
    when it cannot be moved (an uneven schedule) or is already farthest."""
    gap = interval_of(job.cron)
    if not gap or int(gap) not in LADDER or not others:
        return None
    t0 = pd.Timestamp("2027-01-04T00:00:00Z")
    taken = np.unique(np.concatenate([
        fire_times(o.cron, t0 - pd.Timedelta(seconds=1), t0 + pd.Timedelta(weeks=1), tz)
        .astype(np.int64) for o in others]) - int(t0.timestamp()))
    if not len(taken):
        return None
    period = int(min(gap, 86400))  # where in the hour (or day) the job fires
    step = 60 if period <= 3600 else 900
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


def _phases(fleet: Fleet, job: JobSpec) -> Phases:
    """The other offset to try at each step of ``job`` in ``fleet``: away from the fire
    times of the jobs that share its volumes (:func:`_sharing`)."""
    sharing = set(_sharing(fleet, job))
    others = [o for o in fleet.jobs if o.name in sharing]
    return lambda cron: _apart(replace(job, cron=cron), others)


def recommend_intervals(fleet: Fleet, settings: Settings | None = None, *,
                        start: str | pd.Timestamp | None = None,
                        jobs: Iterable[str] | None = None, waits: Waits | None = None,
                        current: RiskAssessment | None = None) -> list[Recommendation]:
    """Per backupstore job of ``fleet`` (or of ``jobs``), its :class:`Recommendation`
    (see the module docstring), scored over the week from ``start``. ``waits``: as
    :func:`~advisor.model.risk.assess_fleet`'s; ``current``: the fleet's
    :func:`~advisor.model.risk.assess_fleet` with those waits (its figures are the
    starting point of every job's search)."""
    s = settings or Settings()
    members = run_members(fleet)
    wanted = set(jobs) if jobs is not None else None
    if waits is None:  # per run, so one week of the current schedule tells them
        waits = learn_waits(fleet, start=start, version=s.version, seed=s.seed)
    return [_job_advice(fleet, j, members[j.name], s, start=start, waits=waits,
                        current=current)
            for j in fleet.jobs
            if members.get(j.name) and (wanted is None or j.name in wanted)]


@dataclass(frozen=True)
class _Candidate:
    rec: Recommendation
    meets: bool
    lost_per_week: float
    """Recovery points a week the change gives up, over the job's volumes."""
    upper: float
    """The worst volume's ``p + 2·se`` once applied."""


def _given_up(volumes: int, now_s: float, after_s: float | None) -> float:
    return 0.0 if not after_s else volumes * max(0.0, _WEEK_S / now_s - _WEEK_S / after_s)


def _job_advice(fleet: Fleet, j: JobSpec, vols: list[str], s: Settings, *,
                start: str | pd.Timestamp | None, waits: Waits,
                current: RiskAssessment | None) -> Recommendation:
    """One job's :class:`Recommendation` (see the module docstring)."""
    scorer = fleet_scorer(fleet, s, start=start, weeks=weeks_to_run(j), focus=j.name,
                          waits=waits, target=s.target, current=current)
    gap = interval_of(j.cron, median=True)
    outlast = _slow(fleet, j, vols, gap) if gap else []
    # volumes that outlast the interval: their split first; when it keeps every volume
    # under the target, an interval for all cannot give up fewer recovery points unless
    # it is one step longer at most, so its search skips the other offsets (half the
    # cost on a job of hundreds of volumes)
    cap = rpo_cap(fleet, j, vols, s)
    sp = _split(fleet, j, vols, outlast, s, start=start, waits=waits)
    advice = minimum_interval(j, fleet.jobs, scorer, s.target, volumes=vols,
                              phases=None if sp is not None and sp.meets_target
                              else _phases(fleet, j), max_s=cap)
    first = _interval_candidate(j, advice, len(vols), _sharing(fleet, j))
    if advice.meets_target and first.lost_per_week == 0.0:
        return first.rec  # kept, or the same interval at another offset
    found = [first]
    if sp is None and not outlast:  # (the volumes over the target as the job runs now)
        outs = scorer(fleet.jobs)
        slow = sorted((v for v in vols if v in outs and outs[v].upper > s.target),
                      key=lambda v: -outs[v].upper)
        sp = _split(fleet, j, vols, slow, s, start=start, waits=waits)
    if sp is not None:
        found.append(_split_candidate(j, sp, advice, len(vols), _sharing(fleet, j)))
    if advice.now.p_skip_per_run + 2 * advice.now.p_skip_per_run_se > s.target \
            and not outlast:
        # (only when every volume's own backup fits the interval: a run lasts until its
        # slowest volume is done, however many run at once)
        more = _concurrency_candidate(fleet, j, vols, s, start=start, waits=waits,
                                      advice=advice)
        found += [more] if more is not None else []
    return _choose(found, advice, j)


def rpo_cap(fleet: Fleet, j: JobSpec, vols: Sequence[str], s: Settings) -> float | None:
    """The longest interval ``j`` may be given under the settings' RPO: for each of its
    ``vols`` that no other job backs up within its RPO, the RPO less the volume's p95
    backup duration in ``j`` (a backup that starts on time completes that late, so its
    gap to the last completion can reach interval + p95); the smallest of those, or the
    job's interval now if longer (the advice never lengthens it further). None when no
    RPO is left to the job."""
    if not s.has_rpo:
        return None
    members = run_members(fleet)
    every = {o.name: interval_of(o.cron, median=True) or math.inf for o in fleet.jobs}
    spec = {v.name: v for v in fleet.volumes}
    caps = []
    for v in vols:
        jobs = [o for o, vs in members.items() if v in vs]
        rpo = s.rpo_of_volume(jobs)
        if rpo is not None and not any(o != j.name and every[o] <= rpo for o in jobs):
            caps.append(rpo - spec[v].backup_duration_for(j.name).p95_s)
    return max(min(caps), every[j.name]) if caps else None


def _split(fleet: Fleet, j: JobSpec, vols: Sequence[str], slow: list[str], s: Settings, *,
           start: str | pd.Timestamp | None, waits: Waits) -> Split | None:
    """``slow`` moved out of ``j`` (None when they are not a few of its volumes); if the
    rest still breaks the target, the rest's volumes that break it join them, as long
    as they stay a few (:data:`FEW`), twice at most. The rest keep the job's interval,
    at its own offset or the one farthest from the other jobs on their volumes."""
    few = int(FEW * len(vols))  # (so a job of fewer than four volumes is not split)
    if not 0 < len(slow) <= few:
        return None
    # the rest at the better of the job's offset and the one farthest from the jobs that
    # share its volumes (what suits the whole job is its slow volumes' choice)
    rest = [j.cron] + [c for c in [_phases(fleet, j)(j.cron)] if c is not None]
    sp = split_job(fleet, j, slow, rest, s, How(start, waits, _phases,
                                                rpo_cap(fleet, j, slow, s)))
    for _ in range(2):
        more = sorted((v for v, o in sp.rest_outcomes.items() if o.upper > s.target),
                      key=lambda v: -sp.rest_outcomes[v].upper)
        if sp.meets_target or not more or len(slow) + len(more) > few:
            break
        slow = [*slow, *more]
        sp = split_job(fleet, j, slow, [sp.rest_cron], s, How(
            start, waits, _phases, rpo_cap(fleet, j, slow, s)))
    return sp


def _slow(fleet: Fleet, j: JobSpec, vols: Sequence[str], interval_s: float) -> list[str]:
    """The volumes of ``j`` whose p99 backup and deletion together outlast its interval,
    slowest first: each of their backups meets its own retention cleanup, and the run
    they are in outlasts the interval and skips the next fire time for every volume."""
    spec = {v.name: v for v in fleet.volumes}

    def need(v: str) -> float:
        return spec[v].backup_duration_for(j.name).p99_s + spec[v].deletion_duration.p99_s

    return sorted((v for v in vols if need(v) > interval_s), key=lambda v: -need(v))


def _sharing(fleet: Fleet, j: JobSpec) -> list[str]:
    """The other backup jobs that run on some of ``j``'s volumes."""
    members = run_members(fleet)
    mine = set(members.get(j.name, ()))
    return [o for o, vols in members.items() if o != j.name and mine & set(vols)]


def _interval_candidate(j: JobSpec, a: IntervalAdvice, n: int, sharing: list[str]
                        ) -> _Candidate:
    rec = a.recommendation
    step = a.step_s if a.recommended_cron != j.cron else None
    kind = ("keep" if not rec.changed else "offset" if step == a.current_interval_s
            else "interval" if step is None or ladder_cron(step, j.cron) == a.recommended_cron
            else "interval+offset")
    rec = replace(rec, kind=kind, volume_after=a.after_volume, after=a.after)
    if kind in ("offset", "interval+offset"):
        rec = replace(rec, reason=f"moved away from the fire times of {', '.join(sharing)} "
                      f"(which share its volumes) to {a.recommended_cron!r}; {rec.reason}")
    return _Candidate(rec, a.meets_target, _given_up(n, a.current_interval_s, step),
                      a.after.upper)


def _split_candidate(j: JobSpec, sp: Split, a: IntervalAdvice, n: int, sharing: list[str]
                     ) -> _Candidate:
    moved = ", ".join(sp.volumes[:5]) + (f" and {len(sp.volumes) - 5} more"
                                         if len(sp.volumes) > 5 else "")
    step = sp.slow.step_s or sp.slow.current_interval_s
    worst = [(sp.slow.after_volume, sp.slow.after)] + (
        [(sp.rest_volume, sp.rest)] if sp.rest is not None else [])
    vol_after, after = max(worst, key=lambda w: w[1].upper)
    away = (f", moved away from the fire times of {', '.join(sharing)} (which share its "
            "volumes)" if sp.rest_cron != j.cron else "")
    rest = (f"the other {n - len(sp.volumes)} stay every {dur(a.current_interval_s)}{away} "
            f"at {sp.rest_cron!r} (worst {sp.rest_volume}: p + 2·se {pct(sp.rest.upper)})"
            if sp.rest is not None else "no volume stays")
    reason = (f"{a.why_now}; {len(sp.volumes)} of {n} volumes hold {j.name} back "
              f"({moved}): move them to a new RecurringJob {sp.job.name}, "
              f"{sp.slow.why_after} (p + 2·se {pct(sp.slow.after.upper)}); {rest}. "
              f"Recovery points: the moved volumes get one from this job every "
              f"{dur(step)} instead of every {dur(a.current_interval_s)}; the rest keep "
              f"theirs")
    if not sp.meets_target:
        reason += f"; this does not meet the target {pct(a.target)}"
    rec = Recommendation(j.name, "split", j.cron, sp.rest_cron, a.now.p_conflict_per_run,
                         after.p_conflict_per_run, reason, a.recommendation.scored,
                         a.now_volume, a.now, vol_after, after, split=sp)
    return _Candidate(rec, sp.meets_target,
                      _given_up(len(sp.volumes), a.current_interval_s, step), after.upper)


def _concurrency_candidate(fleet: Fleet, j: JobSpec, vols: Sequence[str], s: Settings, *,
                           start: str | pd.Timestamp | None, waits: Waits,
                           advice: IntervalAdvice) -> _Candidate | None:
    """The smallest doubling of ``concurrency`` (up to all the job's volumes at once)
    with which the job's run fits its interval and meets the target; None when none
    does or the job already runs them all at once."""
    c = j.concurrency
    scorer = fleet_scorer(fleet, s, start=start, weeks=weeks_to_run(j), focus=j.name,
                          waits=waits, target=s.target)
    while 0 < c < len(vols):
        c = min(2 * c, len(vols))
        more = replace(j, concurrency=c)
        outs = scorer([o for o in fleet.jobs if o.name != j.name] + [more])
        worst = max(vols, key=lambda v: outs[v].upper if v in outs else -1.0)
        o = outs[worst]
        if o.upper <= s.target:
            reason = (f"{advice.reason}; instead, with concurrency {c} (from "
                      f"{j.concurrency}) the run's volumes go {c} at once and its makespan "
                      f"fits the {dur(advice.current_interval_s)} interval: worst {worst} "
                      f"P(skipped slot) {pct(o.p_skip_per_run)}, p + 2·se {pct(o.upper)}; "
                      "no recovery point given up (more backups run at once on the "
                      "target)")
            rec = Recommendation(j.name, "concurrency", j.cron, j.cron,
                                 advice.now.p_conflict_per_run, o.p_conflict_per_run,
                                 reason, advice.recommendation.scored, advice.now_volume,
                                 advice.now, worst, o, concurrency=c)
            return _Candidate(rec, True, 0.0, o.upper)
    return None


def _choose(found: list[_Candidate], a: IntervalAdvice, j: JobSpec) -> Recommendation:
    """Of those that meet the target, the one giving up the fewest recovery points;
    else the one whose worst volume fares best, if it cuts the risk by a tenth; else
    keep, naming the best found."""
    meeting = [c for c in found if c.meets]
    if meeting:
        return min(meeting, key=lambda c: (c.lost_per_week, found.index(c))).rec
    best = min(found, key=lambda c: (c.upper, found.index(c)))
    if best.rec.changed and best.rec.after is not None and best.rec.after.cuts(a.now):
        return best.rec
    keep = found[0].rec
    if best.rec.changed and best is not found[0]:
        keep = replace(keep, reason=f"{keep.reason}; the best change found, "
                       f"{best.rec.kind}: {best.rec.reason}, does not clearly cut the "
                       "worst volume's risk by a tenth: keep")
    return replace(keep, kind="keep", recommended_cron=j.cron, split=None, concurrency=None)
