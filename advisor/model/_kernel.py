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
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

INF = math.inf
IDLE, PENDING, RUNNING = 0, 1, 2

# per-draw counts (columns of ``counts``; then, per job, the runs that met a conflict)
DELETE_BLOCKED, CREATE_BLOCKED, PENDING_BEHIND, RESTORE_BLOCKED, CONFLICTED_RUNS = range(5)
N_COUNTS = 5
# parameters: floats and integers
T0, T_END, POLL_S, TTL_S, WAIT_S, RETRY_MIN, RETRY_MAX, T_COUNT = range(8)
N_POLLS, WAIT_MODE, HAS_RESTORE, QUEUED = range(4)
# a draw's scalar state: floats and integers
T1_HOLD, T1_ACQ, D_HOLD, D_ACQ, R_ACQ, R_REL, LIMIT = range(7)
(SEQ, NEXT_ID, N_PEND, LATEST, RESTORED, R_OK, R_ID, D_FSEQ, N_AWAIT, NROWS, DPOS, RPOS,
 OUT_OF_DRAWS) = range(13)
# per job: floats and integers
B_ACQ, B_REL, MISSED_T, RUN_END = range(4)
STATE, B_OK, B_ID, HIT, HAS_MISSED, KEPT, PEND_SEQ, BPOS, RUN_ON, RUN_NO, COUNTED_RUN = range(11)
# per deletion row: floats and integers
ACQ, REL, NEXT, SCHED = range(4)
DSEQ, FSEQ, FAIL, COUNTED, DJOB = range(5)


def scratch(n_jobs: int, n_deletions: int) -> tuple[np.ndarray, ...]:
    """The working arrays of :func:`run_block` (which, compiled without numba's
    reference counting, allocates nothing): event rows (poll, one per job, release of
    Pending, attempts, then per job its volume's turn in a run and the run's end),
    per-job rows, deletion rows, the draw's scalars, its counts and an ordering
    buffer."""
    rows, cap = 3 * n_jobs + 3, n_deletions + 1
    return (np.empty(rows), np.empty(rows), np.empty(rows, np.int64),
            np.empty((n_jobs, 4)), np.empty((n_jobs, 11), np.int64),
            np.empty((cap, 4)), np.empty((cap, 5), np.int64),
            np.empty(7), np.empty(13, np.int64), np.empty(N_COUNTS + n_jobs, np.int64),
            np.empty(n_jobs, np.int64))


