"""Realisations of one job's runs over all its volumes, to place one volume in them
(:class:`RunPool`): what :func:`advisor.model.fastpath.score_volume` samples a queued
volume's runs from.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from advisor.longhorn import LOCK_ACQUIRE_WAIT_S
from advisor.model import _kernel_lanes
from advisor.model.fleet import Duration

__all__ = ["STRATA", "RunPool", "shared_z"]

STRATA = 16
"""Draws and pool runs are cut into this many strata, one per quantile of the doubt in
the durations' medians (:func:`shared_z`): a draw keeps to one stratum, so the doubt
holds for the whole window it scores, as a wrong median would."""


_Z = np.array([NormalDist().inv_cdf((k + 0.5) / STRATA) for k in range(STRATA)])
"""The standard normal quantile of each stratum's middle."""


def shared_z(n: int, start: int = 0) -> np.ndarray:
    """Per draw or pool run ``start`` to ``start + n`` (stratum ``i % STRATA``), the
    standard normal quantile of its stratum's middle: the factor ``exp(median_sd * z)``
    a duration's median takes there. Every volume and every job's pool share it, so a
    doubt common to them all (the deletion prior's: one backupstore's speed) moves them
    together."""
    return _Z[np.arange(start, start + n) % STRATA]

_MARK_EVERY = 32
"""A run pool with waits keeps its lanes' state every this many volumes (or every as many
as it has lanes, if more), so that laying a run out again for one volume
(:meth:`RunPool.span_for`) starts near it."""


class RunPool:
    """Simulated runs of one job over all its volumes, to place one volume in them.

    A run processes its volumes in order, ``concurrency`` at a time (``system-backup``:
    all at once): each volume starts when a lane frees and holds it for its backup; the
    run ends with its slowest lane (``longhorn-facts.md`` section 2). ``runs``
    realisations are drawn once (``own``, ``start``: per run and volume, seconds;
    ``span``: per run); :func:`~advisor.model.fastpath.score_volume` resamples them, so
    every member of a job shares one pool.

    ``waits``: per volume, ``(p, wait)``: the probability that its backup waits Pending
    behind a deletion of its own, and how long (Longhorn >= 1.8: the job waits for the
    Backup, so the lane is held; see :func:`advisor.model.risk.assess_fleet`, which
    learns them from a first pass). The wait holds the lane and delays the volumes after
    it; ``own`` stays the backup's own duration (the volume's own waits are scored by
    the kernel). Without ``waits`` the other volumes' conflicts are not fed back."""

    def __init__(self, durations: Sequence[Duration], concurrency: int, *,
                 runs: int = 4096, seed: int = 0,
                 waits: Sequence[tuple[float, Duration] | None] | None = None):
        if not durations:
            raise ValueError("a run pool needs at least one volume")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency}")
        if waits is not None and len(waits) != len(durations):
            raise ValueError(f"{len(waits)} waits for {len(durations)} volumes")
        rng = np.random.default_rng(seed)
        lanes = min(concurrency, len(durations))
        self.own = np.stack([np.asarray(d.sample(rng, runs), dtype=float)
                             for d in durations], axis=1)
        z = shared_z(runs)
        self.strata = STRATA if runs >= STRATA and (
            any(d.median_sd > 0 for d in durations)
            or any(w is not None and w[0] > 0 and w[1].median_sd > 0 for w in waits or ())
        ) else 1
        """Strata of the runs (run ``r``'s is ``r % strata``): 1 when no median is in
        doubt, else :data:`STRATA`; a draw takes its runs from one stratum."""
        if self.strata > 1:
            # each volume's backup median: its own doubt, independent of the others'
            # (a stratum's quantile in an order of its own, from a stream of its own)
            order = np.random.default_rng((seed, runs, 1)).permuted(
                np.tile(np.arange(STRATA), (len(durations), 1)), axis=1)
            sd = np.array([d.median_sd for d in durations])
            self.own *= np.exp(sd * _Z[order[:, np.arange(runs) % STRATA]].T)
        hold = self.own  # (a copy once a volume waits)
        for i, w in enumerate(waits or ()):
            if w is not None and w[0] > 0:
                if hold is self.own:
                    hold = self.own.copy()
                # drawn from their own stream, so a pool without waits is unchanged
                wrng = np.random.default_rng((seed, i))
                hit = wrng.random(runs) < min(w[0], 1.0)
                # a wait is a deletion: its median's doubt is shared (the prior's)
                hold[hit, i] += np.asarray(w[1].sample(wrng, int(hit.sum())), dtype=float) \
                    * np.exp(w[1].median_sd * z[hit])
        self._lanes_n = lanes
        self._every = max(_MARK_EVERY, lanes)  # (the marks take no more room than hold)
        self._marks = np.zeros((runs, 0 if hold is self.own else
                                -(-hold.shape[1] // self._every), lanes))
        self.start, self.span = self._lanes(hold, lanes)
        self._hold = np.ascontiguousarray(hold)
        self._spans: dict[int, np.ndarray] = {}
        # per volume, the runs where it waited (found once, a row per volume)
        self._waited: dict[int, np.ndarray] = {}
        if hold is not self.own:
            by_volume = np.ascontiguousarray((hold != self.own).T)
            self._waited = {int(i): np.flatnonzero(by_volume[i])
                            for i in np.flatnonzero(by_volume.any(axis=1))}

    def _lanes(self, hold: np.ndarray, lanes: int) -> tuple[np.ndarray, np.ndarray]:
        start, span = np.empty_like(hold), np.empty(hold.shape[0])
        _kernel_lanes.lay_lanes(np.ascontiguousarray(hold), lanes, LOCK_ACQUIRE_WAIT_S,
                                start, span, self._marks, self._every)
        return start, span

    def span_for(self, position: int) -> np.ndarray:
        """The runs' spans as the volume at ``position`` sees them: without its own
        waits, which :func:`~advisor.model.fastpath.score_volume` draws for it (its start
        does not depend on them: the volumes before it decide it). Only the runs where it
        waited are laid out again (kept: :meth:`lay_out`)."""
        if position not in self._waited:
            return self.span
        if position not in self._spans:
            self.lay_out([position])
        return self._spans[position]

    def lay_out(self, positions: Sequence[int]) -> None:
        """Find :meth:`span_for` of these volumes at once (one call of compiled code,
        which releases the GIL) and keep them."""
        todo = np.array(sorted({int(p) for p in positions if p in self._waited
                                and p not in self._spans}), np.int64)
        if not len(todo):
            return
        rows = [self._waited[int(p)] for p in todo]
        bounds = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        flat = np.concatenate(rows)
        own = self.own[flat, np.repeat(todo, np.diff(bounds))]
        again = np.empty(len(flat))
        _kernel_lanes.lanes_span(self._hold, todo, bounds, flat, own, self._lanes_n,
                                 LOCK_ACQUIRE_WAIT_S, self._marks, self._every, again)
        for k, p in enumerate(todo):
            span = self.span.copy()
            span[rows[k]] = again[bounds[k]:bounds[k + 1]]
            self._spans[int(p)] = span

    def __len__(self) -> int:
        return len(self.span)
