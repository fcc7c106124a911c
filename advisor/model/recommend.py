"""Advice on RecurringJob schedules: minimum intervals, start offsets, staggering, patches.

Nothing here changes a cluster: every function returns the cron expression, the
RecurringJob YAML or the ``kubectl`` command that would apply the advice.

Risk is not computed here. :func:`minimum_interval` takes a :data:`Scorer`: a callable
given the whole proposed job set that returns, per volume, a :class:`VolumeOutcome`
(per-run probabilities with their Monte Carlo standard errors). A schedule **meets** a
target when, for every volume considered, ``p + 2·se <= target`` for both the conflict
and the skip probability: the estimate's upper 97.5 % normal bound, so Monte Carlo noise
does not pass a schedule that is only lucky. A scorer that reports 0 with se 0 (no event
in any draw) is taken at its word; it should use enough draws (the "rule of three" bound
of such an estimate is ``3 / draws``).

Schedules are read in UTC (Longhorn sets no ``timeZone``; the controller's zone is
usually UTC): in a zone with daylight saving, hourly and longer ladder steps are evenly
spaced except across the changes.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain

import numpy as np
import pandas as pd

from advisor.cron import EverySchedule, SpecSchedule, parse
from advisor.longhorn import (
    BACKUPSTORE_TASKS,
    DEFAULT_GROUP,
    GROUP_LABEL_PREFIX,
    JOB_LABEL_PREFIX,
    NAMESPACE,
)
from advisor.longhorn.manifests import kubectl_patch, recurring_job_yaml
from advisor.model.fleet import JobSpec
from advisor.schedules import fire_times
from advisor.units import duration as dur
from advisor.units import percent as pct
from advisor.units import percent_pm as pct_pm

__all__ = ["LADDER", "IntervalAdvice", "OffsetAdvice", "Recommendation", "Scorer",
           "StaggerAdvice", "VolumeOutcome", "interval_of", "ladder_cron", "minimum_interval",
           "offsets", "stagger"]


LADDER: tuple[int, ...] = (
    *(m * 60 for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)),
    *(h * 3600 for h in (1, 2, 3, 4, 6, 8, 12)),
    86400, 7 * 86400)
"""Cron-friendly intervals in seconds: each divides an hour, a day or a week, so a cron
expression fires exactly evenly at it."""

_WEEK_MIN = 7 * 1440
_REF = pd.Timestamp("2026-01-04T00:00:00Z")  # a Sunday 00:00: minute 0 of the week circle
_VALUE_BITS = (1 << 63) - 1


@dataclass(frozen=True)
class VolumeOutcome:
    """One volume's risk under a proposed job set, per run of its jobs.

    ``p_conflict_per_run``: probability that a run meets a lock conflict;
    ``p_skip_per_run``: probability that a fire time is skipped (Forbid); each with its
    Monte Carlo standard error. Optional figures explain the numbers, in seconds: the p99
    backup and deletion durations, the p95 wait behind other volumes of the run.
    """

    p_conflict_per_run: float
    p_conflict_per_run_se: float
    p_skip_per_run: float
    p_skip_per_run_se: float = 0.0
    p99_backup_s: float | None = None
    p99_deletion_s: float | None = None
    queue_delay_p95_s: float | None = None

    def __post_init__(self) -> None:
        for p in (self.p_conflict_per_run, self.p_skip_per_run):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"a probability must be in [0, 1], not {p}")
        if self.p_conflict_per_run_se < 0 or self.p_skip_per_run_se < 0:
            raise ValueError("standard errors must be >= 0")

    @property
    def upper(self) -> float:
        """The figure compared with the target: ``max(p + 2·se)`` of conflict and skip."""
        return max(self.p_conflict_per_run + 2 * self.p_conflict_per_run_se,
                   self.p_skip_per_run + 2 * self.p_skip_per_run_se)


Scorer = Callable[[Sequence[JobSpec]], Mapping[str, VolumeOutcome]]
"""Given every proposed job (one or more changed), the outcome of each volume they cover.
A scorer told the target may stop once one volume is over it and leave the rest out: the
proposal breaks the target whatever they do."""


@dataclass(frozen=True)
class Recommendation:
    """One change to one RecurringJob's cron, with why; ``kind`` is ``interval`` or
    ``offset``. Probabilities are the worst volume's per-run conflict probability (None
    when the advice was not scored)."""

    job: str
    kind: str
    current_cron: str
    recommended_cron: str
    p_per_run_now: float | None
    p_per_run_after: float | None
    reason: str
    scored: tuple[tuple[float, float, float], ...] = ()
    """What the search scored: ``(interval_s, p, se)`` of the worst volume's conflict
    per run at each interval tried, shortest first (at the recommended phase)."""
    volume_now: str | None = None
    """The worst volume now: the one whose larger of conflict and skipped slot (by
    ``p + 2 se``, :attr:`VolumeOutcome.upper`) is largest, as ``advisor check`` picks."""
    now: VolumeOutcome | None = None
    """That volume's outcome now (conflict and skipped slot per run, with errors)."""

    @property
    def changed(self) -> bool:
        """Whether the advice changes the cron."""
        return self.recommended_cron != self.current_cron

    def to_dict(self) -> dict:
        """The JSON form of ``advisor recommend -o json``."""
        return {"job": self.job, "kind": self.kind, "current_cron": self.current_cron,
                "recommended_cron": self.recommended_cron, "changed": self.changed,
                "p_per_run_now": self.p_per_run_now, "p_per_run_after": self.p_per_run_after,
                "worst_volume_now": self.volume_now,
                "p_skip_now": None if self.now is None else self.now.p_skip_per_run,
                "reason": self.reason,
                "patch": kubectl_patch(self.job, self.recommended_cron) if self.changed
                else None}

    def __str__(self) -> str:
        change = f"{self.current_cron!r} -> {self.recommended_cron!r}" if self.changed \
            else f"keep {self.current_cron!r}"
        return f"{self.job}: {change}: {self.reason}"


