"""The compiled lane layout of :class:`advisor.model.runpool.RunPool`: a job's runs over
all its volumes, ``concurrency`` lanes at a time, each volume on the lane that frees
first (``longhorn-facts.md`` section 2)."""

from __future__ import annotations

import numpy as np
from numba import njit


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
    """Job runs on ``lanes`` lanes (:class:`advisor.model.runpool.RunPool`): in each run
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
