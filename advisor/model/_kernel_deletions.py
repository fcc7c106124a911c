"""The compiled kernel's deletions, lock checks and DR polls (:mod:`advisor.model._kernel`
runs the events; the rules are :mod:`advisor.model.fastpath`'s).

A deletion lives in a row of ``df`` / ``di`` (columns in :mod:`advisor.model._kernel_layout`)
from its first attempt until it has ended and awaits no retry; failed backups awaiting
their TTL deletion are rows too. The attempts' event row of ``ev`` is the earliest
attempt due (:func:`refresh_attempts`).

numba's cache keys :func:`advisor.model._kernel.run_block` on its own file alone, and this
module is compiled into it: after changing this file, clear the cache (``__pycache__/*.nb[ci]``,
or ``NUMBA_CACHE_DIR``) so the kernel is compiled again.
"""

from __future__ import annotations

import math

from numba import njit

from advisor.model._kernel_layout import (
    ACQ,
    B_ACQ,
    B_REL,
    CONFLICTED_RUNS,
    COUNTED,
    D_ACQ,
    D_FSEQ,
    D_HOLD,
    DELETE_BLOCKED,
    DJOB,
    DPOS,
    DSEQ,
    FAIL,
    FSEQ,
    INF,
    LATEST,
    LIMIT,
    N_AWAIT,
    N_COUNTS,
    N_PEND,
    N_POLLS,
    NEXT,
    NROWS,
    OUT_OF_DRAWS,
    POLL_S,
    R_ACQ,
    R_ID,
    R_OK,
    R_REL,
    REL,
    RESTORE_BLOCKED,
    RESTORED,
    RETRY_MAX,
    RETRY_MIN,
    RPOS,
    SCHED,
    SEQ,
    T0,
    T1_ACQ,
    T1_HOLD,
    T_COUNT,
    T_END,
    WAIT_S,
)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def try_deletion(k, d, t, skip_ahead, ev, sc, sq, jf, df, di, F, I, c, deletion, pf):  # noqa: E741
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
    refresh_attempts(ev, sc, sq, df, di, I)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _retry_wait(failures, pf):
    return min(pf[RETRY_MIN] * 2.0 ** (failures - 1), pf[RETRY_MAX])


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def poll(d, ev, df, F, I, c, restore, pf, pi):  # noqa: E741
    """A poll: the DR volume restores the newest completed backup unless it has it or
    is restoring (a restore ending at this very time ends after the poll)."""
    p, rel = ev[0], F[R_REL]
    busy = rel >= p
    if not busy and I[R_OK]:
        I[RESTORED] = I[R_ID]
    want = not busy and I[LATEST] >= 0 and I[LATEST] != I[RESTORED]
    if want:
        wait_s = pf[WAIT_S]
        blocked = deletion_held(p, wait_s, F, df, I[NROWS])
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
    ev[0] = next_poll(rel, pf, pi) if busy or want else INF


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def next_poll(t, pf, pi):
    """The first poll time strictly after ``t`` (inf past the window)."""
    t0, poll_s = pf[T0], pf[POLL_S]
    k = math.floor((t - t0) / poll_s) + 1
    if t0 + k * poll_s <= t:
        k += 1
    if t0 + (k - 1) * poll_s > t:
        k -= 1
    return t0 + k * poll_s if k <= pi[N_POLLS] else INF


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def deletion_held(s, wait_s, F, df, nrows):
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
def alloc_deletion(df, di, I, t):  # noqa: E741
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
def earliest_attempt(df, nrows):
    """The row of the earliest attempt due (the first row on equal times)."""
    k = 0
    for i in range(1, nrows):
        if df[i, NEXT] < df[k, NEXT]:
            k = i
    return k


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def refresh_attempts(ev, sc, sq, df, di, I):  # noqa: E741
    """The attempts' event row: the earliest deletion attempt due, if any awaits one."""
    att = ev.shape[0] // 3 + 1  # rows: 3 per job and 3 more; the attempts' is n + 2
    if I[N_AWAIT] <= 0:
        ev[att] = INF
        return
    k = earliest_attempt(df, I[NROWS])
    ev[att], sc[att], sq[att] = df[k, NEXT], df[k, SCHED], di[k, DSEQ]