# --- the ladder -------------------------------------------------------------------------


def _cron_at(step_s: float, offset_min: int) -> str:
    """The cron firing every ladder step ``step_s``, ``offset_min`` minutes into each
    period (periods start at midnight UTC; a week's at Sunday 00:00)."""
    k = int(step_s) // 60
    if int(step_s) not in LADDER:
        raise ValueError(f"{step_s} s is not on the ladder {LADDER}")
    o = offset_min % k
    if k < 60:
        return "* * * * *" if k == 1 else f"*/{k} * * * *" if o == 0 else f"{o}-59/{k} * * * *"
    if k < 1440:
        h, hour = k // 60, o // 60
        hours = "*" if h == 1 else f"*/{h}" if hour == 0 else f"{hour}-23/{h}"
        return f"{o % 60} {hours} * * *"
    if k == 1440:
        return f"{o % 60} {o // 60} * * *"
    return f"{o % 60} {o // 60 % 24} * * {o // 1440}"


def _phase_min(cron: str) -> int:
    """Minute of the week of the schedule's earliest weekday, hour and minute values
    (0 for ``@every``)."""
    s = parse(cron)
    if isinstance(s, EverySchedule):
        return 0
    assert isinstance(s, SpecSchedule)

    def low(mask: int) -> int:
        v = mask & _VALUE_BITS
        return (v & -v).bit_length() - 1 if v else 0

    return low(s.dow) * 1440 + low(s.hour) * 60 + low(s.minute)


def ladder_cron(interval_s: float, like: str) -> str:
    """A cron expression firing exactly every ``interval_s`` (a :data:`LADDER` step) in
    UTC, keeping the minute, hour and weekday phase of ``like`` where the step allows:
    ``("7 * * * *", 2 h)`` gives ``"7 */2 * * *"``, ``("30 2 * * *", 7 d)`` gives
    ``"30 2 * * 0"``, ``("5 * * * *", 15 min)`` gives ``"5-59/15 * * * *"``."""
    return _cron_at(interval_s, _phase_min(like))


def _fires_s(cron: str, days: float) -> np.ndarray:
    """Fire times (Unix seconds) in the ``days`` from the reference Sunday, inclusive."""
    end = _REF + pd.Timedelta(days=days)
    return fire_times(cron, _REF - pd.Timedelta(seconds=1), end).astype(np.int64)


def interval_of(cron: str, *, median: bool = False) -> float | None:
    """The interval in seconds between fire times when ``cron`` fires evenly (over 400
    days in UTC, so month ends count), else None; with ``median=True`` an uneven schedule
    gives its median gap instead. None too when it fires fewer than twice in that time."""
    gaps = np.diff(_fires_s(cron, 400))
    if not len(gaps):
        return None
    if (gaps == gaps[0]).all():
        return float(gaps[0])
    return float(np.median(gaps)) if median else None


def _step_index(interval_s: float | None) -> int | None:
    return LADDER.index(int(interval_s)) if interval_s in LADDER else None


# --- wording ----------------------------------------------------------------------------


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


