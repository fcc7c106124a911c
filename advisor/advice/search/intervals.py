"""Each job's smallest safe interval on the :data:`~advisor.advice.search.ladder.LADDER`.

Risk is not computed here. :func:`minimum_interval` takes a :data:`Scorer`: a callable
given the whole proposed job set that returns, per volume, a
:class:`~advisor.advice.search.outcome.VolumeOutcome`; :func:`recommend_intervals` gives
it the fast path's (:func:`~advisor.advice.search.scorer.fleet_scorer`) for every backup
job of a fleet. A schedule meets a target when every volume's ``p + 2·se`` is under it
(see :mod:`advisor.advice.search.outcome`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from advisor.advice.search.ladder import LADDER, ladder_cron, step_index
from advisor.advice.search.outcome import Recommendation, Scorer, VolumeOutcome
from advisor.advice.search.scorer import fleet_scorer
from advisor.advice.settings import Settings
from advisor.longhorn import BACKUPSTORE_TASKS
from advisor.model.fleet import Fleet, JobSpec
from advisor.model.risk import RiskAssessment, Waits, learn_waits, weeks_to_run
from advisor.model.simulate import run_members
from advisor.schedules import fire_times, interval_of
from advisor.units import duration as dur
from advisor.units import percent as pct
from advisor.units import percent_pm as pct_pm

__all__ = ["IntervalAdvice", "minimum_interval", "recommend_intervals"]


@dataclass(frozen=True)
class IntervalAdvice:
    """The smallest ladder interval that keeps a job's volumes under the target.

    ``now`` / ``after``: the worst volume's outcome (largest ``p + 2·se``) at the current
    and the recommended cron. ``could_run_every_s`` / ``could_run_cron``: the shortest
    ladder step that also meets the target when the current cron already does (reported,
    recommended only with ``allow_shorter``). ``step_s`` is None when the cron is kept.
    """

    job: str
    current_cron: str
    recommended_cron: str
    current_interval_s: float
    step_s: float | None
    now_volume: str
    now: VolumeOutcome
    after_volume: str
    after: VolumeOutcome
    meets_target: bool
    target: float
    could_run_every_s: float | None
    could_run_cron: str | None
    scorer_calls: int
    reason: str
    scored: tuple[tuple[float, str, VolumeOutcome], ...] = ()
    """Every interval scored (``interval_s``, its worst volume, that volume's outcome),
    shortest first."""

    @property
    def recommendation(self) -> Recommendation:
        """The advice as a :class:`Recommendation`."""
        return Recommendation(self.job, "interval", self.current_cron, self.recommended_cron,
                              self.now.p_conflict_per_run, self.after.p_conflict_per_run,
                              self.reason, tuple(
                                  (s, o.p_conflict_per_run, o.p_conflict_per_run_se)
                                  for s, _, o in self.scored), self.now_volume, self.now)


def _first_true(n: int, pred: Callable[[int], bool]) -> int | None:
    """The smallest k < n with ``pred(k)`` for a monotone pred (False... True): probes
    0, 1, 3, 7, ... then bisects, at most 2·ceil(log2 n) probes; k - 1 is always probed."""
    lo, k = -1, 0
    while not pred(k):
        lo = k
        if k == n - 1:
            return None
        k = min(n - 1, 2 * k + 1)
    while k - lo > 1:
        m = (lo + k) // 2
        if pred(m):
            k = m
        else:
            lo = m
    return k

def _why(volume: str, o: VolumeOutcome, interval_s: float) -> str:
    text = ""
    if o.p99_backup_s is not None:
        terms = [f"p99 backup {dur(o.p99_backup_s)}"]
        terms += [f"deletion {dur(o.p99_deletion_s)}"] if o.p99_deletion_s is not None else []
        terms += ([f"queue p95 {dur(o.queue_delay_p95_s)}"]
                  if o.queue_delay_p95_s is not None else [])
        total = o.p99_backup_s + (o.p99_deletion_s or 0) + (o.queue_delay_p95_s or 0)
        text = " + ".join(terms) + f" {'>' if total > interval_s else '<='} " \
            f"{dur(interval_s)} interval; "
    return (text + f"P(conflict per run) {pct_pm(o.p_conflict_per_run, o.p_conflict_per_run_se)}"
            f", P(skipped slot) {pct(o.p_skip_per_run)} "
            f"on volume {volume}")


class _Ladder:
    """One job's search: each cron scored once, with its worst volume and its outcome
    (``cache``), and the interval of each cron scored (``interval``)."""

    def __init__(self, job: JobSpec, jobs: Sequence[JobSpec], scorer: Scorer, target: float,
                 volumes: Collection[str] | None) -> None:
        self.job, self.scorer, self.target, self.volumes = job, scorer, target, volumes
        self.others = [j for j in jobs if j.name != job.name]
        self.cache: dict[str, tuple[str, VolumeOutcome]] = {}
        self.interval: dict[str, float] = {}
        self.calls = 0

    def score(self, cron: str) -> tuple[str, VolumeOutcome]:
        """The worst volume at ``cron`` and its outcome (scored once)."""
        if cron not in self.cache:
            self.calls += 1
            out = self.scorer([*self.others, replace(self.job, cron=cron)])
            volumes = self.volumes
            names = list(out) if volumes is None else [v for v in volumes if v in out]
            over = any(out[v].upper > self.target for v in names)
            missing = [] if over or volumes is None else [v for v in volumes if v not in out]
            if missing or not names:  # (left out only once another breaks the target)
                raise ValueError(f"the scorer gave no outcome for volume(s) {missing or 'any'}")
            worst = max(names, key=lambda v: out[v].upper)
            self.cache[cron] = (worst, out[worst])
        return self.cache[cron]

    def at(self, i: int) -> str:
        """The cron of ladder step ``i`` at the job's phase."""
        cron = ladder_cron(LADDER[i], self.job.cron)
        self.interval.setdefault(cron, float(LADDER[i]))
        return cron

    def meets(self, i: int) -> bool:
        return self.score(self.at(i))[1].upper <= self.target

    def scored(self) -> tuple[tuple[float, str, VolumeOutcome], ...]:
        """Every interval scored, shortest first (one cron per interval)."""
        done = sorted((self.interval[c], v, o) for c, (v, o) in self.cache.items()
                      if c in self.interval)
        return tuple(dict((s, (s, v, o)) for s, v, o in done).values())


def _upwards(search: _Ladder, here: int | None, current_s: float, why_now: str, rule: str
             ) -> tuple[float | None, str, str]:
    """The smallest step above the current cron that meets the target: (step, cron,
    reason); the cron is kept when none does."""
    # from the next step up; an uneven or off-ladder schedule from the step below it
    lo = here + 1 if here is not None else sum(s <= current_s for s in LADDER) - 1
    lo = max(lo, 0)
    found = _first_true(len(LADDER) - lo, lambda t: search.meets(lo + t)) \
        if lo < len(LADDER) else None
    if found is None:
        return None, search.job.cron, (
            f"{why_now}; no ladder step up to {dur(LADDER[-1])} meets the {rule}: "
            "the risk is not in the interval (see offsets and durations)")
    i = lo + found
    step, cron = float(LADDER[i]), search.at(i)
    reason = f"{why_now}; every {dur(step)} ({cron!r}): {_why(*search.score(cron), step)}"
    if i > 0 and search.at(i - 1) in search.cache:
        below = search.cache[search.at(i - 1)][1].upper
        reason += f"; every {dur(LADDER[i - 1])} breaks it (p + 2·se {pct(below)})"
    return step, cron, reason + f" ({rule})"


def _downwards(search: _Ladder, current_s: float) -> int | None:
    """The shortest ladder step below the current cron that still meets the target (the
    steps below are searched down to the first that breaks it); None when none does."""
    top = sum(s < current_s for s in LADDER) - 1  # the steps shorter than now
    if top < 0:
        return None
    broke = _first_true(top + 1, lambda t: not search.meets(top - t))
    return 0 if broke is None else (top - broke + 1 if broke > 0 else None)


def minimum_interval(job: JobSpec, jobs: Sequence[JobSpec], scorer: Scorer,
                     target: float = 0.01, *, volumes: Collection[str] | None = None,
                     allow_shorter: bool = False) -> IntervalAdvice:
    """The smallest :data:`LADDER` interval for ``job`` that keeps every volume under
    ``target`` (``p + 2·se <= target`` for both conflict and skip), as a cron keeping the
    job's phase (:func:`ladder_cron`).

    ``jobs``: every job of the cluster (``job`` replaces the one of its name, or is
    added). ``volumes``: the volumes ``job`` covers, whose outcomes decide (default every
    volume the scorer returns; pass them when other jobs cover other volumes). When the
    current cron breaks the target, the ladder above it is searched (gallop, then bisect;
    risk is assumed to fall as the interval grows; an uneven or off-ladder cron is
    searched from the step at or below its median gap), so the step one shorter than the
    answer was scored and broke the target (unless the answer is where the search began
    for such a cron). When it meets the target, the steps below are
    searched the same way and the shortest is reported, recommended only with
    ``allow_shorter``. At most ``1 + 2·ceil(log2 len(LADDER))`` (11) scorer calls.
    """
    if job.task not in BACKUPSTORE_TASKS:
        raise ValueError(f"job {job.name!r}: task {job.task!r} never takes the backup lock")
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be in (0, 1), not {target}")
    even = interval_of(job.cron)
    current_s = even or interval_of(job.cron, median=True)
    if current_s is None:
        raise ValueError(f"job {job.name!r}: {job.cron!r} fires less than twice in 400 days")
    search = _Ladder(job, jobs, scorer, target, volumes)
    gap = dur(current_s) + ("" if even else " median gap (uneven schedule)")
    search.interval[job.cron] = float(current_s)
    vol_now, now = search.score(job.cron)
    here = step_index(even)
    if here is not None:  # the ladder's cron for this step fires exactly as the job does
        search.cache[search.at(here)] = search.cache[job.cron]
    why_now = f"{_why(vol_now, now, current_s)} at {job.cron!r} (every {gap})"
    rule = f"target {pct(target)} on p + 2·se"
    could: int | None = None
    if now.upper > target:
        step, cron, reason = _upwards(search, here, current_s, why_now, rule)
    else:
        step, cron, reason = None, job.cron, f"{why_now}: meets the {rule}"
        could = _downwards(search, current_s)
        if could is not None:
            reason += (f"; could run every {dur(LADDER[could])} ({search.at(could)!r}, "
                       f"p + 2·se {pct(search.score(search.at(could))[1].upper)})")
            if allow_shorter:
                step, cron = float(LADDER[could]), search.at(could)
    vol_after, after = search.score(cron)
    return IntervalAdvice(
        job.name, job.cron, cron, current_s, step, vol_now, now, vol_after, after,
        after.upper <= target, target, None if could is None else float(LADDER[could]),
        None if could is None else search.at(could), search.calls, reason, search.scored())


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


def recommend_intervals(fleet: Fleet, settings: Settings | None = None, *,
                        start: str | pd.Timestamp | None = None,
                        jobs: Iterable[str] | None = None, waits: Waits | None = None,
                        current: RiskAssessment | None = None) -> list[Recommendation]:
    """Per backupstore job of ``fleet`` (or of ``jobs``), a :class:`Recommendation`: the
    smallest ladder interval that keeps every volume it covers under the settings'
    target per run (:func:`minimum_interval`, scored with the fast path for the job's
    own runs, over the week from ``start``). When no interval does at the job's current
    phase, the search is repeated with the job moved to the minute (or hour) farthest
    from the other jobs that share its volumes, since jobs firing together meet at every
    interval. ``waits``: as :func:`~advisor.model.risk.assess_fleet`'s; ``current``: the
    fleet's :func:`~advisor.model.risk.assess_fleet` with those waits (its figures are
    the starting point of every job's search)."""
    s = settings or Settings()
    members = run_members(fleet)
    wanted = set(jobs) if jobs is not None else None
    if waits is None:  # per run, so one week of the current schedule tells them
        waits = learn_waits(fleet, start=start, version=s.version, seed=s.seed)
    return [_job_advice(fleet, j, members, s, start=start, waits=waits, current=current)
            for j in fleet.jobs
            if members.get(j.name) and (wanted is None or j.name in wanted)]


def _job_advice(fleet: Fleet, j: JobSpec, members: dict[str, list[str]], s: Settings, *,
                start: str | pd.Timestamp | None, waits: Waits,
                current: RiskAssessment | None) -> Recommendation:
    """One job's :class:`Recommendation` (see :func:`recommend_intervals`)."""
    vols = set(members[j.name])
    scorer = fleet_scorer(fleet, s, start=start, weeks=weeks_to_run(j), focus=j.name,
                          waits=waits, target=s.target, current=current)
    advice = minimum_interval(j, fleet.jobs, scorer, s.target, volumes=members[j.name])
    sharing = [o for o in fleet.jobs if o.name != j.name and o.name in members
               and vols & set(members[o.name])]
    moved = _apart(j, sharing) if not advice.meets_target else None
    if moved is None:
        return advice.recommendation
    shifted = replace(j, cron=moved)
    jobs2 = tuple(shifted if o.name == j.name else o for o in fleet.jobs)
    alt = minimum_interval(shifted, jobs2, fleet_scorer(
        replace(fleet, jobs=jobs2), s, start=start, weeks=weeks_to_run(j), focus=j.name,
        waits=waits, target=s.target), s.target, volumes=members[j.name])
    if not (alt.meets_target
            or alt.after.p_conflict_per_run < advice.after.p_conflict_per_run):
        return advice.recommendation
    names = ", ".join(o.name for o in sharing)
    return Recommendation(
        j.name, "interval+offset", j.cron, alt.recommended_cron,
        advice.now.p_conflict_per_run, alt.after.p_conflict_per_run,
        f"moved away from the fire times of {names} (which share its volumes) to "
        f"{moved!r}; then {alt.reason}", alt.recommendation.scored, advice.now_volume,
        advice.now)
