"""One volume's schedule scored under many duration draws at once.

The model asks thousands of times how often one volume's backups meet the backupstore
lock. :func:`score_volume` answers for ``draws`` independent draws of every duration at
once: it runs the single-volume slice of :mod:`advisor.model.simulate`'s rules as a
discrete-event simulation whose state is a numpy array over the draws. Fire times are the
same in every draw and are taken in step; between them each draw handles its own next
event, all draws together, so the Python loop runs over events, never over draws.

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
  TTL) or, from 1.8, is created Pending while any deletion of the volume is in progress
  or awaiting a retry, and starts when none is;
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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from advisor.longhorn import LATEST, LOCK_ACQUIRE_WAIT_S, behaviour
from advisor.model.fleet import Duration, JobSpec
from advisor.schedules import fire_times
from advisor.schema import utc

__all__ = ["CONFLICT_KINDS", "Estimate", "VolumeScore", "score_volume"]

WEEK_S = 7 * 86400.0
CONFLICT_KINDS = ("delete_blocked", "create_blocked", "pending_behind_deletion",
                  "restore_blocked")
_JOB_KINDS = ("skipped_slots", "late_starts", "runs")
_WAIT = LOCK_ACQUIRE_WAIT_S
_INF = np.inf
_IDLE, _PENDING, _RUNNING = 0, 1, 2


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo mean and its standard error."""

    mean: float
    se: float

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.se:.2g}"


def _estimate(x: np.ndarray) -> Estimate:
    x = np.asarray(x, dtype=float)
    if not len(x):
        return Estimate(math.nan, math.nan)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0
    return Estimate(float(x.mean()), se)


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
        return _estimate(self.counts(kind) * (WEEK_S / self.window_s))

    def p_any_conflict_per_run(self) -> Estimate:
        """Probability that a run meets any lock conflict (its backup fails or waits, or
        its retention deletion is blocked): the mean over draws of each draw's share."""
        runs = self.counts("runs")
        has = runs > 0
        return _estimate(self.conflicted_runs[has] / runs[has])

    def p_any_conflict_per_week(self) -> Estimate:
        """Probability that a week has at least one conflict of any kind. Exact for a
        7-day window; for another window, scaled as if its repetitions were independent
        (``1 - (1 - p) ** (7 d / window)``)."""
        est = _estimate(self.counts("conflicts") > 0)
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


def _sub(idx: np.ndarray, draws: int) -> slice | np.ndarray:
    """Index for draws ``idx`` (sorted, distinct): all of them as a slice, which numpy
    handles several times faster than an index array (it gives views: copy to keep)."""
    return slice(None) if idx.size == draws else idx


def _later(acq: np.ndarray, seq: np.ndarray, sched: np.ndarray, qseq: np.ndarray
           ) -> np.ndarray:
    """Whether events scheduled at (``acq``, ``seq``) come after (``sched``, ``qseq``)."""
    return (acq > sched) | ((acq == sched) & (seq > qseq))