# --- minimum interval -------------------------------------------------------------------


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
    others = [j for j in jobs if j.name != job.name]
    cache: dict[str, tuple[str, VolumeOutcome]] = {}
    calls = 0

    def score(cron: str) -> tuple[str, VolumeOutcome]:
        nonlocal calls
        if cron not in cache:
            calls += 1
            out = scorer([*others, replace(job, cron=cron)])
            names = list(out) if volumes is None else [v for v in volumes if v in out]
            over = any(out[v].upper > target for v in names)
            missing = [] if over or volumes is None else [v for v in volumes if v not in out]
            if missing or not names:  # (left out only once another breaks the target)
                raise ValueError(f"the scorer gave no outcome for volume(s) {missing or 'any'}")
            worst = max(names, key=lambda v: out[v].upper)
            cache[cron] = (worst, out[worst])
        return cache[cron]

    interval = {}  # cron -> seconds, of every cron scored

    def at(i: int) -> str:
        cron = ladder_cron(LADDER[i], job.cron)
        interval.setdefault(cron, float(LADDER[i]))
        return cron

    def meets(i: int) -> bool:
        return score(at(i))[1].upper <= target

    even = interval_of(job.cron)
    current_s = even or interval_of(job.cron, median=True)
    if current_s is None:
        raise ValueError(f"job {job.name!r}: {job.cron!r} fires less than twice in 400 days")
    gap = dur(current_s) + ("" if even else " median gap (uneven schedule)")
    interval[job.cron] = float(current_s)
    vol_now, now = score(job.cron)
    here = _step_index(even)
    if here is not None:  # the ladder's cron for this step fires exactly as the job does
        cache[at(here)] = cache[job.cron]
    why_now = f"{_why(vol_now, now, current_s)} at {job.cron!r} (every {gap})"
    rule = f"target {pct(target)} on p + 2·se"
    cron: str = job.cron
    step: float | None = None
    could: int | None = None
    if now.upper > target:
        # from the next step up; an uneven or off-ladder schedule from the step below it
        lo = here + 1 if here is not None else sum(s <= current_s for s in LADDER) - 1
        lo = max(lo, 0)
        found = _first_true(len(LADDER) - lo, lambda t: meets(lo + t)) \
            if lo < len(LADDER) else None
        if found is None:
            reason = (f"{why_now}; no ladder step up to {dur(LADDER[-1])} meets the {rule}: "
                      "the risk is not in the interval (see offsets and durations)")
        else:
            i = lo + found
            step, cron = float(LADDER[i]), at(i)
            reason = f"{why_now}; every {dur(step)} ({cron!r}): {_why(*score(cron), step)}"
            if i > 0 and at(i - 1) in cache:
                below = cache[at(i - 1)][1].upper
                reason += f"; every {dur(LADDER[i - 1])} breaks it (p + 2·se {pct(below)})"
            reason += f" ({rule})"
    else:
        reason = f"{why_now}: meets the {rule}"
        top = sum(s < current_s for s in LADDER) - 1  # the steps shorter than now
        if top >= 0:  # downwards to the first step that breaks the target
            broke = _first_true(top + 1, lambda t: not meets(top - t))
            could = 0 if broke is None else (top - broke + 1 if broke > 0 else None)
        if could is not None:
            reason += (f"; could run every {dur(LADDER[could])} ({at(could)!r}, "
                       f"p + 2·se {pct(score(at(could))[1].upper)})")
            if allow_shorter:
                step, cron = float(LADDER[could]), at(could)
    vol_after, after = score(cron)
    scored = sorted((interval[c], v, o) for c, (v, o) in cache.items() if c in interval)
    return IntervalAdvice(
        job.name, job.cron, cron, current_s, step, vol_now, now, vol_after, after,
        after.upper <= target, target, None if could is None else float(LADDER[could]),
        None if could is None else at(could), calls, reason,
        tuple(dict((s, (s, v, o)) for s, v, o in scored).values()))


# --- offsets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OffsetAdvice:
    """A job's start within its period so that its busy window meets no other job's on a
    shared volume. ``feasible`` is False when no start avoids them (the cron is kept)."""

    job: str
    current_cron: str
    recommended_cron: str
    window_s: float
    period_s: float | None
    feasible: bool
    shares_with: tuple[str, ...]
    reason: str

    @property
    def recommendation(self) -> Recommendation:
        """The advice as a :class:`Recommendation`."""
        return Recommendation(self.job, "offset", self.current_cron, self.recommended_cron,
                              None, None, self.reason)