@njit(cache=True, nogil=True, _nrt=False)
def run_block(slot_t, slot_j, retain, kept, boff, backup, queue, deletion, restore, pf, pi,
              counts, runs, late, skipped, ev, sc, sq, jf, ji, df, di, F, I, c, order):  # noqa: E741
    """Score every draw (column) of the pre-drawn durations: fill ``counts`` (draws x
    :data:`N_COUNTS` + jobs: then each job's runs that met a conflict) and ``runs``,
    ``late``, ``skipped`` (draws x jobs). Fire times
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
                                          pf, pi, runs, late)
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
           deletion, restore, pf, pi, runs, late):
    """Handle the event of row ``r``. Returns how many jobs (listed in ``order``) start
    a backup, and when."""
    n_jobs = ji.shape[0]
    if r == 0:  # a poll
        _poll(d, ev, df, F, I, c, restore, pf, pi)
        return 0, 0.0
    if r == n_jobs + 1:  # the last deletion ended: every Pending backup starts
        t = ev[r]
        ev[r] = INF
        I[N_PEND] = 0
        n = 0
        for j in range(n_jobs):  # in the order they went Pending
            if ji[j, STATE] == PENDING:
                k = n
                while k > 0 and ji[order[k - 1], PEND_SEQ] > ji[j, PEND_SEQ]:
                    order[k] = order[k - 1]
                    k -= 1
                order[k] = j
                n += 1
        return n, t
    if r == n_jobs + 2:  # a deletion attempt: a retry, or a failed backup's TTL
        k = _earliest_attempt(df, I[NROWS])
        _try(k, d, df[k, NEXT], True, ev, sc, sq, jf, df, di, F, I, c, deletion, pf)
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
        if _create(j, t, e_sc, e_sq, ev, ji, F, I, c, pf, pi):
            order[0] = j
            return 1, t
        return 0, 0.0
    # job j's backup ends (completed, or failed at its check): retention, then the end
    # of the run and its catch-up
    j = r - 1
    ji[j, STATE] = IDLE
    if ji[j, B_OK]:
        I[LATEST] = ji[j, B_ID]
        ji[j, KEPT] += 1
        if ji[j, KEPT] > retain[j]:
            ji[j, KEPT] -= 1
            k = _alloc(df, di, I, t)
            di[k, FAIL] = 0
            di[k, COUNTED] = ji[j, HIT]
            di[k, DJOB] = j
            _try(k, d, t, False, ev, sc, sq, jf, df, di, F, I, c, deletion, pf)
        if pi[HAS_RESTORE]:
            ev[0] = min(ev[0], _next_poll(t, pf, pi))
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
        return _create(j, t, e_sc, e_sq, ev, ji, F, I, c, pf, pi)
    k = boff[j] + ji[j, RUN_NO] - 1
    jf[j, RUN_END] = t + queue[1, k, d]
    delay = queue[0, k, d]
    if delay <= 0.0:
        return _create(j, t, e_sc, e_sq, ev, ji, F, I, c, pf, pi)
    turn = ji.shape[0] + 3 + j
    ev[turn], sc[turn], sq[turn] = t + delay, t, I[SEQ]
    I[SEQ] += 1
    return False


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _create(j, t, e_sc, e_sq, ev, ji, F, I, c, pf, pi):  # noqa: E741
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
    blocked = _deletion_held(s, wait_s, F, df, I[NROWS])
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
    k = _alloc(df, di, I, now)
    di[k, FAIL], di[k, COUNTED] = 0, 1
    df[k, ACQ], df[k, REL], df[k, SCHED] = -INF, -INF, now
    df[k, NEXT] = t0 + math.ceil((now + pf[TTL_S] - t0) / poll_s) * poll_s
    di[k, DSEQ] = I[SEQ]
    I[SEQ] += 1
    I[N_AWAIT] += 1
    _refresh_attempts(ev, sc, sq, df, di, I)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _try(k, d, t, skip_ahead, ev, sc, sq, jf, df, di, F, I, c, deletion, pf):  # noqa: E741
    """Deletion row ``k`` takes lock type 2 at ``t``. With ``skip_ahead`` (nothing else
    happens at ``t``), a failure also runs through the retries sure to fail too: those
    before any other event that could take a type-1 lock, while a type-1 lock held now
    outlasts their check."""
    wait_s = pf[WAIT_S]
    blocked = _type1_held(t, wait_s, F, jf)
    was_waiting = df[k, NEXT] < INF
    df[k, ACQ] = t
    if not blocked:
        p = I[DPOS]
        if p >= deletion.shape[0]:
            I[OUT_OF_DRAWS] = 1
            return
        I[DPOS] = p + 1
        rel = t + max(deletion[p, d], wait_s)
        df[k, REL], df[k, NEXT] = rel, INF
        di[k, FSEQ] = I[SEQ]
        if rel >= F[D_HOLD]:
            F[D_HOLD], F[D_ACQ], I[D_FSEQ] = rel, t, I[SEQ]
        I[SEQ] += 1
    else:
        now = t + wait_s
        fail = di[k, FAIL] + 1
        first = fail == 1 and now <= pf[T_END]
        nxt = now + _retry_wait(fail, pf)
        if skip_ahead and I[N_PEND] == 0:  # (each failure would release Pending ones)
            before = F[LIMIT]
            att = ev.shape[0] // 3 + 1  # the attempts' row
            for i in range(ev.shape[0]):  # every row but the attempts'
                if i != att:
                    before = min(before, ev[i])
            while nxt < before and nxt + wait_s < F[T1_HOLD]:
                t, now, fail = nxt, nxt + wait_s, fail + 1
                nxt = now + _retry_wait(fail, pf)
        df[k, ACQ], df[k, REL], df[k, NEXT], df[k, SCHED] = t, now, nxt, now
        di[k, FAIL], di[k, DSEQ] = fail, I[SEQ]
        if now >= F[D_HOLD]:  # the attempt was in progress (Deleting) until its check
            F[D_HOLD], F[D_ACQ], I[D_FSEQ] = now, t, I[SEQ]
        I[SEQ] += 1
        if first and now >= pf[T_COUNT]:
            c[DELETE_BLOCKED] += 1
        if first and not di[k, COUNTED]:
            if now >= pf[T_COUNT]:  # (the run it follows, when the deletion is counted)
                c[CONFLICTED_RUNS] += 1
                c[N_COUNTS + di[k, DJOB]] += 1
            di[k, COUNTED] = 1
    I[N_AWAIT] += (1 if blocked else 0) - (1 if was_waiting else 0)
    _refresh_attempts(ev, sc, sq, df, di, I)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _retry_wait(failures, pf):
    return min(pf[RETRY_MIN] * 2.0 ** (failures - 1), pf[RETRY_MAX])


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _poll(d, ev, df, F, I, c, restore, pf, pi):  # noqa: E741
    """A poll: the DR volume restores the newest completed backup unless it has it or
    is restoring (a restore ending at this very time ends after the poll)."""
    p, rel = ev[0], F[R_REL]
    busy = rel >= p
    if not busy and I[R_OK]:
        I[RESTORED] = I[R_ID]
    want = not busy and I[LATEST] >= 0 and I[LATEST] != I[RESTORED]
    if want:
        wait_s = pf[WAIT_S]
        blocked = _deletion_held(p, wait_s, F, df, I[NROWS])
        end = p + wait_s  # a blocked restore ends at its check
        if not blocked:
            if I[RPOS] >= restore.shape[0]:
                I[OUT_OF_DRAWS] = 1
                return
            end = p + max(restore[I[RPOS], d], wait_s)
            I[RPOS] += 1
            if end >= F[T1_HOLD]:
                F[T1_HOLD], F[T1_ACQ] = end, p
        F[R_ACQ], F[R_REL] = p, end
        I[R_OK], I[R_ID] = not blocked, I[LATEST]
        if blocked and pf[T_COUNT] <= p and p + wait_s <= pf[T_END]:
            c[RESTORE_BLOCKED] += 1
        rel = end
    # polls while it restores do nothing; after it, one retries a blocked restore or
    # takes a newer backup, if there is one
    ev[0] = _next_poll(rel, pf, pi) if busy or want else INF


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _next_poll(t, pf, pi):
    """The first poll time strictly after ``t`` (inf past the window)."""
    t0, poll_s = pf[T0], pf[POLL_S]
    k = math.floor((t - t0) / poll_s) + 1
    if t0 + k * poll_s <= t:
        k += 1
    if t0 + (k - 1) * poll_s > t:
        k -= 1
    return t0 + k * poll_s if k <= pi[N_POLLS] else INF


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _deletion_held(s, wait_s, F, df, nrows):
    """Whether an older deletion lock is held at the 2 s check of a type-1 lock written
    at ``s``: the latest-ending deletion decides, unless it is not older than ``s``."""
    if not F[D_HOLD] > s + wait_s:
        return False
    if F[D_ACQ] < s:
        return True
    for i in range(nrows):  # noqa: SIM110 (numba compiles loops, not generators)
        if df[i, ACQ] < s and df[i, REL] > s + wait_s:
            return True
    return False


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _type1_held(t, wait_s, F, jf):
    """Whether an older backup or restore lock is held at the 2 s check of a deletion
    lock written at ``t``."""
    if not F[T1_HOLD] > t + wait_s:
        return False
    if F[T1_ACQ] < t:
        return True
    for j in range(jf.shape[0]):
        if jf[j, B_ACQ] < t and jf[j, B_REL] > t + wait_s:
            return True
    return F[R_ACQ] < t and F[R_REL] > t + wait_s


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _alloc(df, di, I, t):  # noqa: E741
    """The first free deletion row at ``t`` (one awaiting nothing and ended), or a new
    one."""
    n = I[NROWS]
    for i in range(n):
        if not (df[i, NEXT] < INF or df[i, REL] >= t):
            return i
    df[n, ACQ], df[n, REL], df[n, NEXT], df[n, SCHED] = -INF, -INF, INF, -INF
    di[n, :] = 0
    I[NROWS] = n + 1
    return n


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _earliest_attempt(df, nrows):
    """The row of the earliest attempt due (the first row on equal times)."""
    k = 0
    for i in range(1, nrows):
        if df[i, NEXT] < df[k, NEXT]:
            k = i
    return k


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _refresh_attempts(ev, sc, sq, df, di, I):  # noqa: E741
    """The attempts' event row: the earliest deletion attempt due, if any awaits one."""
    att = ev.shape[0] // 3 + 1  # rows: 3 per job and 3 more; the attempts' is n + 2
    if I[N_AWAIT] <= 0:
        ev[att] = INF
        return
    k = _earliest_attempt(df, I[NROWS])
    ev[att], sc[att], sq[att] = df[k, NEXT], df[k, SCHED], di[k, DSEQ]


