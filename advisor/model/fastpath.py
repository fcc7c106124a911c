"""One volume's schedule scored under many duration draws at once.

The model asks thousands of times how often one volume's backups meet the backupstore
lock. :func:`score_volume` answers for ``draws`` independent draws of every duration at
once: it runs the single-volume slice of :mod:`advisor.model.simulate`'s rules as a
discrete-event simulation. Fire times are computed once; the durations of a block of
draws are drawn with numpy; the events of each draw run in a compiled kernel
(:mod:`advisor.model._kernel`, numba, compiled on first use and cached), blocks on
several threads.

The rules are the simulator's (``longhorn-facts.md`` sections 1-3):

- each job fires at its cron times; under Forbid a slot that fires while the job's run is
  active starts nothing, and when the run ends the latest missed slot starts at once
  (late); older missed slots are skipped;
- a backup takes lock type 1 at its start, checked 2 s later, and holds it for its drawn
  duration (at least 2 s); on completion its job deletes its oldest backup beyond
  ``retain``: a deletion takes lock type 2 at once, for a drawn deletion duration;
- a newcomer fails if an older lock of the other type is still held at its 2 s check
  (decided when it writes its lock: every older lock's release time is known then). A
  failed deletion is retried after ``deletion_retry_min_s``, doubling up to
  ``deletion_retry_max_s``. A backup that meets a deletion fails (<= 1.7: its run ends,
  it keeps no retention, and it is deleted at the first poll after the failed-backup
  TTL) or, from 1.8, is created Pending while a deletion attempt of the volume is in
  progress (Deleting; a failed one is in Error until its retry and holds nothing back),
  and starts when none is;
- with ``restore``, a DR volume restores this volume's most recently completed backup
  at a poll (lock type 1) when it has not restored it yet and is not restoring; a
  blocked restore is tried again at the next poll.

Assumption: the volume is alone in each run of its jobs, so a run is this volume's backup:
no queue behind other volumes (``concurrency`` plays no part) and a run lasts exactly as
long as the backup.

Events at equal times are ordered as the simulator's event queue orders them: fire times
first, then poll times, then the rest by when each was scheduled. A conflict is counted
when its 2 s check falls inside the window, as the simulator logs it.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np
import pandas as pd

from advisor.longhorn import (
    BACKUPSTORE_TASKS,
    LATEST,
    LOCK_ACQUIRE_WAIT_S,
    behaviour,
    kept_by_retention,
)
from advisor.model import _kernel as K
from advisor.model.estimate import Estimate, estimate, proportion, zero_if_nan
from advisor.model.fleet import Duration, JobSpec
from advisor.model.recovery import RecoveryDraws, last_before
from advisor.model.runpool import RunPool, shared_z
from advisor.schedules import fire_times
from advisor.schema import utc

__all__ = ["CONFLICT_KINDS", "Estimate", "RunPool", "ScoreOptions", "VolumeScore", "estimate",
           "proportion", "score_volume", "zero_if_nan"]

WEEK_S = 7 * 86400.0
CONFLICT_KINDS = ("delete_blocked", "create_blocked", "pending_behind_deletion",
                  "restore_blocked")
_JOB_KINDS = ("skipped_slots", "late_starts", "runs")
_BLOCK_VALUES = 250_000
"""Pre-drawn durations per block of draws (2 MB): blocks bound the memory, and several
blocks keep both cores busy."""


@dataclass(frozen=True)
class VolumeScore:
    """Counts over the window, one entry per draw (arrays of shape ``(draws,)``).

    ``delete_blocked``: deletions whose attempts met a backup or restore at least once
    (not attempts); ``create_blocked``: backups that failed on a deletion's lock;
    ``pending_behind_deletion``: backups created Pending behind a deletion;
    ``restore_blocked``: DR restore attempts that met a deletion. Per job (job name ->
    array): ``runs`` started, ``late_starts`` (catch-up runs that started after their
    slot), ``skipped_slots`` (slots that never ran). ``conflicted_runs``: runs whose
    backup failed or waited, or whose retention deletion was blocked.
    """

    delete_blocked: np.ndarray
    create_blocked: np.ndarray
    pending_behind_deletion: np.ndarray
    restore_blocked: np.ndarray
    skipped_slots: dict[str, np.ndarray]
    late_starts: dict[str, np.ndarray]
    runs: dict[str, np.ndarray]
    conflicted_runs: np.ndarray
    window_s: float
    version: str
    conflicted_runs_by_job: dict[str, np.ndarray] | None = None
    """Per job, its runs that met a conflict (they add up to ``conflicted_runs``)."""
    recovery: RecoveryDraws | None = None
    """The volume's recovery points in each draw, when asked for (``recovery``)."""

    @property
    def draws(self) -> int:
        """How many draws were scored."""
        return len(self.delete_blocked)

    def counts(self, kind: str) -> np.ndarray:
        """Per-draw counts of ``kind``: a conflict kind, ``conflicts`` (all four), or a
        per-job kind summed over jobs."""
        if kind == "conflicts":
            return sum(getattr(self, k) for k in CONFLICT_KINDS)
        if kind in CONFLICT_KINDS or kind == "conflicted_runs":
            return getattr(self, kind)
        if kind in _JOB_KINDS:
            per_job = getattr(self, kind)
            return sum(per_job.values(), np.zeros(self.draws, dtype=np.int64))
        raise ValueError(f"unknown count {kind!r}: use one of "
                         f"{[*CONFLICT_KINDS, 'conflicts', 'conflicted_runs', *_JOB_KINDS]}")

    def expected_per_week(self, kind: str) -> Estimate:
        """Expected count of ``kind`` (see :meth:`counts`) in a week: the window's mean
        scaled to 7 days."""
        return estimate(self.counts(kind) * (WEEK_S / self.window_s))

    def p_any_conflict_per_run(self, job: str | None = None) -> Estimate:
        """Probability that a run (of ``job``, default any job) meets any lock conflict
        (its backup fails or waits, or its retention deletion is blocked): the mean over
        draws of each draw's share (:func:`proportion`)."""
        if job is None:
            runs, hit = self.counts("runs"), self.conflicted_runs
        else:
            runs, hit = self.runs[job], (self.conflicted_runs_by_job or {})[job]
        return proportion(hit, runs)

    def p_any_conflict_per_week(self) -> Estimate:
        """Probability that a week has at least one conflict of any kind. Exact for a
        7-day window; for another window, scaled as if its repetitions were independent
        (``1 - (1 - p) ** (7 d / window)``)."""
        est = estimate(self.counts("conflicts") > 0)
        a = WEEK_S / self.window_s
        if a == 1.0:
            return est
        q = 1.0 - est.mean
        return Estimate(1.0 - q ** a, a * q ** (a - 1.0) * est.se if q > 0 else 0.0)

    def __repr__(self) -> str:
        return (f"VolumeScore({self.draws} draws, {self.window_s / 86400:g} d, "
                f"Longhorn {self.version}: "
                + ", ".join(f"{k} {self.expected_per_week(k)}/week" for k in CONFLICT_KINDS)
                + f"; P(conflict in a week) {self.p_any_conflict_per_week()})")