class _Deletions:
    """The deletions of each draw, up to ``rows`` at once (it grows when a draw needs one
    more), a (rows, draws) array per field: the last attempt's lock (``acq``, ``rel``),
    the next attempt (``next``: inf when none is due) and when it was scheduled (``sched``,
    ``seq``), when its end was scheduled (``fseq``), its failures, and whether its run
    already counts as conflicted. A row is free once it awaits nothing and has ended."""

    FIELDS: ClassVar[dict[str, tuple[type, float]]] = {
        "acq": (float, -_INF), "rel": (float, -_INF), "next": (float, _INF),
        "sched": (float, -_INF), "seq": (np.int64, 0), "fseq": (np.int64, 0),
        "fail": (np.int64, 0), "counted": (bool, False)}

    def __init__(self, draws: int):
        self.draws, self.rows = draws, 2
        for name, (dtype, fill) in self.FIELDS.items():
            setattr(self, name, np.full((self.rows, draws), fill, dtype))

    def at(self, k: np.ndarray, idx: np.ndarray) -> tuple[int | None, Any]:
        """Where rows ``k`` of draws ``idx`` are: one row and the draws, when they share
        it (the common case, and fast), else flat indices."""
        if k.size and (k == k[0]).all():
            return int(k[0]), _sub(idx, self.draws)
        return None, k * self.draws + idx

    def get(self, name: str, at: tuple[int | None, Any]) -> np.ndarray:
        row, i = at
        a = getattr(self, name)
        return a[row][i].copy() if row is not None else a.reshape(-1)[i]

    def put(self, name: str, at: tuple[int | None, Any], value: Any) -> None:
        row, i = at
        a = getattr(self, name)
        if row is not None:
            a[row][i] = value
        else:
            a.reshape(-1)[i] = value

    def alloc(self, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The first free row of each draw in ``idx`` at time ``t``."""
        k = np.zeros(idx.size, np.int64)
        todo = np.arange(idx.size)
        for r in range(self.rows):
            i = _sub(idx, self.draws) if todo.size == self.draws else idx[todo]
            taken = np.isfinite(self.next[r][i]) | (self.rel[r][i] >= t[todo])
            k[todo] = r
            todo = todo[taken]
            if not todo.size:
                return k
        k[todo] = self.rows
        for name, (dtype, fill) in self.FIELDS.items():
            a = getattr(self, name)
            setattr(self, name, np.vstack([a, np.full(a.shape, fill, dtype)]))
        self.rows *= 2
        return k


class _Volume:
    """The state of one volume in every draw, and its event handlers. Arguments of the
    handlers: ``idx``, the draws (sorted, distinct), and per-draw arrays beside it."""

    def __init__(self, jobs: Sequence[tuple[JobSpec, Duration]], deletion: Duration,
                 t0: float, t_end: float, version: str, rng: np.random.Generator,
                 draws: int, restore: tuple[float, Duration] | None, poll_s: float,
                 ttl_s: float):
        self.rules, self.rng, self.t0, self.t_end = behaviour(version), rng, t0, t_end
        self.wait = self.rules.backup_meets_deletion == "wait"
        self.backup = [d for _, d in jobs]
        self.retain = [np.inf if j.task == "system-backup" else j.retain for j, _ in jobs]
        self.deletion, self.restore = deletion, restore
        self.poll_s, self.ttl_s = poll_s, ttl_s
        self.n_polls = int((t_end - t0) // poll_s)
        n, d = len(jobs), draws
        self.draws, self.all, self.limit = d, np.arange(d), t0
        zi, zb = np.zeros((n, d), np.int64), np.zeros((n, d), bool)
        # per job: its run, its backup's lock, its retention and its counts
        self.state = np.zeros((n, d), np.int8)
        self.b_acq, self.b_rel = np.full((n, d), -_INF), np.full((n, d), -_INF)
        self.b_ok, self.b_id, self.hit = zb.copy(), zi.copy(), zb.copy()
        self.has_missed, self.missed_t, self.kept = zb.copy(), np.zeros((n, d)), zi.copy()
        self.runs, self.late, self.skipped, self.pend_seq = (zi.copy() for _ in range(4))
        self.count = {k: np.zeros(d, np.int64) for k in (*CONFLICT_KINDS, "conflicted_runs")}
        self.next_id, self.n_pend = np.zeros(d, np.int64), np.zeros(d, np.int64)
        self.latest, self.restored = np.full(d, -1, np.int64), np.full(d, -1, np.int64)
        # the DR volume's restore: one at a time
        self.r_acq, self.r_rel = np.full(d, -_INF), np.full(d, -_INF)
        self.r_ok, self.r_id = np.zeros(d, bool), np.full(d, -1, np.int64)
        self.dels = _Deletions(d)
        # Most lock checks need only the latest release of any lock of a type (the older
        # ones are over) and the start of the lock that holds it; the full lists are read
        # only when that lock is not older than the newcomer.
        self.t1_hold, self.t1_acq = np.full(d, -_INF), np.full(d, -_INF)
        self.d_hold, self.d_acq = np.full(d, -_INF), np.full(d, -_INF)
        self.d_fseq = np.zeros(d, np.int64)
        self.n_await = np.zeros(d, np.int64)  # deletions awaiting an attempt
        # One row of next-event times per source: poll, one per job (completion), release
        # of Pending backups, the earliest deletion attempt. Equal times go in the order
        # the simulator's queue has them: by when each event was scheduled (``sc``), then
        # by a per-draw count of schedulings (``sq``, like the queue's sequence number).
        self.POLL, self.REL, self.ATT = 0, n + 1, n + 2
        self.ev, self.sc = np.full((n + 3, d), _INF), np.full((n + 3, d), -_INF)
        self.sq, self.seq = np.zeros((n + 3, d), np.int64), np.zeros(d, np.int64)
        self.rows = ([self.POLL] if restore else []) + list(range(1, n + 1)) + (
            [self.REL] if self.wait else []) + [self.ATT]

    def _sub(self, idx: np.ndarray) -> slice | np.ndarray:
        return _sub(idx, self.draws)

    # --- the loop --------------------------------------------------------------------

    def advance(self, limit: float, inclusive: bool) -> None:
        """Handle every draw's events before ``limit`` (or at it), one per draw per step.
        A draw with nothing to do in a step has nothing to do later either: later steps
        look at the draws still busy only."""
        rows, live = self.rows, self.all
        self.limit = limit
        while True:
            if self.wait:
                self._update_release(live)
            ev = self.ev if live is self.all else np.take(self.ev, live, axis=1)
            m = ev[rows[0]].copy()
            for r in rows[1:]:
                np.minimum(m, ev[r], out=m)
            act = m <= limit if inclusive else m < limit
            if not act.any():
                return
            free, tie, sels = act.copy(), None, []
            for r in rows:
                eq = ev[r] == m
                dup = eq & act & ~free
                if dup.any():
                    tie = dup if tie is None else tie | dup
                sels.append(eq & free)
                free &= ~eq
            if tie is not None:
                t = np.flatnonzero(tie)
                self._break_ties(m[t], sels, t, live[t])
            for r, sel in zip(rows, sels, strict=True):
                idx = live[np.flatnonzero(sel)]
                if not idx.size:
                    continue
                if r == self.POLL:
                    self._poll(idx)
                elif r == self.REL:
                    self._release(idx)
                elif r == self.ATT:
                    self._attempt(idx)
                else:
                    self._complete(r - 1, idx)
            live = live[act]

    def _break_ties(self, m: np.ndarray, sels: list[np.ndarray], t: np.ndarray,
                    g: np.ndarray) -> None:
        """Among events at the same time ``m`` (draws ``g``, at ``t`` in ``sels``), the
        one scheduled first goes first."""
        rows = self.rows
        at_m = self.ev[rows][:, g] == m
        sched = np.where(at_m, self.sc[rows][:, g], _INF)
        at_m &= sched == sched.min(axis=0)
        first = np.where(at_m, self.sq[rows][:, g], np.iinfo(np.int64).max).argmin(axis=0)
        for i, sel in enumerate(sels):
            sel[t] = first == i

    def _push(self, idx: np.ndarray) -> np.ndarray:
        """Sequence numbers for events scheduled now in draws ``idx``."""
        g = self._sub(idx)
        seq = self.seq[g].copy()
        self.seq[g] += 1
        return seq

    def fire(self, j: int, t: float) -> None:
        """Job ``j``'s slot at ``t`` in every draw (Forbid while its run is active)."""
        active = self.state[j] != _IDLE
        idle = self.all
        if active.any():
            self.skipped[j] += active & self.has_missed[j]
            self.missed_t[j][active] = t
            self.has_missed[j] |= active
            idle = np.flatnonzero(~active)
        times = np.full(idle.size, t)
        self._create(j, idle, times, times, np.full(idle.size, -_INF),
                     np.zeros(idle.size, np.int64))

    # --- locks -------------------------------------------------------------------------

    def _deletion_held(self, idx: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Whether an older deletion lock is held at the 2 s check of a type-1 lock
        written at ``s``."""
        g = self._sub(idx)
        held = self.d_hold[g] > s + _WAIT
        if held.any():
            unsure = held & (self.d_acq[g] >= s)
            if unsure.any():
                c, sc = idx[unsure], s[unsure]
                held[unsure] = ((np.take(self.dels.acq, c, axis=1) < sc)
                                & (np.take(self.dels.rel, c, axis=1) > sc + _WAIT)).any(0)
        return held

    def _type1_held(self, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Whether an older backup or restore lock is held at the 2 s check of a deletion
        lock written at ``t``."""
        g = self._sub(idx)
        held = self.t1_hold[g] > t + _WAIT
        if held.any():
            unsure = held & (self.t1_acq[g] >= t)
            if unsure.any():
                c, tc = idx[unsure], t[unsure]
                h = ((np.take(self.b_acq, c, axis=1) < tc)
                     & (np.take(self.b_rel, c, axis=1) > tc + _WAIT)).any(axis=0)
                held[unsure] = h | ((self.r_acq[c] < tc) & (self.r_rel[c] > tc + _WAIT))
        return held

    def _hold_type1(self, idx: np.ndarray, acq: np.ndarray, rel: np.ndarray) -> None:
        g = self._sub(idx)
        later = rel >= self.t1_hold[g]
        if later.all():
            self.t1_hold[g], self.t1_acq[g] = rel, acq
        else:
            i = idx[later]
            self.t1_hold[i], self.t1_acq[i] = rel[later], acq[later]

    # --- backups ---------------------------------------------------------------------

    def _create(self, j: int, idx: np.ndarray, t: np.ndarray, slot: np.ndarray,
                sched: np.ndarray, seq: np.ndarray) -> None:
        """A run of job ``j`` starts at ``t`` for ``slot``, in an event scheduled at
        (``sched``, ``seq``): its Backup is created."""
        if not idx.size:
            return
        g = self._sub(idx)
        self.runs[j][g] += 1
        self.late[j][g] += t > slot
        self.b_id[j][g] = self.next_id[g]
        self.next_id[g] += 1
        self.hit[j][g] = False
        if self.wait:
            busy = self._deleting(idx, t, sched, seq)
            if busy.any():
                p = idx[busy]
                self.state[j][p] = _PENDING
                self.pend_seq[j][p] = self._push(p)
                self.ev[1 + j][p] = _INF
                self.n_pend[p] += 1
                self.count["pending_behind_deletion"][p] += 1
                self.count["conflicted_runs"][p] += 1
                self.hit[j][p] = True
                idx, t = idx[~busy], t[~busy]
        self._start_backup(j, idx, t)

    def _deleting(self, idx: np.ndarray, t: np.ndarray, sched: np.ndarray,
                  seq: np.ndarray) -> np.ndarray:
        """Whether a deletion is in progress or awaiting a retry at ``t``, seen by an
        event scheduled at (``sched``, ``seq``): a deletion's end at ``t`` that was
        scheduled (when it started) after that event has not happened yet."""
        g = self._sub(idx)
        hold = self.d_hold[g]
        busy = (self.n_await[g] > 0) | (hold > t)
        tie = hold == t
        if tie.any():
            busy |= tie & _later(self.d_acq[g], self.d_fseq[g], sched, seq)
        return busy

    def _start_backup(self, j: int, idx: np.ndarray, s: np.ndarray) -> None:
        if not idx.size:
            return
        g = self._sub(idx)
        blocked = self._deletion_held(idx, s)
        self.state[j][g] = _RUNNING
        self.b_acq[j][g] = s
        self.b_ok[j][g] = ~blocked
        if blocked.any():
            rel, ok = s + _WAIT, ~blocked  # a failed backup ends at its check
            if ok.any():
                dur = self.backup[j].sample(self.rng, int(ok.sum()))
                rel[ok] = s[ok] + np.maximum(dur, _WAIT)
                self._hold_type1(idx[ok], s[ok], rel[ok])
            self._failed(j, idx[blocked], s[blocked] + _WAIT)
        else:
            rel = s + np.maximum(self.backup[j].sample(self.rng, idx.size), _WAIT)
            self._hold_type1(idx, s, rel)
        self.b_rel[j][g] = rel
        self.ev[1 + j][g] = rel
        self.sc[1 + j][g] = s  # its end (or failure) was scheduled when it started
        self.sq[1 + j][g] = self._push(idx)

    def _failed(self, j: int, idx: np.ndarray, now: np.ndarray) -> None:
        """Backups that failed on a deletion's lock at their check ``now``."""
        inside = now <= self.t_end
        idx, now = idx[inside], now[inside]
        self.count["create_blocked"][idx] += 1
        new = idx[~self.hit[j][idx]]
        self.count["conflicted_runs"][new] += 1
        self.hit[j][new] = True
        # the failed-backup TTL: deleted at the first poll after it
        due = self.t0 + np.ceil((now + self.ttl_s - self.t0) / self.poll_s) * self.poll_s
        d = self.dels
        at = d.at(d.alloc(idx, now), idx)
        for name, value in (("fail", 0), ("counted", True), ("acq", -_INF), ("rel", -_INF),
                            ("next", due), ("sched", now), ("seq", self._push(idx))):
            d.put(name, at, value)
        self.n_await[idx] += 1
        self._refresh_attempts(idx)

    def _complete(self, j: int, idx: np.ndarray) -> None:
        """Job ``j``'s backup ends (completed, or failed at its check): retention, then
        the end of the run and its catch-up."""
        g = self._sub(idx)
        t = self.ev[1 + j][g].copy()
        sched, seq = self.sc[1 + j][g].copy(), self.sq[1 + j][g].copy()
        self.ev[1 + j][g] = _INF
        self.state[j][g] = _IDLE
        ok = self.b_ok[j][g].copy()
        done, t_done = (idx, t) if ok.all() else (idx[ok], t[ok])
        gd = self._sub(done)
        self.latest[gd] = self.b_id[j][gd]
        kept = self.kept[j][gd] + 1
        over = kept > self.retain[j]
        self.kept[j][gd] = kept - over
        if over.any():
            di, td = (done, t_done) if over.all() else (done[over], t_done[over])
            self._delete(di, td, self.hit[j][self._sub(di)])
        if self.restore and done.size:
            self._arm_polls(done, t_done)
        catch = self.has_missed[j][g].copy()
        if catch.any():
            ci = idx[catch]
            self.has_missed[j][ci] = False
            self._create(j, ci, t[catch], self.missed_t[j][ci], sched[catch], seq[catch])

    # --- deletions -------------------------------------------------------------------

    def _delete(self, idx: np.ndarray, t: np.ndarray, counted: np.ndarray) -> None:
        """Retention deletions requested at ``t``: the first attempt is at once."""
        d = self.dels
        k = d.alloc(idx, t)
        at = d.at(k, idx)
        d.put("fail", at, 0)
        d.put("counted", at, counted)
        self._try(k, idx, t)

    def _attempt(self, idx: np.ndarray) -> None:
        """A scheduled deletion attempt: a retry, or a failed backup's TTL deletion."""
        k = np.take(self.dels.next, idx, axis=1).argmin(axis=0)
        self._try(k, idx, self.dels.get("next", self.dels.at(k, idx)), skip_ahead=True)

    def _try(self, k: np.ndarray, idx: np.ndarray, t: np.ndarray,
             skip_ahead: bool = False) -> None:
        """Deletion ``k`` of each draw takes lock type 2 at ``t``. With ``skip_ahead``
        (nothing else happens at ``t`` in these draws), a failure also runs through the
        retries that are sure to fail too (see :meth:`_doomed_retries`)."""
        d = self.dels
        blocked = self._type1_held(idx, t)
        at = d.at(k, idx)
        was_waiting = np.isfinite(d.get("next", at))
        d.put("acq", at, t)
        if not blocked.any():
            self._deletion_runs(idx, at, t)
        else:
            ok = ~blocked
            if ok.any():
                self._deletion_runs(idx[ok], d.at(k[ok], idx[ok]), t[ok])
            self._deletion_fails(k[blocked], idx[blocked], t[blocked], skip_ahead)
        self.n_await[idx] += blocked.astype(np.int64) - was_waiting
        self._refresh_attempts(idx)

    def _deletion_runs(self, idx: np.ndarray, at: tuple, t: np.ndarray) -> None:
        """Deletions whose lock holds from ``t`` for a drawn duration."""
        d, g = self.dels, self._sub(idx)
        rel = t + np.maximum(self.deletion.sample(self.rng, idx.size), _WAIT)
        fseq = self._push(idx)
        d.put("rel", at, rel)
        d.put("next", at, _INF)
        d.put("fseq", at, fseq)
        later = rel >= self.d_hold[g]
        if not later.all():
            idx, g, rel, t, fseq = idx[later], idx[later], rel[later], t[later], fseq[later]
        self.d_hold[g], self.d_acq[g], self.d_fseq[g] = rel, t, fseq

    def _deletion_fails(self, k: np.ndarray, idx: np.ndarray, t: np.ndarray,
                        skip_ahead: bool) -> None:
        """Deletions that met an older backup or restore lock at ``t``: retried later."""
        d = self.dels
        at = d.at(k, idx)
        now = t + _WAIT
        fail = d.get("fail", at) + 1
        first = (fail == 1) & (now <= self.t_end)
        t, nxt = t, now + self._retry_wait(fail)
        if skip_ahead:
            t, now, nxt, fail = self._doomed_retries(idx, t, now, nxt, fail)
        for name, value in (("acq", t), ("rel", now), ("next", nxt), ("fail", fail),
                            ("sched", now), ("seq", self._push(idx))):
            d.put(name, at, value)
        self.count["delete_blocked"][idx[first]] += 1
        counted = d.get("counted", at)
        new = first & ~counted
        self.count["conflicted_runs"][idx[new]] += 1
        d.put("counted", at, counted | new)

    def _retry_wait(self, failures: np.ndarray) -> np.ndarray:
        rules = self.rules
        return np.minimum(rules.deletion_retry_min_s * 2.0 ** (failures - 1),
                          rules.deletion_retry_max_s)

    def _doomed_retries(self, idx: np.ndarray, at: np.ndarray,
                        now: np.ndarray, nxt: np.ndarray, fail: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Run a deletion's retries forward while each is sure to fail: before any other
        event of its draw that could take a type-1 lock (a fire, a completion with its
        catch-up, a release of Pending backups, a poll; other deletions take none) and
        while a type-1 lock held now outlasts the retry's check. Returns the last
        attempt's time, its check, the next attempt and the failures so far (the
        arithmetic is the simulator's, step by step)."""
        held = self.t1_hold[idx]
        before = np.minimum.reduce([np.full(idx.size, self.limit),
                                    *(self.ev[r][idx] for r in self.rows if r != self.ATT)])
        go = (nxt < before) & (nxt + _WAIT < held)
        while go.any():
            at = np.where(go, nxt, at)
            now = np.where(go, nxt + _WAIT, now)
            fail = fail + go
            nxt = np.where(go, now + self._retry_wait(fail), nxt)
            go &= (nxt < before) & (nxt + _WAIT < held)
        return at, now, nxt, fail

    def _refresh_attempts(self, idx: np.ndarray) -> None:
        """The earliest deletion attempt due in each draw of ``idx``."""
        g = self._sub(idx)
        some = self.n_await[g] > 0
        if not some.any():
            self.ev[self.ATT][g] = _INF
            return
        self.ev[self.ATT][idx[~some]] = _INF
        c, d = idx[some], self.dels
        at = d.at(np.take(d.next, c, axis=1).argmin(axis=0), c)
        self.ev[self.ATT][c] = d.get("next", at)
        self.sc[self.ATT][c], self.sq[self.ATT][c] = d.get("sched", at), d.get("seq", at)

    def _update_release(self, live: np.ndarray) -> None:
        """When Pending backups start (>= 1.8): when the last deletion in progress ends
        (as the queue has it), if none awaits a retry."""
        p = live[self.n_pend[live] > 0]
        if p.size:
            self.ev[self.REL][p] = np.where(self.n_await[p] > 0, _INF, self.d_hold[p])
            self.sc[self.REL][p], self.sq[self.REL][p] = self.d_acq[p], self.d_fseq[p]

    def _release(self, idx: np.ndarray) -> None:
        """The last deletion ended: every Pending backup starts, in the order they went
        Pending."""
        t = self.ev[self.REL][idx]
        self.ev[self.REL][idx] = _INF
        self.n_pend[idx] = 0
        pending = np.take(self.state, idx, axis=1) == _PENDING
        if len(self.backup) == 1:
            self._start_backup(0, idx, t)
            return
        order = np.where(pending, np.take(self.pend_seq, idx, axis=1),
                         np.iinfo(np.int64).max).argsort(axis=0)
        for rank in range(len(self.backup)):
            for j in range(len(self.backup)):
                go = (order[rank] == j) & pending[j]
                if go.any():
                    self._start_backup(j, idx[go], t[go])

    # --- poll times: DR restores -----------------------------------------------------

    def _next_poll(self, t: np.ndarray) -> np.ndarray:
        """The first poll time strictly after ``t`` (inf past the window)."""
        k = np.floor((t - self.t0) / self.poll_s) + 1
        k = np.where(self.t0 + k * self.poll_s <= t, k + 1, k)
        k = np.where(self.t0 + (k - 1) * self.poll_s > t, k - 1, k)
        return np.where(k <= self.n_polls, self.t0 + k * self.poll_s, _INF)

    def _arm_polls(self, idx: np.ndarray, t: np.ndarray) -> None:
        """After a completion at ``t``, the next poll may have something to restore (a
        poll at ``t`` itself came first)."""
        g = self._sub(idx)
        self.ev[self.POLL][g] = np.minimum(self.ev[self.POLL][g], self._next_poll(t))

    def _poll(self, idx: np.ndarray) -> None:
        """A poll: the DR volume restores the newest completed backup unless it has it or
        is restoring (a restore ending at this very time ends after the poll)."""
        assert self.restore is not None
        p = self.ev[self.POLL][idx]
        rel = self.r_rel[idx]
        busy = rel >= p
        done = ~busy & self.r_ok[idx]
        self.restored[idx[done]] = self.r_id[idx[done]]
        want = ~busy & (self.latest[idx] >= 0) & (self.latest[idx] != self.restored[idx])
        if want.any():
            wi, pw = idx[want], p[want]
            blocked = self._deletion_held(wi, pw)
            end, ok = pw + _WAIT, ~blocked  # a blocked restore ends at its check
            if ok.any():
                dur = self.restore[1].sample(self.rng, int(ok.sum()))
                end[ok] = pw[ok] + np.maximum(dur, _WAIT)
                self._hold_type1(wi[ok], pw[ok], end[ok])
            self.r_acq[wi], self.r_rel[wi], self.r_ok[wi] = pw, end, ok
            self.r_id[wi] = self.latest[wi]
            self.count["restore_blocked"][wi[blocked & (pw + _WAIT <= self.t_end)]] += 1
            rel[want] = end
        # Polls while it restores do nothing; after it, one retries a blocked restore or
        # takes a newer backup, if there is one.
        self.ev[self.POLL][idx] = np.where(busy | want, self._next_poll(rel), _INF)


def _unix(t: str | pd.Timestamp) -> float:
    return utc(t).value / 1e9


def score_volume(jobs: Sequence[tuple[JobSpec, Duration]], deletion: Duration,
                 start: str | pd.Timestamp, end: str | pd.Timestamp, *, draws: int,
                 version: str = LATEST, seed: int = 0, tz: str | None = None,
                 restore: tuple[float, Duration] | None = None,
                 failed_backup_ttl_s: float | None = None) -> VolumeScore:
    """Score one volume's backup jobs over ``start`` - ``end`` (UTC) in ``draws``
    independent draws of every duration.

    ``jobs``: the backup RecurringJobs that cover the volume, each with the volume's
    backup duration distribution in that job (seconds). ``deletion``: its deletion
    duration. ``version``: Longhorn's rules (default the newest). ``seed`` fixes the
    draws. ``tz``: the zone the schedules fire in (default UTC). ``restore``:
    ``(poll_interval_s, restore duration)`` of a DR volume restoring this volume's
    backups; the poll interval also times failed-backup TTL deletions (default 300 s).
    ``failed_backup_ttl_s`` defaults to Longhorn's 1440 min. The volume is taken to be
    alone in each run (no queue behind other volumes).
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, not {draws}")
    names = [j.name for j, _ in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names repeat: {names}")
    for j, _ in jobs:
        if j.task not in ("backup", "backup-force-create", "system-backup"):
            raise ValueError(f"job {j.name!r}: task {j.task!r} makes no backups")
        if j.retain < 1:
            raise ValueError(f"job {j.name!r}: retain must be >= 1, not {j.retain}")
    rules = behaviour(version)
    t0, t_end = _unix(start), _unix(end)
    poll_s = restore[0] if restore else rules.default_poll_interval_s
    ttl_s = rules.failed_backup_ttl_s if failed_backup_ttl_s is None else failed_backup_ttl_s
    vol = _Volume(jobs, deletion, t0, t_end, version, np.random.default_rng(seed), draws,
                  restore, poll_s, ttl_s)
    # Slots in [start, end), as the simulator asks for them; equal times in job order.
    before = pd.Timestamp(t0 - 1, unit="s", tz="UTC")
    stop = pd.Timestamp(t_end, unit="s", tz="UTC")
    slots = sorted((float(s), i) for i, (j, _) in enumerate(jobs)
                   for s in fire_times(j.cron, before, stop, tz).astype(np.int64))
    for t, i in slots:
        vol.advance(t, inclusive=False)
        vol.fire(i, t)
    vol.advance(t_end, inclusive=True)
    c = vol.count
    return VolumeScore(
        delete_blocked=c["delete_blocked"], create_blocked=c["create_blocked"],
        pending_behind_deletion=c["pending_behind_deletion"],
        restore_blocked=c["restore_blocked"],
        skipped_slots=dict(zip(names, vol.skipped, strict=True)),
        late_starts=dict(zip(names, vol.late, strict=True)),
        runs=dict(zip(names, vol.runs, strict=True)),
        conflicted_runs=c["conflicted_runs"], window_s=t_end - t0, version=version)
