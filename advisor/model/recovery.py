"""Recovery points: how often a volume really gets a completed backup, as its schedules
promise, predicted draw by draw.

A recovery point is a completed backup of the volume (any job's). What an SRE asks of a
schedule is the gap between successive ones: how long the cluster goes with nothing newer
to restore. The crons promise an *intended* gap (their fire times, all of the volume's
backup jobs together); lock conflicts and slow runs stretch it: a skipped slot or a
failed backup loses a point (the gap doubles), a backup Pending behind a deletion delays
one.

:class:`RecoveryDraws` keeps, per Monte Carlo draw of the scored window, the figures of
that draw's gaps (their median, 95th percentile and maximum) and of its Pending waits,
so a predicted figure comes with the range the draws give it (the central 95 % of
draws: what one week may look like), not only a mean. A gap counts when the later
backup completes inside the window; the maximum also counts the open gap from the last
completion to the window's end (a volume that stopped getting backups on Wednesday has a
gap of at least the rest of the week). A draw's first gap ends at its first completion
in the window and starts at its last one before, in the warm-up; when the warm-up holds
none (a daily or weekly job), at the jobs' last fire time before it (:func:`last_before`)
plus a backup duration drawn for it, as a history would show it.
``advisor.model.recovery_observed`` reads the same figures from a history, defined the
same way.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from advisor.schedules import fire_times

__all__ = ["PER_DRAW", "RecoveryDraws", "fleet_sum", "intended_gaps", "last_before",
           "range_of", "ranges"]

PER_DRAW = ("gap_p50", "gap_p95", "gap_max", "points", "wait_p50", "wait_p95", "waited")
"""The per-draw arrays of :class:`RecoveryDraws`."""
RANGE = (0.025, 0.975)
"""The central share of draws a predicted range spans."""


@dataclass(frozen=True)
class RecoveryDraws:
    """One volume's recovery points in each draw of a scored window (arrays of shape
    ``(draws,)``): ``gap_p50``, ``gap_p95``, ``gap_max`` (seconds; NaN in a draw with no
    gap), ``points`` (backups completed in the window), ``wait_p50`` and ``wait_p95``
    (seconds the backups created Pending waited; NaN when none was) and ``waited`` (how
    many were). ``intended_s`` and ``intended_max_s``: the median and longest gap between
    the crons' fire times over the window (:func:`intended_gaps`)."""

    gap_p50: np.ndarray
    gap_p95: np.ndarray
    gap_max: np.ndarray
    points: np.ndarray
    wait_p50: np.ndarray
    wait_p95: np.ndarray
    waited: np.ndarray
    intended_s: float
    intended_max_s: float
    intended_points: int = 0
    """Slots in the window (every job's): the backups the schedules promise."""

    @classmethod
    def reduce(cls, done: np.ndarray, waited: np.ndarray, *,
               prior: tuple[float, np.ndarray], t_count: float, t_end: float,
               slot_t: np.ndarray) -> RecoveryDraws:
        """The figures of a block of draws from the kernel's ``done`` (each draw's
        completion times in order, warm-up included, NaN after the last) and ``waited``
        (the Pending waits of backups created from ``t_count`` on, NaN after the last);
        ``prior``: the last fire time before the warm-up (:func:`last_before`) and, per
        draw, when that backup completed; ``slot_t``: the fire times the kernel was
        given."""
        done = np.concatenate([np.reshape(prior[1], (len(done), 1)), done], axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # (all-NaN rows: no gap)
            gaps = np.diff(done, axis=1)
            gaps[~(done[:, 1:] >= t_count)] = np.nan
            p50, p95 = _quantiles(gaps)
            tail = t_end - np.nanmax(done, axis=1, initial=-np.inf)
            longest = np.fmax(np.nanmax(gaps, axis=1, initial=-np.inf), tail)
            longest[~np.isfinite(longest)] = np.nan
            w50, w95 = _quantiles(waited)
        points = (done >= t_count).sum(axis=1)
        intended, intended_max = intended_gaps(np.append(slot_t, prior[0]), t_count, t_end)
        return cls(p50, p95, longest, points, w50, w95, np.isfinite(waited).sum(axis=1),
                   intended, intended_max,
                   int(((slot_t >= t_count) & (slot_t < t_end)).sum()))

    @classmethod
    def concat(cls, parts: Sequence[RecoveryDraws]) -> RecoveryDraws:
        """The draws of ``parts`` one after the other."""
        first = parts[0]
        if len(parts) == 1:
            return first
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in PER_DRAW),
                   first.intended_s, first.intended_max_s, first.intended_points)

    @property
    def draws(self) -> int:
        return len(self.points)

    def per_draw(self, scale: float = 1.0) -> dict[str, np.ndarray]:
        """The per-draw figures, counts scaled by ``scale`` (the window to a week), with
        ``lost``: the slots the schedules promise that gave no completed backup."""
        out = {f.name: getattr(self, f.name).astype(float) for f in fields(self)
               if f.name in PER_DRAW}
        out["lost"] = np.maximum(self.intended_points - out["points"], 0.0)
        for k in ("points", "waited", "lost"):
            out[k] = out[k] * scale
        return out

    def summary(self, scale: float = 1.0) -> dict[str, float]:
        """The predicted figures: each per-draw figure's median over the draws and its
        range (``_lo``/``_hi``: :data:`RANGE`), counts scaled by ``scale``; the intended
        gaps as they are."""
        out: dict[str, float] = {"intended_interval_s": self.intended_s,
                                 "intended_max_gap_s": self.intended_max_s,
                                 "intended_points": self.intended_points * scale}
        for name, x in self.per_draw(scale).items():
            mid, lo, hi = range_of(x)
            out[name] = mid
            out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
        return out