@functools.lru_cache(maxsize=256)
def _fires(cron: str, after: pd.Timestamp, until: pd.Timestamp, tz: str | None
           ) -> np.ndarray:
    """A job's fire times in (after, until] as float seconds (cached: every volume of a
    fleet asks for the same few; the array is read-only)."""
    out = fire_times(cron, after, until, tz).astype(np.int64).astype(float)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=256)
def _slots(crons: tuple[str, ...], t0: float, t_end: float, tz: str | None
           ) -> tuple[np.ndarray, ...]:
    """The slots of jobs with these crons in [t0, t_end), as the simulator asks for
    them (equal times in job order): times, job indices, and per job its count and
    offset (a backup per slot of its job). Cached: the volumes of a fleet share a few
    sets of jobs; the arrays are read-only."""
    before = pd.Timestamp(t0 - 1, unit="s", tz="UTC")
    stop = pd.Timestamp(t_end, unit="s", tz="UTC")
    per_job = [_fires(c, before, stop, tz) for c in crons]
    slot_t = np.concatenate(per_job) if per_job else np.zeros(0)
    slot_j = np.concatenate([np.full(len(f), i, np.int64) for i, f in enumerate(per_job)])
    order = np.lexsort((slot_j, slot_t))
    n_backup = np.array([len(f) for f in per_job], np.int64)
    out = (slot_t[order], slot_j[order], n_backup,
           np.concatenate([[0], np.cumsum(n_backup)]).astype(np.int64))
    for a in out:
        a.flags.writeable = False
    return out


