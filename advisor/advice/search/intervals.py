"""Each job's smallest safe interval on the :data:`~advisor.advice.search.ladder.LADDER`.

Risk is not computed here. :func:`minimum_interval` takes a :data:`Scorer`: a callable
given the whole proposed job set that returns, per volume, a
:class:`~advisor.advice.search.outcome.VolumeOutcome`; :func:`recommend_intervals` gives
it the fast path's (:func:`~advisor.advice.search.scorer.fleet_scorer`) for every backup
job of a fleet. A schedule meets a target when every volume's ``p + 2·se`` is under it
(see :mod:`advisor.advice.search.outcome`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from advisor.advice.search.ladder import LADDER, ladder_cron, step_index
from advisor.advice.search.outcome import Recommendation, Scorer, VolumeOutcome
from advisor.longhorn import BACKUPSTORE_TASKS
from advisor.model.fleet import JobSpec
from advisor.schedules import interval_of
from advisor.units import duration as dur
from advisor.units import percent as pct
from advisor.units import percent_pm as pct_pm

__all__ = ["IntervalAdvice", "Phases", "explain", "minimum_interval"]

Phases = Callable[[str], "str | None"]
"""Given a ladder step's cron at the job's own phase, another offset to try at that step
(or None)."""


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
    why_now: str = ""
    """The worst volume now, in words (the start of ``reason``)."""

    @property
    def why_after(self) -> str:
        """The worst volume at the recommended cron, in words."""
        step = self.step_s or self.current_interval_s
        return f"every {dur(step)} ({self.recommended_cron!r}): " + explain(
            self.after_volume, self.after, step)

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

def explain(volume: str, o: VolumeOutcome, interval_s: float) -> str:
    """Why ``volume`` fares as ``o`` says at ``interval_s``: its p99 backup, deletion and
    queue wait against the interval, its per-run risks."""
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
                 volumes: Collection[str] | None, phases: Phases | None = None,
                 max_s: float | None = None) -> None:
        self.job, self.scorer, self.target, self.volumes = job, scorer, target, volumes
        self.max_s = max_s
        self.top = len(LADDER) if max_s is None else sum(s <= max_s for s in LADDER)
        """The steps the search may recommend: ``LADDER[:top]`` (the RPO's cap)."""
        self.others = [j for j in jobs if j.name != job.name]
        self.cache: dict[str, tuple[str, VolumeOutcome]] = {}
        self.interval: dict[str, float] = {}
        self.phases, self.best = phases, {}
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
        """The cron of ladder step ``i`` at its best offset: the job's own phase, or the
        one ``phases`` proposes (farther from the other jobs on its volumes), whichever
        leaves the worst volume the lower risk (the own one on a tie)."""
        if i not in self.best:
            own = ladder_cron(LADDER[i], self.job.cron)
            other = self.phases(own) if self.phases is not None else None
            crons = [own] + ([other] if other is not None and other != own else [])
            for c in crons:
                self.interval.setdefault(c, float(LADDER[i]))
            self.best[i] = own if len(crons) == 1 else min(
                crons, key=lambda c: (self.score(c)[1].upper, crons.index(c)))
        return self.best[i]

    def best_step(self, lo: int) -> int | None:
        """Of the steps from ``lo`` scored, the one whose worst volume has the lowest
        risk, the shortest of those within a tenth of it (a longer interval costs
        recovery points); None when none was scored."""
        done = [i for i in self.best if lo <= i < self.top]
        if not done:
            return None
        low = min(self.score(self.best[i])[1].upper for i in done)
        return min(i for i in done if self.score(self.best[i])[1].upper <= low * 1.1 + 1e-12)

    def meets(self, i: int) -> bool:
        return self.score(self.at(i))[1].upper <= self.target

    def scored(self) -> tuple[tuple[float, str, VolumeOutcome], ...]:
        """Every interval scored, shortest first: at its best offset (one per interval)."""
        done = sorted(((self.interval[c], o.upper, v, o) for c, (v, o) in self.cache.items()
                       if c in self.interval), key=lambda t: (t[0], t[1]))
        best = dict((s, (s, v, o)) for s, _, v, o in reversed(done))
        return tuple(best[s] for s in sorted(best))


def _upwards(search: _Ladder, here: int | None, current_s: float, why_now: str, rule: str,
             now: VolumeOutcome) -> tuple[float | None, str, str]:
    """The smallest step from the current one (at a better offset) up that meets the
    target: (step, cron, reason). When none does, the step whose worst volume fares
    best, if it cuts that volume's risk by a tenth at least; else the cron is kept and
    the reason names the best step found."""
    # from the current step (another offset may do); an uneven or off-ladder schedule
    # from the step below its median gap
    lo = here if here is not None else sum(s <= current_s for s in LADDER) - 1
    lo = max(lo, 0)
    found = _first_true(search.top - lo, lambda t: search.meets(lo + t)) \
        if lo < search.top else None
    if found is None:
        top = LADDER[max(search.top - 1, 0)]
        none = f"{why_now}; no ladder step up to {dur(top)}" + (
            f" (the RPO's limit, {dur(search.max_s)})" if search.top < len(LADDER) else "") + \
            f" meets the {rule}"
        best = search.best_step(lo)
        if best is None:
            return None, search.job.cron, none
        cron = search.at(best)
        figures = (f"every {dur(LADDER[best])} ({cron!r}): "
                   f"{explain(*search.score(cron), LADDER[best])}")
        if search.score(cron)[1].cuts(now):
            return float(LADDER[best]), cron, f"{none}; the best found is {figures}"
        return None, search.job.cron, (f"{none}; the best found, {figures}, does not "
                                       "clearly cut the worst volume's risk by a tenth: "
                                       "keep")
    i = lo + found
    step, cron = float(LADDER[i]), search.at(i)
    reason = f"{why_now}; every {dur(step)} ({cron!r}): {explain(*search.score(cron), step)}"
    if i > 0 and (i - 1) in search.best:
        below = search.score(search.best[i - 1])[1].upper
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
                     allow_shorter: bool = False, phases: Phases | None = None,
                     max_s: float | None = None) -> IntervalAdvice:
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
    ``phases``: given the cron of a step at the job's own phase, another offset to try
    at that step (None: none); each step is then judged at the better of the two, which
    doubles the calls at most. When no step meets the target, the step whose worst
    volume fares best is recommended if it clearly cuts that volume's risk by a tenth
    (:meth:`VolumeOutcome.cuts`). ``max_s``: the longest interval the search may
    recommend (the recovery-point objective; None: the whole ladder).
    """
    if job.task not in BACKUPSTORE_TASKS:
        raise ValueError(f"job {job.name!r}: task {job.task!r} never takes the backup lock")
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be in (0, 1), not {target}")
    even = interval_of(job.cron)
    current_s = even or interval_of(job.cron, median=True)
    if current_s is None:
        raise ValueError(f"job {job.name!r}: {job.cron!r} fires less than twice in 400 days")
    search = _Ladder(job, jobs, scorer, target, volumes, phases, max_s)
    gap = dur(current_s) + ("" if even else " median gap (uneven schedule)")
    search.interval[job.cron] = float(current_s)
    vol_now, now = search.score(job.cron)
    here = step_index(even)
    if here is not None:  # the ladder's cron for this step fires exactly as the job does
        own = ladder_cron(LADDER[here], job.cron)
        search.cache.setdefault(own, search.cache[job.cron])
    why_now = f"{explain(vol_now, now, current_s)} at {job.cron!r} (every {gap})"
    rule = f"target {pct(target)} on p + 2·se"
    could: int | None = None
    if now.upper > target:
        step, cron, reason = _upwards(search, here, current_s, why_now, rule, now)
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
        None if could is None else search.at(could), search.calls, reason, search.scored(),
        why_now)
