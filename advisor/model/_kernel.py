"""The compiled kernel of :mod:`advisor.model.fastpath`: one volume's schedule, one draw
at a time, for a block of draws.

Every rule is :mod:`advisor.model.fastpath`'s (its docstring lists them); this module
only runs them, as the full simulator orders them. Durations arrive pre-drawn, one
column per draw: job ``j``'s ``k``-th backup of draw ``d`` lasts ``backup[boff[j] + k,
d]``, the ``k``-th deletion to run ``deletion[k, d]``, the ``k``-th restore
``restore[k, d]``. A draw never needs more than it is given: a job runs at most once per
slot, a deletion runs at most once per backup, a restore at most once per poll.

Events at equal times go in the simulator's queue order: fire times first, then poll
times, then the rest by when each was scheduled (``sc``), then by a per-draw count of
schedulings (``sq``). A draw's scalar state lives in two small arrays (``F``, ``I``) and
its per-job and per-deletion state in rows, so the helpers below can change it.

This module runs the events, job runs and backups; deletions, lock checks and DR polls
are :mod:`advisor.model._kernel_deletions`', the arrays' columns
:mod:`advisor.model._kernel_layout`'s, and the run pools' lanes
:mod:`advisor.model._kernel_lanes`'. numba's cache keys :func:`run_block` on this file
alone, though the others are compiled into it: after changing one of them, clear the
cache (``__pycache__/*.nb[ci]``, or ``NUMBA_CACHE_DIR``) so the kernel is compiled again.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from advisor.model._kernel_deletions import (
    alloc_deletion,
    deletion_held,
    earliest_attempt,
    next_poll,
    poll,
    refresh_attempts,
    try_deletion,
)
from advisor.model._kernel_lanes import lanes_span, lay_lanes
from advisor.model._kernel_layout import (
    ACQ,
    B_ACQ,
    B_ID,
    B_OK,
    B_REL,
    BPOS,
    CONFLICTED_RUNS,
    COUNTED,
    COUNTED_RUN,
    CREATE_BLOCKED,
    D_ACQ,
    D_FSEQ,
    D_HOLD,
    DELETE_BLOCKED,
    DJOB,
    DSEQ,
    FAIL,
    HAS_MISSED,
    HAS_RESTORE,
    HIT,
    IDLE,
    INF,
    KEPT,
    LATEST,
    LIMIT,
    MISSED_T,
    N_AWAIT,
    N_COUNTS,
    N_DONE,
    N_PEND,
    N_POLLS,
    N_WAITED,
    NEXT,
    NEXT_ID,
    NROWS,
    OUT_OF_DRAWS,
    PEND_SEQ,
    PEND_T,
    PENDING,
    PENDING_BEHIND,
    POLL_S,
    QUEUED,
    R_ID,
    REL,
    RESTORE_BLOCKED,
    RESTORED,
    RETRY_MAX,
    RETRY_MIN,
    RUN_END,
    RUN_NO,
    RUN_ON,
    RUNNING,
    SCHED,
    SEQ,
    STATE,
    T0,
    T1_ACQ,
    T1_HOLD,
    T_COUNT,
    T_END,
    TTL_S,
    WAIT_MODE,
    WAIT_S,
)

# what the package uses: fastpath's entry points and the columns of their parameters and
# counts, and the lanes of :class:`advisor.model.runpool.RunPool` (from _kernel_lanes)
__all__ = ["CONFLICTED_RUNS", "CREATE_BLOCKED", "DELETE_BLOCKED", "HAS_RESTORE", "N_COUNTS",
           "N_POLLS", "PENDING_BEHIND", "POLL_S", "QUEUED", "RESTORE_BLOCKED", "RETRY_MAX",
           "RETRY_MIN", "T0", "TTL_S", "T_COUNT", "T_END", "WAIT_MODE", "WAIT_S", "lanes_span",
           "lay_lanes", "run_block", "scratch"]


def scratch(n_jobs: int, n_deletions: int) -> tuple[np.ndarray, ...]:
    """The working arrays of :func:`run_block` (which, compiled without numba's
    reference counting, allocates nothing): event rows (poll, one per job, release of
    Pending, attempts, then per job its volume's turn in a run and the run's end),
    per-job rows, deletion rows, the draw's scalars, its counts and an ordering
    buffer."""
    rows, cap = 3 * n_jobs + 3, n_deletions + 1
    return (np.empty(rows), np.empty(rows), np.empty(rows, np.int64),
            np.empty((n_jobs, 5)), np.empty((n_jobs, 11), np.int64),
            np.empty((cap, 4)), np.empty((cap, 5), np.int64),
            np.empty(7), np.empty(15, np.int64), np.empty(N_COUNTS + n_jobs, np.int64),
            np.empty(n_jobs, np.int64))


# The draw loop stays one function: split into helpers (inlined or called), numba's code
# for it ran 2-5% slower (bench/fastpath.py's volume, the kernel's time alone).
@njit(cache=True, nogil=True, _nrt=False)
def run_block(slot_t, slot_j, retain, kept, boff, backup,  # noqa: C901 (split, it ran slower)
              queue, deletion, restore, pf, pi, counts, runs, late, skipped, done, waited,
              ev, sc, sq, jf, ji, df, di, F, I, c, order):  # noqa: E741
    """Score every draw (column) of the pre-drawn durations: fill ``counts`` (draws x
    :data:`N_COUNTS` + jobs: then each job's runs that met a conflict) and ``runs``,
    ``late``, ``skipped`` (draws x jobs). Unless they have no columns, ``done`` gets
    each draw's completion times of the volume's backups, warm-up included, in order,
    and ``waited`` how long each backup created Pending from ``pf[T_COUNT]`` on waited
    (both NaN after the last). Fire times
    ``slot_t`` (sorted; equal times in job order) belong to jobs ``slot_j``. With
    ``pi[QUEUED]``, job ``j``'s ``k``-th run reaches the volume ``queue[0, boff[j] + k,
    d]`` after it starts, lasts at least ``queue[1, boff[j] + k, d]`` (the other
    volumes), and the volume's backup in that run lasts ``backup[boff[j] + k, d]``;
    else the volume is alone in its runs. Each job starts with ``kept[j]`` backups of
    the volume already kept. Only what happens from ``pf[T_COUNT]`` on is counted (a run
    by its slot, a conflict by when it happens; a conflicted run if the run is counted,
    or, for a blocked retention deletion, if the deletion is):
    the time before is a warm-up that brings runs longer than their interval to where
    they would be. The rest is :func:`scratch`. Returns -1, or a draw that ran out of
    pre-drawn durations (the bounds above would be wrong)."""
    n_jobs, n_draws, n_slots = retain.shape[0], backup.shape[1], slot_t.shape[0]
    rel_row = n_jobs + 1
    for d in range(n_draws):
        ev[:] = INF
        sc[:] = -INF
        sq[:] = 0
        jf[:, B_ACQ] = -INF
        jf[:, B_REL] = -INF
        jf[:, MISSED_T] = 0.0
        jf[:, RUN_END] = -INF
        ji[:] = 0
        for j in range(n_jobs):
            ji[j, KEPT] = kept[j]
        F[:] = -INF
        I[:] = 0
        I[LATEST] = I[RESTORED] = I[R_ID] = -1
        c[:] = 0
        done[d, :] = np.nan
        waited[d, :] = np.nan
        si = 0
        while True:
            if si < n_slots:
                limit, inclusive = slot_t[si], False
            else:
                limit, inclusive = pf[T_END], True
            F[LIMIT] = limit
            if pi[WAIT_MODE] and I[N_PEND] > 0:
                # Pending backups start when the last deletion attempt in progress
                # ends, done or failed (as the queue has it)
                ev[rel_row] = F[D_HOLD]
                sc[rel_row], sq[rel_row] = F[D_ACQ], I[D_FSEQ]
            r = _first_event(ev, sc, sq)
            if r >= 0 and (ev[r] <= limit if inclusive else ev[r] < limit):
                start_n, start_t = _event(r, d, ev, sc, sq, jf, ji, df, di, F, I, c,
                                          order, retain, queue, boff, deletion, restore,
                                          pf, pi, runs, late, done, waited)
            elif si < n_slots:
                # the slot: job j fires at t (Forbid while its run is active)
                t, j = slot_t[si], slot_j[si]
                si += 1
                start_n, start_t = 0, t
                if ji[j, RUN_ON]:
                    if ji[j, HAS_MISSED] and jf[j, MISSED_T] >= pf[T_COUNT]:
                        skipped[d, j] += 1
                    jf[j, MISSED_T] = t
                    ji[j, HAS_MISSED] = 1
                elif _start_run(j, d, t, t, -INF, 0, ev, sc, sq, jf, ji, F, I, c, queue,
                                boff, pf, pi, runs, late):
                    order[0] = j
                    start_n = 1
            else:
                break
            for o in range(start_n):
                _start_backup(order[o], d, start_t, ev, sc, sq, jf, ji, df, di, F, I,
                              c, backup, boff, pf, pi, runs)
            if I[OUT_OF_DRAWS]:
                return d
        for i in range(N_COUNTS + n_jobs):
            counts[d, i] = c[i]
    return -1


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _first_event(ev, sc, sq):
    """The row of the earliest event (-1 for none); among equal times, the one
    scheduled first, then the first in the queue's sequence, then the first row."""
    r, m, tie = -1, INF, False
    for i in range(ev.shape[0]):
        if ev[i] < m:
            r, m, tie = i, ev[i], False
        elif r >= 0 and ev[i] == m:
            tie = True
    if tie:
        best_sc = INF
        for i in range(ev.shape[0]):
            if ev[i] == m and sc[i] < best_sc:
                best_sc = sc[i]
        best_sq = np.iinfo(np.int64).max
        for i in range(ev.shape[0]):
            if ev[i] == m and sc[i] == best_sc and sq[i] < best_sq:
                r, best_sq = i, sq[i]
    return r


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _event(r, d, ev, sc, sq, jf, ji, df, di, F, I, c, order, retain, queue, boff,  # noqa: E741
           deletion, restore, pf, pi, runs, late, done, waited):
    """Handle the event of row ``r``. Returns how many jobs (listed in ``order``) start
    a backup, and when."""
    n_jobs = ji.shape[0]
    if r == 0:  # a poll
        poll(d, ev, df, F, I, c, restore, pf, pi)
        return 0, 0.0
    if r == n_jobs + 1:  # the last deletion ended: every Pending backup starts
        return _release_pending(r, d, ev, jf, ji, I, order, pf, waited)
    if r == n_jobs + 2:  # a deletion attempt: a retry, or a failed backup's TTL
        k = earliest_attempt(df, I[NROWS])
        try_deletion(k, d, df[k, NEXT], True, ev, sc, sq, jf, df, di, F, I, c, deletion, pf)
        return 0, 0.0
    t, e_sc, e_sq = ev[r], sc[r], sq[r]
    ev[r] = INF
    if r > 2 * n_jobs + 2:  # job j's run ends after the volume's backup: its catch-up
        j = r - 2 * n_jobs - 3
        ji[j, RUN_ON] = 0
        return _catch_up(j, d, t, e_sc, e_sq, ev, sc, sq, jf, ji, F, I, c, order, queue,
                         boff, pf, pi, runs, late)
    if r > n_jobs + 2:  # job j's run reaches the volume: its Backup is created
        j = r - n_jobs - 3
        if _create(j, t, e_sc, e_sq, ev, jf, ji, F, I, c, pf, pi):
            order[0] = j
            return 1, t
        return 0, 0.0
    return _backup_ended(r - 1, d, t, e_sc, e_sq, ev, sc, sq, jf, ji, df, di, F, I, c,
                         order, retain, queue, boff, deletion, pf, pi, runs, late, done)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _release_pending(r, d, ev, jf, ji, I, order, pf, waited):  # noqa: E741
    """The last deletion attempt in progress ended at ``ev[r]``: every Pending backup
    starts, in the order they went Pending (listed in ``order``); how long each
    waited goes to ``waited``."""
    t = ev[r]
    ev[r] = INF
    I[N_PEND] = 0
    n = 0
    for j in range(ji.shape[0]):
        if ji[j, STATE] == PENDING:
            if jf[j, PEND_T] >= pf[T_COUNT] and I[N_WAITED] < waited.shape[1]:
                waited[d, I[N_WAITED]] = t - jf[j, PEND_T]
                I[N_WAITED] += 1
            k = n
            while k > 0 and ji[order[k - 1], PEND_SEQ] > ji[j, PEND_SEQ]:
                order[k] = order[k - 1]
                k -= 1
            order[k] = j
            n += 1
    return n, t


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _backup_ended(j, d, t, e_sc, e_sq, ev, sc, sq, jf, ji, df, di, F, I, c, order,  # noqa: E741
                  retain, queue, boff, deletion, pf, pi, runs, late, done):
    """Job ``j``'s backup ended at ``t`` (completed, or failed at its check): retention,
    then the end of the run and its catch-up."""
    n_jobs = ji.shape[0]
    ji[j, STATE] = IDLE
    if ji[j, B_OK]:
        if I[N_DONE] < done.shape[1]:  # a recovery point
            done[d, I[N_DONE]] = t
            I[N_DONE] += 1
        I[LATEST] = ji[j, B_ID]
        ji[j, KEPT] += 1
        if ji[j, KEPT] > retain[j]:
            ji[j, KEPT] -= 1
            k = alloc_deletion(df, di, I, t)
            di[k, FAIL] = 0
            di[k, COUNTED] = ji[j, HIT]
            di[k, DJOB] = j
            try_deletion(k, d, t, False, ev, sc, sq, jf, df, di, F, I, c, deletion, pf)
        if pi[HAS_RESTORE]:
            ev[0] = min(ev[0], next_poll(t, pf, pi))
    if t < jf[j, RUN_END]:  # the run goes on with other volumes
        end = 2 * n_jobs + 3 + j
        ev[end], sc[end], sq[end] = jf[j, RUN_END], t, I[SEQ]
        I[SEQ] += 1
        return 0, 0.0
    ji[j, RUN_ON] = 0
    return _catch_up(j, d, t, e_sc, e_sq, ev, sc, sq, jf, ji, F, I, c, order, queue, boff,
                     pf, pi, runs, late)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _catch_up(j, d, t, e_sc, e_sq, ev, sc, sq, jf, ji, F, I, c, order, queue, boff, pf,  # noqa: E741
              pi, runs, late):
    """Job ``j``'s run ended at ``t``: the latest missed slot starts now (late)."""
    if ji[j, HAS_MISSED]:
        ji[j, HAS_MISSED] = 0
        if _start_run(j, d, t, jf[j, MISSED_T], e_sc, e_sq, ev, sc, sq, jf, ji, F, I, c,
                      queue, boff, pf, pi, runs, late):
            order[0] = j
            return 1, t
    return 0, 0.0


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _start_run(j, d, t, slot, e_sc, e_sq, ev, sc, sq, jf, ji, F, I, c, queue, boff, pf,  # noqa: E741
               pi, runs, late):
    """A run of job ``j`` starts at ``t`` for ``slot``, in an event scheduled at
    (``e_sc``, ``e_sq``). Returns whether the volume's backup starts now."""
    ji[j, RUN_ON] = 1
    ji[j, RUN_NO] += 1
    ji[j, COUNTED_RUN] = slot >= pf[T_COUNT]  # (a warm-up run is not counted)
    if ji[j, COUNTED_RUN]:
        runs[d, j] += 1
        if t > slot:
            late[d, j] += 1
    if not pi[QUEUED]:
        return _create(j, t, e_sc, e_sq, ev, jf, ji, F, I, c, pf, pi)
    k = boff[j] + ji[j, RUN_NO] - 1
    jf[j, RUN_END] = t + queue[1, k, d]
    delay = queue[0, k, d]
    if delay <= 0.0:
        return _create(j, t, e_sc, e_sq, ev, jf, ji, F, I, c, pf, pi)
    turn = ji.shape[0] + 3 + j
    ev[turn], sc[turn], sq[turn] = t + delay, t, I[SEQ]
    I[SEQ] += 1
    return False


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _create(j, t, e_sc, e_sq, ev, jf, ji, F, I, c, pf, pi):  # noqa: E741
    """Job ``j``'s run reaches the volume at ``t``, in an event scheduled at (``e_sc``,
    ``e_sq``): its Backup is created. Returns whether it starts now (else it waits
    Pending behind a deletion, >= 1.8)."""
    ji[j, B_ID] = I[NEXT_ID]
    I[NEXT_ID] += 1
    ji[j, HIT] = 0
    if not pi[WAIT_MODE]:
        return True
    # a deletion attempt in progress (one ending at ``t`` that was scheduled, when it
    # started, after this event has not ended yet); a failed one awaiting its retry is
    # in Error and holds nothing back
    hold = F[D_HOLD]
    busy = hold > t or (hold == t and (
        F[D_ACQ] > e_sc or (F[D_ACQ] == e_sc and I[D_FSEQ] > e_sq)))
    if not busy:
        return True
    ji[j, STATE] = PENDING
    ji[j, PEND_SEQ] = I[SEQ]
    jf[j, PEND_T] = t
    I[SEQ] += 1
    ev[1 + j] = INF
    I[N_PEND] += 1
    if t >= pf[T_COUNT]:
        c[PENDING_BEHIND] += 1
    if ji[j, COUNTED_RUN]:
        c[CONFLICTED_RUNS] += 1
        c[N_COUNTS + j] += 1
    ji[j, HIT] = 1
    return False


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _start_backup(j, d, s, ev, sc, sq, jf, ji, df, di, F, I, c, backup, boff, pf, pi,  # noqa: E741
                  runs):
    """Job ``j``'s backup takes lock type 1 at ``s``."""
    wait_s = pf[WAIT_S]
    blocked = deletion_held(s, wait_s, F, df, I[NROWS])
    ji[j, STATE] = RUNNING
    jf[j, B_ACQ] = s
    ji[j, B_OK] = not blocked
    if blocked:
        rel = s + wait_s  # a failed backup ends at its check
        _failed(j, d, rel, ev, sc, sq, ji, df, di, I, c, pf)
    else:
        # alone, the volume draws a duration per backup; in a queue, its run's
        k = ji[j, RUN_NO] - 1 if pi[QUEUED] else ji[j, BPOS]
        if k >= boff[j + 1] - boff[j]:
            I[OUT_OF_DRAWS] = 1
            return
        ji[j, BPOS] = k + 1
        rel = s + max(backup[boff[j] + k, d], wait_s)
        if rel >= F[T1_HOLD]:
            F[T1_HOLD], F[T1_ACQ] = rel, s
    jf[j, B_REL] = rel
    ev[1 + j] = rel
    sc[1 + j] = s  # its end (or failure) was scheduled when it started
    sq[1 + j] = I[SEQ]
    I[SEQ] += 1


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _failed(j, d, now, ev, sc, sq, ji, df, di, I, c, pf):  # noqa: E741
    """A backup that failed on a deletion's lock at its check ``now``: it is deleted at
    the first poll after the failed-backup TTL."""
    if now > pf[T_END]:
        return
    if now >= pf[T_COUNT]:
        c[CREATE_BLOCKED] += 1
    if not ji[j, HIT]:
        if ji[j, COUNTED_RUN]:
            c[CONFLICTED_RUNS] += 1
            c[N_COUNTS + j] += 1
        ji[j, HIT] = 1
    t0, poll_s = pf[T0], pf[POLL_S]
    k = alloc_deletion(df, di, I, now)
    di[k, FAIL], di[k, COUNTED] = 0, 1
    df[k, ACQ], df[k, REL], df[k, SCHED] = -INF, -INF, now
    df[k, NEXT] = t0 + math.ceil((now + pf[TTL_S] - t0) / poll_s) * poll_s
    di[k, DSEQ] = I[SEQ]
    I[SEQ] += 1
    I[N_AWAIT] += 1
    refresh_attempts(ev, sc, sq, df, di, I)