def fleet_sum(per_volume: Iterable[np.ndarray], *, samples: int = 4000,
              seed: int = 0) -> np.ndarray:
    """``samples`` draws of a fleet's total of a per-draw figure (``per_volume``: each
    volume's array over its draws; NaN counts 0). A sample takes one draw of each
    volume, all of one stratum (:data:`~advisor.model.runpool.STRATA`: draw ``d``'s is
    ``d % STRATA``), so that a doubt the volumes share (the deletion prior's) moves them
    together as it would the cluster's week; otherwise the draws are independent (the
    fast path scores volumes apart)."""
    from advisor.model.runpool import STRATA

    rng = np.random.default_rng(seed)
    total = np.zeros(samples)
    stratum = np.arange(samples) % STRATA
    for x in per_volume:
        n = len(x)
        if not n:
            continue
        if n >= STRATA:  # one of the ceil((n - k) / STRATA) draws of stratum k
            pick = stratum + STRATA * (rng.random(samples) * (
                (n - stratum + STRATA - 1) // STRATA)).astype(np.int64)
        else:
            pick = rng.integers(n, size=samples)
        total += np.nan_to_num(np.asarray(x, dtype=float)[pick])
    return total


def range_of(x: np.ndarray) -> tuple[float, float, float]:
    """The median of ``x`` over its finite values and their central :data:`RANGE`
    (NaNs when none is finite)."""
    x = x[np.isfinite(x)]
    if not len(x):
        return (np.nan, np.nan, np.nan)
    mid, lo, hi = np.quantile(x, [0.5, *RANGE])
    return float(mid), float(lo), float(hi)


def last_before(jobs: Sequence[tuple[str, Any]], t0: float, tz: str | None = None
                ) -> tuple[float, Any]:
    """The volume's last fire time before ``t0`` (any of its jobs', within 62 days) and
    what goes with that job (``jobs``: ``(cron, x)``; the latest job's ``x`` when two
    fire then). ``(NaN, None)`` when none fires."""
    fire, what = np.nan, None
    for cron, x in jobs:
        f = _last_fire(cron, t0, tz)
        if np.isfinite(f) and not f < fire:  # (a later or equal one wins)
            fire, what = f, x
    return fire, what


@functools.lru_cache(maxsize=256)
def _last_fire(cron: str, t0: float, tz: str | None) -> float:
    """A cron's last fire time before ``t0`` within 62 days (NaN: none); cached, as every
    volume of a job asks for it."""
    until = pd.Timestamp(t0 - 1, unit="s", tz="UTC")
    f = fire_times(cron, until - pd.Timedelta(days=62), until, tz)
    return float(f[-1].astype(np.int64)) if len(f) else np.nan


def ranges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`range_of` of each row of ``x``, all at once."""
    mid, lo, hi = _quantiles(x, (0.5, *RANGE))
    return mid, lo, hi


def intended_gaps(slot_t: np.ndarray, t_count: float, t_end: float) -> tuple[float, float]:
    """The median and longest gap between successive fire times (of every job
    together) that end inside ``t_count`` - ``t_end``, the open gap from the last fire
    time to ``t_end`` counted in the longest (NaN, NaN when nothing fires)."""
    t = np.unique(slot_t[np.isfinite(slot_t)])
    if not len(t):
        return (np.nan, np.nan)
    gaps = np.diff(t)[t[1:] >= t_count]
    longest = max(float(gaps.max()) if len(gaps) else 0.0, t_end - float(t[-1]))
    return (float(np.median(gaps)) if len(gaps) else np.nan, longest)


def _quantiles(x: np.ndarray, qs: tuple[float, ...] = (0.5, 0.95)) -> list[np.ndarray]:
    """Per row of ``x`` its ``qs`` quantiles (default the median and 95th percentile)
    over finite values (linear interpolation, as ``np.quantile``; NaN for a row with
    none), for all rows at once (``np.nanquantile`` goes row by row)."""
    rows = len(x)
    if not x.shape[1]:
        return [np.full(rows, np.nan) for _ in qs]
    finite = np.isfinite(x)
    n = finite.sum(axis=1)
    s = np.sort(x if finite.all() or not np.isinf(x).any() else
                np.where(finite, x, np.nan), axis=1)  # (NaN sorts last)
    out = []
    for q in qs:
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0]
        b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0]
        with np.errstate(invalid="ignore"):  # (inf - inf in a row with no value)
            v = a + (pos - lo) * (b - a)
        out.append(np.where(n > 0, np.where(hi == lo, a, v), np.nan))
    return out