def _busy(cron: str, window_min: int) -> np.ndarray:
    """Minutes of the UTC week (from Sunday 00:00) a job's busy windows cover."""
    occ = np.zeros(_WEEK_MIN, bool)
    starts = (_fires_s(cron, 7) - _REF.value // 10**9) // 60
    starts = starts[starts < _WEEK_MIN]
    occ[(starts[:, None] + np.arange(min(window_min, _WEEK_MIN))) % _WEEK_MIN] = True
    return occ


def _longest_free(folded: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest circular run of free minutes; the earliest on ties
    (counted from the first busy minute)."""
    n = len(folded)
    if not folded.any():
        return 0, n
    first = int(np.argmax(folded))
    edges = np.diff(np.concatenate([[0], ~np.roll(folded, -first), [0]]).astype(int))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if not len(starts):
        return 0, 0
    k = int(np.argmax(ends - starts))
    return (int(starts[k]) + first) % n, int(ends[k] - starts[k])


def offsets(jobs: Sequence[JobSpec], busy_windows: Mapping[str, float], *,
            volumes: Mapping[str, Collection[str]] | None = None) -> list[OffsetAdvice]:
    """Start minutes (and hours, days) for jobs that share volumes, so that their busy
    windows (start to p95 end of backup + deletion, ``busy_windows[job]`` seconds,
    rounded up to whole minutes) do not meet anywhere in the week (UTC).

    ``volumes``: job -> the volumes it covers; jobs share volumes transitively (default:
    all jobs share). Jobs that do not take the backup lock are left out. The rule, per
    set of jobs sharing volumes: jobs are placed one by one, most frequent first, then
    longest window, then by name. A job whose current windows meet none placed before it
    keeps its cron. Otherwise it moves to the middle of the longest free stretch of its
    own period (the placed windows folded onto it; the earliest stretch on ties), so the
    slack before and after it is equal; that needs an evenly spaced ladder schedule. A
    job that fits nowhere, or whose window is longer than its interval, is reported
    infeasible with the numbers, and keeps its cron (its windows still count).
    """
    todo = [j for j in jobs if j.task in BACKUPSTORE_TASKS]
    missing = [j.name for j in todo if j.name not in busy_windows]
    if missing:
        raise ValueError(f"no busy window for job(s) {missing}")
    cover = {j.name: set(volumes.get(j.name, ())) if volumes is not None else {""}
             for j in todo}
    groups: list[list[JobSpec]] = []
    for j in todo:  # jobs sharing volumes, transitively
        linked = [g for g in groups if any(cover[j.name] & cover[o.name] for o in g)]
        groups = [g for g in groups if g not in linked] + [[*chain.from_iterable(linked), j]]
    out: dict[str, OffsetAdvice] = {}
    for group in groups:
        period = {j.name: interval_of(j.cron) for j in group}
        group.sort(key=lambda j: (period[j.name] or math.inf, -busy_windows[j.name], j.name))
        occ = np.zeros(_WEEK_MIN, bool)
        placed: list[str] = []
        for j in group:
            w_s = float(busy_windows[j.name])
            w, per = math.ceil(w_s / 60), period[j.name]
            mine = _busy(j.cron, w)
            share = tuple(o.name for o in group if o.name != j.name)
            cron, feasible = j.cron, True
            if per is not None and w_s > per:
                feasible = False
                reason = (f"busy window {dur(w_s)} > its {dur(per)} interval: it meets "
                          "its own next run, no offset helps (see the minimum interval)")
            elif not (occ & mine).any():
                reason = (f"busy window {dur(w_s)} meets none of {', '.join(placed)}"
                          if placed else f"placed first (busy window {dur(w_s)})")
            elif _step_index(per) is None:
                feasible = False
                reason = (f"busy window {dur(w_s)} meets {', '.join(placed)}, and the "
                          "schedule is not evenly spaced on the ladder, so no offset is chosen")
            else:
                p_min = int(per) // 60
                folded = occ.reshape(-1, p_min).any(axis=0)
                start, free = _longest_free(folded)
                if free >= w:
                    cron = _cron_at(per, start + (free - w) // 2)
                    mine = _busy(cron, w)
                    reason = (f"busy window {dur(w_s)} met {', '.join(placed)}; moved to the "
                              f"middle of the longest free stretch ({dur(free * 60)}) of "
                              f"its {dur(per)} period")
                else:
                    feasible = False
                    need = int(folded.sum()) + w
                    reason = (f"busy window {dur(w_s)} meets {', '.join(placed)} at every "
                              f"start: " + (
                                  f"the windows need {dur(need * 60)} of each {dur(per)} "
                                  f"(sum > period)" if need > p_min else
                                  f"the longest free stretch is {dur(free * 60)}")
                              + "; lengthen an interval or stagger")
            occ |= mine
            placed.append(j.name)
            out[j.name] = OffsetAdvice(j.name, j.cron, cron, w_s, per, feasible, share, reason)
    return [out[j.name] for j in todo]


# --- staggering -------------------------------------------------------------------------


@dataclass(frozen=True)
class StaggerAdvice:
    """A job split into parts at offset minutes: the new jobs with their crons, the
    manifests, the commands (label the volumes, then delete the old job) and why."""

    job: str
    parts: tuple[tuple[JobSpec, str], ...]
    manifests: str
    commands: tuple[str, ...]
    spacing_s: float
    at_once_before: int
    at_once_after: int
    reason: str

    def to_dict(self) -> dict:
        """The JSON form."""
        return {"job": self.job, "parts": [{"job": j.name, "cron": c, "groups": list(j.groups)}
                                           for j, c in self.parts],
                "spacing_s": self.spacing_s, "at_once_before": self.at_once_before,
                "at_once_after": self.at_once_after, "commands": list(self.commands),
                "reason": self.reason}


def stagger(job: JobSpec, n_volumes: int, concurrency: int, run_p95_s: float, parts: int,
            *, volumes: Sequence[str] = (), namespace: str = NAMESPACE) -> StaggerAdvice:
    """Split ``job`` (``n_volumes`` volumes) into ``parts`` jobs ``<job>-s1``... with groups
    ``<group>-s1``... (``<job>-sK`` when it has none) and ``concurrency`` each.

    ``run_p95_s``: p95 duration of one part's run. Part k starts (k-1)·⌈p95⌉ minutes after
    the job's start, so at p95 a part is done before the next begins; when ``parts``
    such runs do not fit in the interval, parts start interval/parts apart and overlap
    (the reason says so). ``volumes`` (names, largest first for balance) are dealt
    round-robin to the parts; without them the commands carry a ``<volume>`` placeholder.
    Backups at once are ``min(volumes, concurrency)`` of each running part, summed over
    parts whose p95 runs overlap. Run the label commands, then delete the old job.
    """
    period = interval_of(job.cron)
    if _step_index(period) is None:
        raise ValueError(f"job {job.name!r}: {job.cron!r} does not fire evenly on the ladder")
    if not 2 <= parts <= n_volumes or concurrency < 1 or not run_p95_s > 0:
        raise ValueError("need 2 <= parts <= n_volumes, concurrency >= 1, run_p95_s > 0")
    if volumes and len(volumes) != n_volumes:
        raise ValueError(f"{len(volumes)} volume names for n_volumes={n_volumes}")
    assert period is not None
    p_min, run_min = int(period) // 60, math.ceil(run_p95_s / 60)
    fits = run_min * parts <= p_min
    spacing = run_min if fits else p_min // parts
    sizes = [n_volumes // parts + (k < n_volumes % parts) for k in range(parts)]
    phase, groups = _phase_min(job.cron), job.groups or (job.name,)
    new = tuple((replace(job, name=f"{job.name}-s{k + 1}", concurrency=concurrency,
                         groups=tuple(f"{g}-s{k + 1}" for g in groups)),
                 _cron_at(period, phase + k * spacing)) for k in range(parts))
    load = np.zeros(p_min, int)
    for k, size in enumerate(sizes):
        load[(k * spacing + np.arange(min(run_min, p_min))) % p_min] += min(size, concurrency)
    before, after = min(n_volumes, job.concurrency), int(load.max())
    keep = f" {GROUP_LABEL_PREFIX}{DEFAULT_GROUP}=enabled" if DEFAULT_GROUP in job.groups else ""
    drop = "" if job.groups else f" {JOB_LABEL_PREFIX}{job.name}-"
    names = [shlex.quote(v) for v in volumes] or ["<volume>"] * parts
    commands = [f"kubectl -n {namespace} label volumes.longhorn.io {v} "
                f"{GROUP_LABEL_PREFIX}{new[i % parts][0].groups[0]}=enabled{keep}{drop}"
                for i, v in enumerate(names)]
    commands.append(f"kubectl -n {namespace} delete recurringjobs.longhorn.io "
                    f"{shlex.quote(job.name)}")
    manifests = "---\n".join(recurring_job_yaml(j, c, namespace) for j, c in new)
    reason = (f"{n_volumes} volumes at concurrency {job.concurrency}: up to {before} backups "
              f"at once; {parts} parts of {min(sizes)}-{max(sizes)} volumes at concurrency "
              f"{concurrency}, {dur(spacing * 60)} apart (p95 run {dur(run_p95_s)}): up to "
              f"{after} at once" + ("" if fits else f"; {parts} p95 runs do not fit in "
                                    f"{dur(period)}, so parts overlap"))
    return StaggerAdvice(job.name, new, manifests, tuple(commands), spacing * 60.0, before,
                         after, reason)