@njit(cache=True, nogil=True, inline="always")
def _take_lane(free, lanes, hold):
    """The lane that frees first (``free`` is a min-heap of the lanes' free times) is
    taken for ``hold``: returns when it starts. Which of several lanes free at the same
    time is taken does not change any start or end time."""
    start = free[0]
    value = start + hold
    i = 0
    while True:
        c = 2 * i + 1
        if c >= lanes:
            break
        if c + 1 < lanes and free[c + 1] < free[c]:
            c += 1
        if free[c] < value:
            free[i] = free[c]
            i = c
        else:
            break
    free[i] = value
    return start


@njit(cache=True, nogil=True)
def lay_lanes(hold, lanes, min_hold, start, span, marks, every):
    """Job runs on ``lanes`` lanes (:class:`advisor.model.fastpath.RunPool`): in each run
    (row of ``hold``), volume ``i`` (column) starts on the lane that frees first and
    holds it for ``max(hold[r, i], min_hold)``. Fills ``start`` (runs x volumes) and
    ``span`` (per run: when its last lane frees), and, when ``marks`` has room (runs x
    ceil(volumes / every) x lanes), the lanes' state before every ``every``-th volume,
    from which :func:`lanes_span` lays a run out again."""
    free = np.zeros(lanes)
    keep = marks.shape[1] > 0
    for r in range(hold.shape[0]):
        free[:] = 0.0
        for i in range(hold.shape[1]):
            if keep and i % every == 0:
                marks[r, i // every, :] = free
            start[r, i] = _take_lane(free, lanes, max(hold[r, i], min_hold))
        span[r] = free.max()


@njit(cache=True, nogil=True)
def lanes_span(hold, positions, bounds, rows, own, lanes, min_hold, marks, every, span):
    """:func:`lay_lanes`' ``span`` alone, laid out again for each volume
    ``positions[p]`` in the runs ``rows[bounds[p]:bounds[p + 1]]`` of ``hold``, with
    that volume holding its lane for ``own[k]`` instead of ``hold[rows[k], position]``
    (``span[k]`` is for ``rows[k]``). The volumes before the last mark at or before the
    position are laid out as they were: each run resumes from that mark's lanes. Reads
    ``hold`` in place."""
    free = np.zeros(lanes)
    for p in range(positions.shape[0]):
        position = positions[p]
        m = position // every
        for k in range(bounds[p], bounds[p + 1]):
            r = rows[k]
            free[:] = marks[r, m, :]
            for i in range(m * every, hold.shape[1]):
                h = own[k] if i == position else hold[r, i]
                _take_lane(free, lanes, max(h, min_hold))
            span[k] = free.max()
