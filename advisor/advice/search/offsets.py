"""Where in its period each job starts (:func:`offsets`), and a job split into parts
that start apart (:func:`stagger`).

Nothing here changes a cluster: the advice is the cron expression, the RecurringJob YAML
or the ``kubectl`` command that would apply it.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain

import numpy as np

from advisor.advice.search.ladder import REF, WEEK_MIN, cron_at, fires_s, phase_min, step_index
from advisor.advice.search.outcome import Recommendation
from advisor.longhorn import (
    BACKUPSTORE_TASKS,
    DEFAULT_GROUP,
    GROUP_LABEL_PREFIX,
    JOB_LABEL_PREFIX,
    NAMESPACE,
)
from advisor.longhorn.manifests import recurring_job_yaml
from advisor.model.fleet import JobSpec
from advisor.schedules import interval_of
from advisor.units import duration as dur

__all__ = ["OffsetAdvice", "StaggerAdvice", "offsets", "stagger"]


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
    occ = np.zeros(WEEK_MIN, bool)
    starts = (fires_s(cron, 7) - REF.value // 10**9) // 60
    starts = starts[starts < WEEK_MIN]
    occ[(starts[:, None] + np.arange(min(window_min, WEEK_MIN))) % WEEK_MIN] = True
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
        occ = np.zeros(WEEK_MIN, bool)
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
            elif step_index(per) is None:
                feasible = False
                reason = (f"busy window {dur(w_s)} meets {', '.join(placed)}, and the "
                          "schedule is not evenly spaced on the ladder, so no offset is chosen")
            else:
                p_min = int(per) // 60
                folded = occ.reshape(-1, p_min).any(axis=0)
                start, free = _longest_free(folded)
                if free >= w:
                    cron = cron_at(per, start + (free - w) // 2)
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
    if step_index(period) is None:
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
    phase, groups = phase_min(job.cron), job.groups or (job.name,)
    new = tuple((replace(job, name=f"{job.name}-s{k + 1}", concurrency=concurrency,
                         groups=tuple(f"{g}-s{k + 1}" for g in groups)),
                 cron_at(period, phase + k * spacing)) for k in range(parts))
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