def _unix(t: str | pd.Timestamp) -> float:
    return utc(t).value / 1e9


class ScoreOptions(TypedDict, total=False):
    """The optional keyword arguments of :func:`score_volume` (see its docstring)."""

    version: str
    seed: int
    tz: str | None
    restore: tuple[float, Duration] | None
    failed_backup_ttl_s: float | None
    queues: Mapping[str, tuple[RunPool, int]] | None
    kept: Mapping[str, int] | None
    threads: int | None
    warmup_s: float
    recovery: bool


def score_volume(jobs: Sequence[tuple[JobSpec, Duration]], deletion: Duration,
                 start: str | pd.Timestamp, end: str | pd.Timestamp, *, draws: int,
                 **options: Unpack[ScoreOptions]) -> VolumeScore:
    """Score one volume's backup jobs over ``start`` - ``end`` (UTC) in ``draws``
    independent draws of every duration. The keyword arguments after ``draws``
    (:class:`ScoreOptions`) are optional.

    ``jobs``: the backup RecurringJobs that cover the volume, each with the volume's
    backup duration distribution in that job (seconds). ``deletion``: its deletion
    duration. ``version``: Longhorn's rules (default the newest). ``seed`` fixes the
    draws. ``tz``: the zone the schedules fire in (default UTC). ``restore``:
    ``(poll_interval_s, restore duration)`` of a DR volume restoring this volume's
    backups; the poll interval also times failed-backup TTL deletions (default 300 s).
    ``failed_backup_ttl_s`` defaults to Longhorn's 1440 min. ``queues``: for a job
    whose runs cover other volumes too, ``(pool, position)``: the job's
    :class:`RunPool` and this volume's place in it; each run then reaches the volume
    after the volumes before it and lasts until its slowest lane is done, and the
    volume's backup durations in that job come from the pool. A job not in ``queues``
    has the volume alone in its runs. ``kept``: per job, how many Completed backups of
    the volume it already keeps at ``start`` (default none, as for a new volume; an
    existing volume in steady state keeps ``retain``, so every backup's completion
    deletes one). ``warmup_s``: each draw starts this long before ``start`` and counts
    nothing before it, so that runs longer than their interval are under way at
    ``start`` as they would be (from a standing start, every job's first run is on
    time, and two jobs firing at ``start`` always meet); ``kept`` then holds at the
    warm-up's start. ``recovery``: also keep each draw's recovery points
    (:class:`~advisor.model.recovery.RecoveryDraws`, the score's ``recovery``).

    The draws run in blocks on ``threads`` threads (default: one per core, at most 2;
    pass 1 when the caller already uses every core); the result does not depend on
    ``threads``.
    """
    unknown = sorted(set(options) - ScoreOptions.__optional_keys__)
    if unknown:
        raise TypeError(f"score_volume() got an unexpected keyword argument {unknown[0]!r}")
    _check_jobs(jobs, draws, options.get("warmup_s", 0.0))
    version = options.get("version", LATEST)
    kernel = _KernelInputs.build(jobs, start, end, version, options)
    tallies = _Tallies.zeros(draws, len(jobs), (*last_before(
        [(j.cron, functools.partial(_lag, j, d, options.get("queues") or {})) for j, d in jobs],
        kernel.pf[K.T0], options.get("tz")), options.get("seed", 0))
        if options.get("recovery") else None)
    block = max(1, min(draws, _BLOCK_VALUES // max(kernel.n_durations, 1)))
    # Durations are drawn here, block after block (so ``seed`` fixes them), while the
    # compiled kernel, which releases the GIL, scores earlier blocks on the threads.
    blocks = _blocks(kernel, jobs, deletion, options, draws, block)
    threads = options.get("threads") or min(2, len(os.sched_getaffinity(0)))
    _run_blocks(blocks, functools.partial(_run_block, kernel, tallies),
                1 if draws <= block else threads)
    return tallies.score(kernel.names, kernel.window_s, version)


def _check_jobs(jobs: Sequence[tuple[JobSpec, Duration]], draws: int, warmup_s: float
                ) -> None:
    if draws < 1:
        raise ValueError(f"draws must be >= 1, not {draws}")
    names = [j.name for j, _ in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names repeat: {names}")
    for j, _ in jobs:
        if j.task not in BACKUPSTORE_TASKS:
            raise ValueError(f"job {j.name!r}: task {j.task!r} makes no backups")
        if j.retain < 1:
            raise ValueError(f"job {j.name!r}: retain must be >= 1, not {j.retain}")
    if not warmup_s >= 0:
        raise ValueError(f"warmup_s must be >= 0, not {warmup_s}")


@dataclass(frozen=True)
class _KernelInputs:
    """What the kernel is given for one volume, whatever the draws: its jobs' slots
    (times, jobs, per job its count and offset), their retain and kept backups, the
    parameters (``pf``, ``pi``: columns in :mod:`advisor.model._kernel`), and the bounds
    on deletions and restores per draw."""

    names: list[str]
    slot_t: np.ndarray
    slot_j: np.ndarray
    n_backup: np.ndarray
    boff: np.ndarray
    retain: np.ndarray
    kept: np.ndarray
    pf: np.ndarray
    pi: np.ndarray
    n_del: int
    n_restore: int
    window_s: float

    @classmethod
    def build(cls, jobs: Sequence[tuple[JobSpec, Duration]], start: str | pd.Timestamp,
              end: str | pd.Timestamp, version: str, options: ScoreOptions
              ) -> _KernelInputs:
        """The inputs for ``jobs`` over ``start`` - ``end`` under ``version``'s rules
        (``options``: :func:`score_volume`'s)."""
        rules = behaviour(version)
        restore, queues = options.get("restore"), options.get("queues") or {}
        t_count, t_end = _unix(start), _unix(end)
        t0 = t_count - options.get("warmup_s", 0.0)  # draws start here, count from t_count
        poll_s = restore[0] if restore else rules.default_poll_interval_s
        ttl_s = options.get("failed_backup_ttl_s")
        ttl_s = rules.failed_backup_ttl_s if ttl_s is None else ttl_s
        n_polls = int((t_end - t0) // poll_s)
        slot_t, slot_j, n_backup, boff = _slots(tuple(j.cron for j, _ in jobs), t0, t_end,
                                                options.get("tz"))
        pf = np.zeros(8)
        pf[[K.T0, K.T_END, K.POLL_S, K.TTL_S, K.WAIT_S, K.RETRY_MIN, K.RETRY_MAX,
            K.T_COUNT]] = (t0, t_end, poll_s, ttl_s, LOCK_ACQUIRE_WAIT_S,
                           rules.deletion_retry_min_s, rules.deletion_retry_max_s, t_count)
        names = [j.name for j, _ in jobs]
        unknown = set(queues) - set(names)
        if unknown:
            raise ValueError(f"queues for jobs not in jobs: {sorted(unknown)}")
        pi = np.zeros(4, np.int64)
        pi[[K.N_POLLS, K.WAIT_MODE, K.HAS_RESTORE, K.QUEUED]] = (
            n_polls, rules.backup_meets_deletion == "wait", restore is not None, bool(queues))
        kept = options.get("kept") or {}
        return cls(names, slot_t, slot_j, n_backup, boff,
                   np.array([kept_by_retention(j.task, j.retain) for j, _ in jobs]),
                   np.array([min(kept.get(j.name, 0), j.retain) for j, _ in jobs], np.int64),
                   pf, pi, len(slot_t), n_polls if restore else 0, t_end - t_count)

    @property
    def n_backups(self) -> int:
        """Backups per draw, all jobs together (one per slot)."""
        return int(self.boff[-1])

    @property
    def n_durations(self) -> int:
        """Durations drawn per draw."""
        return self.n_backups + self.n_del + self.n_restore


@dataclass(frozen=True)
class _Tallies:
    """What the kernel counts, one row per draw: ``counts`` (the conflict kinds and
    conflicted runs, then per job its conflicted runs) and, per job, ``runs``, ``late``
    starts and ``skipped`` slots."""

    counts: np.ndarray
    runs: np.ndarray
    late: np.ndarray
    skipped: np.ndarray
    recovery: dict[int, RecoveryDraws] | None = None
    """Per block (by its first draw), its recovery points; None: not asked for."""
    prior: tuple[float, Callable[[np.random.Generator, int], np.ndarray] | None, int] = (
        math.nan, None, 0)
    """The last fire before the warm-up (:func:`~.recovery.last_before`), how long after
    it that backup completed (drawn, per draw) and the seed of those draws."""

    @classmethod
    def zeros(cls, draws: int, n_jobs: int, recovery: tuple | None = None) -> _Tallies:
        """Empty tallies; ``recovery``: keep recovery points, with this ``prior``."""
        return cls(np.zeros((draws, K.N_COUNTS + n_jobs), np.int64),
                   *(np.zeros((draws, n_jobs), np.int64) for _ in range(3)),
                   *((None,) if recovery is None else ({}, recovery)))

    def rows(self, lo: int, hi: int) -> tuple[np.ndarray, ...]:
        """The rows of draws ``lo`` to ``hi`` (views the kernel writes into)."""
        return self.counts[lo:hi], self.runs[lo:hi], self.late[lo:hi], self.skipped[lo:hi]

    def score(self, names: list[str], window_s: float, version: str) -> VolumeScore:
        """The counts as a :class:`VolumeScore` of jobs ``names`` over ``window_s``."""
        c = self.counts.T
        return VolumeScore(
            delete_blocked=c[K.DELETE_BLOCKED], create_blocked=c[K.CREATE_BLOCKED],
            pending_behind_deletion=c[K.PENDING_BEHIND],
            restore_blocked=c[K.RESTORE_BLOCKED],
            skipped_slots=dict(zip(names, self.skipped.T, strict=True)),
            late_starts=dict(zip(names, self.late.T, strict=True)),
            runs=dict(zip(names, self.runs.T, strict=True)),
            conflicted_runs=c[K.CONFLICTED_RUNS], window_s=window_s, version=version,
            conflicted_runs_by_job=dict(zip(names, c[K.N_COUNTS:], strict=True)),
            recovery=None if self.recovery is None else RecoveryDraws.concat(
                [self.recovery[lo] for lo in sorted(self.recovery)]))


_Block = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""A block of draws from draw ``lo`` on: ``(lo, backup, queue, deletions, restores)``."""


def _blocks(kernel: _KernelInputs, jobs: Sequence[tuple[JobSpec, Duration]],
            deletion: Duration, options: ScoreOptions, draws: int, block: int
            ) -> Iterator[_Block]:
    """The pre-drawn durations, ``block`` draws at a time, from the generator seeded by
    ``options``' ``seed``, in the order that fixes every draw."""
    rng = np.random.default_rng(options.get("seed", 0))
    queues, restore = options.get("queues") or {}, options.get("restore")
    for lo in range(0, draws, block):
        n = min(block, draws - lo)
        backup = np.empty((kernel.n_backups, n))
        queue = np.zeros((2, kernel.n_backups if queues else 0, n))
        for i, (job, dist) in enumerate(jobs):
            part, k = slice(kernel.boff[i], kernel.boff[i + 1]), int(kernel.n_backup[i])
            if job.name in queues:  # the k-th run: a realisation from the pool
                runs_pool, at = queues[job.name]
                r = rng.integers(len(runs_pool), size=(k, n))
                if runs_pool.strata > 1:  # (of the draw's stratum: its medians' doubt)
                    s = runs_pool.strata
                    r = r - r % s + (np.arange(lo, lo + n) % s)
                    r[r >= len(runs_pool)] -= s
                backup[part] = runs_pool.own[r, at]
                queue[0, part] = runs_pool.start[r, at]
                queue[1, part] = runs_pool.span_for(at)[r]
            else:
                backup[part] = _draw(dist, rng, k, n)
        deletions = _draw(deletion, rng, kernel.n_del, n, shared=shared_z(n, lo))
        restores = (_draw(restore[1], rng, kernel.n_restore, n) if restore
                    else np.zeros((0, n)))
        yield lo, backup, queue, deletions, restores


def _run_block(kernel: _KernelInputs, tallies: _Tallies, lo: int, backup: np.ndarray,
               queue: np.ndarray, deletions: np.ndarray, restores: np.ndarray) -> None:
    """Score one block of draws into ``tallies``' rows from ``lo`` on."""
    n = backup.shape[1]
    cap = kernel.n_backups if tallies.recovery is not None else 0  # one per slot at most
    done, waited = np.empty((n, cap)), np.empty((n, cap))
    bad = K.run_block(kernel.slot_t, kernel.slot_j, kernel.retain, kernel.kept, kernel.boff,
                      backup, queue, deletions, restores, kernel.pf, kernel.pi,
                      *tallies.rows(lo, lo + n), done, waited,
                      *K.scratch(len(kernel.names), kernel.n_del))
    if bad >= 0:
        raise RuntimeError(f"draw {lo + bad} needed more durations than bounded")
    if tallies.recovery is not None:
        pf = kernel.pf
        fire, lag, seed = tallies.prior  # (its own generator: the draws' stay as they are)
        prior = fire + (lag(np.random.default_rng([seed, 7, lo]), n) if lag is not None
                        else np.zeros(n))
        tallies.recovery[lo] = RecoveryDraws.reduce(
            done, waited, prior=(fire, prior), t_count=pf[K.T_COUNT], t_end=pf[K.T_END],
            slot_t=kernel.slot_t)


def _lag(job: JobSpec, dist: Duration, queues: Mapping[str, tuple[RunPool, int]],
         rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` draws of how long after its fire time a run of ``job`` completes the
    volume's backup: its turn in the run (from the pool) and its duration."""
    if job.name not in queues:
        return _draw(dist, rng, 1, n)[0]
    pool, at = queues[job.name]
    r = rng.integers(len(pool), size=n)
    return pool.start[r, at] + pool.own[r, at]


def _run_blocks(blocks: Iterable[_Block], run: Callable[..., None], threads: int) -> None:
    """``run`` each block, on ``threads`` threads; the next blocks are drawn while the
    threads score the earlier ones (the kernel releases the GIL)."""
    if threads == 1:  # one block, or one thread: no pool to feed
        for args in blocks:
            run(*args)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = []
        for args in blocks:
            futures.append(pool.submit(run, *args))
            if len(futures) > 2 * threads:  # bound the blocks drawn ahead
                futures.pop(0).result()
        for f in futures:
            f.result()


def _draw(dist: Duration, rng: np.random.Generator, k: int, n: int,
          shared: np.ndarray | None = None) -> np.ndarray:
    """``k`` durations for each of ``n`` draws, as a (k, n) array: the ``i``-th value
    of a draw is the ``i``-th duration it asks for. A draw's values share one factor
    ``exp(median_sd * Z)`` (the median's uncertainty): ``Z`` drawn for the volume
    alone, or ``shared`` (per draw: its stratum's, :func:`~advisor.model.runpool.
    shared_z`) for a doubt every volume shares."""
    out = np.asarray(dist.sample(rng, k * n), dtype=float).reshape(k, n)
    if dist.median_sd > 0:
        out *= np.exp(dist.median_sd * (rng.standard_normal(n) if shared is None
                                        else shared))
    return out
