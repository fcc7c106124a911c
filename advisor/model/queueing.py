"""Queue delay: how long each backup of a recurring job waited inside its run, from the
job's cron slot to the backup's ``started_at``, and the rank of its start in the run.

The history does not say which run created a backup, so runs are found from the backups
themselves (:func:`_runs`): a run backs up each of its volumes once and runs of a job
never overlap. A run's slot is the latest fire time of the job's cron (its latest
observation in ``jobs``, read in ``tz``, default UTC) at or before the run's first
creation. ``@every`` jobs have no fixed slots: they are skipped with a warning, as are
jobs whose cron is missing or does not parse.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd

from advisor.cron import CronError, EverySchedule, Schedule, parse
from advisor.model.columns import categorical, group_quantiles, latest, pairs, sort_by, text, times
from advisor.model.observations import FitProblem
from advisor.schedules import fire_times

__all__ = ["queue_delays"]


def _runs(volume: np.ndarray, prev_fire: np.ndarray, busy_until: np.ndarray) -> np.ndarray:
    """The run number of each backup of one job, rows in creation order.

    A run backs up each of its volumes once and runs of a job never overlap (Forbid). So
    a new run starts when a volume comes again, or when a fire time passed while every
    earlier backup of the job had ended (an idle job at a fire time starts a run). Greedy
    segmentation: from a run's first row ``s`` the next run starts at ``min{i : p_i >=
    s}``, ``p_i`` being the previous row of the same volume (``i - 1`` where forced)."""
    n = len(volume)
    idx = np.arange(n)
    o = np.argsort(volume, kind="stable")
    same = volume[o][1:] == volume[o][:-1]
    prev = np.full(n, -1)
    prev[o[1:][same]] = o[:-1][same]
    prev = np.where(prev_fire > busy_until, idx - 1, prev)
    m = np.full(n + 1, n)
    np.minimum.at(m, prev[prev >= 0], idx[prev >= 0])
    nxt = np.minimum.accumulate(m[::-1])[::-1].tolist()
    starts = np.zeros(n, dtype=bool)
    s = 0
    while s < n:
        starts[s] = True
        s = nxt[s]
    return np.cumsum(starts) - 1


def _ranks(run: np.ndarray, started: np.ndarray) -> np.ndarray:
    """1-based rank of each row's start within its run (rows grouped by run; NaN: NaN)."""
    counts = np.bincount(run)
    order = np.arange(len(run))  # runs are mostly in start order already: sort the rest
    bad = (np.diff(run) == 0) & ~(np.diff(started) >= 0)
    if bad.any():
        redo = np.flatnonzero(np.isin(run, run[1:][bad]))
        order[redo] = redo[sort_by(run[redo], started[redo], stable=True)]
    rank = np.empty(len(run))
    rank[order] = np.arange(len(run)) - (np.cumsum(counts) - counts)[run[order]] + 1
    return np.where(np.isnan(started), np.nan, rank)


def _schedule(crons: Mapping[tuple[str, str], str], cluster: str, name: str,
              problems: list[FitProblem]) -> Schedule | None:
    """The job's parsed cron, or None (and a warning in ``problems``) when it has no fixed
    slots to measure from."""
    cron = crons.get((cluster, name), "")
    try:
        sched = parse(cron) if cron else None
    except CronError as e:
        sched, cron = None, f"cron {cron!r}: {e}"
    if sched is None or isinstance(sched, EverySchedule):
        why = ("@every counts from the previous run, not the clock" if sched else
               cron or "not in the jobs frame")
        problems.append(FitProblem(cluster, "", "", "recurring_job",
                                   f"{name}: {why}; no queue delay", "warning"))
        return None
    return sched


def _previous_fire(sched: Schedule, created: np.ndarray, tz: str | None) -> np.ndarray:
    """The latest fire time (epoch s) at or before each creation (sorted; -inf: none)."""
    for margin_days in (2, 400):  # a monthly or yearly job's slot may be far back
        fires = fire_times(sched, pd.Timestamp(created[0] - margin_days * 86400, unit="s",
                                               tz="UTC"),
                           pd.Timestamp(created[-1] + 1, unit="s", tz="UTC"), tz
                           ).astype(np.int64).astype(float)
        at = np.searchsorted(fires, created, side="right") - 1
        if at[0] >= 0:
            break
    return np.where(at >= 0, fires[np.maximum(at, 0)], -np.inf)


def _job_delays(r: np.ndarray, sched: Schedule, t: dict[str, np.ndarray], end: np.ndarray,
                volume: np.ndarray, tz: str | None) -> tuple[np.ndarray, ...]:
    """One job's backups (rows ``r`` in creation order, their volume codes ``volume``):
    run number, slot, start, queue delay and rank in the run."""
    prev_fire = _previous_fire(sched, t["requested_at"][r], tz)
    busy = np.r_[-np.inf, np.maximum.accumulate(end[r])[:-1]]
    run = _runs(volume, prev_fire, busy)
    slot = prev_fire[np.r_[0, np.flatnonzero(np.diff(run)) + 1]][run]
    started = t["started_at"][r]
    delay = np.where(np.isfinite(slot), started - slot, np.nan)
    return run, slot, started, delay, _ranks(run, started)


def _by_volume(cluster: str, name: str, names: np.ndarray, volume: np.ndarray,
               delay: np.ndarray, rank: np.ndarray) -> pd.DataFrame:
    """One job's summary per volume (``volume``: codes into ``names``)."""
    vols, vc = np.unique(volume, return_inverse=True)
    has = ~np.isnan(rank)
    with np.errstate(invalid="ignore"):
        mean_rank = np.bincount(vc[has], rank[has], len(vols)) / np.bincount(
            vc[has], minlength=len(vols))
    v50, v95 = group_quantiles(vc, delay, len(vols), (0.5, 0.95))
    return pd.DataFrame({
        "cluster": cluster, "recurring_job": name, "volume": names[vols],
        "n_backups": np.bincount(vc, ~np.isnan(delay), len(vols)).astype(int),
        "mean_rank": mean_rank, "p50_s": v50, "p95_s": v95})


def queue_delays(backups: pd.DataFrame, cv: np.ndarray, keys: pd.DataFrame,
                 t: dict[str, np.ndarray], jobs: pd.DataFrame | None, tz: str | None,
                 problems: list[FitProblem]) -> tuple[pd.DataFrame, ...]:
    """Per backup: its run's cron slot (the latest fire time at or before the run's first
    creation, in ``tz``, default UTC), ``queue_delay_s = started_at - slot`` and
    ``run_rank`` (1: first to start in its run); summaries per job and per job/volume.
    ``cv``: each backup's code into ``keys`` (cluster, volume); ``t``: the backups' time
    columns in epoch seconds. Jobs without fixed slots are warned of in ``problems``."""
    jc, jkeys = pairs(backups, "cluster", "recurring_job")
    sel = (text(backups, "recurring_job") != "").to_numpy(bool) & ~np.isnan(t["requested_at"])
    j = latest(jobs, ["cluster", "recurring_job"])
    crons = {} if j is None else dict(zip(
        zip(text(j, "cluster"), text(j, "recurring_job"), strict=True),
        text(j, "cron"), strict=True))
    end = t["finished_at"]
    for c in ("last_synced_at", "collected_at"):
        end = np.where(np.isnan(end), t[c], end)
    end = np.where(np.isnan(end), np.inf, end)
    rows = np.flatnonzero(sel)
    rows = rows[np.argsort(jc[rows].astype(np.int16 if len(jkeys) < 2**15 else np.int64),
                           kind="stable")]  # a radix sort for small codes
    bounds = np.flatnonzero(np.r_[True, np.diff(jc[rows]) != 0, True]) if len(rows) else []
    names = keys["volume"].to_numpy()
    parts, by_job, by_volume = [], [], []
    for lo, hi in itertools.pairwise(bounds):
        r = rows[lo:hi][np.argsort(t["requested_at"][rows[lo:hi]], kind="stable")]
        cluster, name = jkeys.iloc[jc[r[0]]]
        sched = _schedule(crons, cluster, name, problems)
        if sched is None:
            continue
        run, slot, started, delay, rank = _job_delays(r, sched, t, end, cv[r], tz)
        by_job.append((cluster, name, int(run[-1]) + 1, int(np.count_nonzero(~np.isnan(delay))),
                       *(q[0] for q in group_quantiles(np.zeros(len(r), np.int64), delay, 1,
                                                       (0.5, 0.95, 1.0)))))
        by_volume.append(_by_volume(cluster, name, names, cv[r], delay, rank))
        parts.append((r, slot, started, delay, rank))
    r, slot, started, delay, rank = (np.concatenate([p[i] for p in parts]) if parts
                                     else np.empty(0, int if i == 0 else float)
                                     for i in range(5))
    per_backup = pd.DataFrame({
        "cluster": categorical(jkeys["cluster"], jc[r]),
        "recurring_job": categorical(jkeys["recurring_job"], jc[r]),
        "volume": categorical(keys["volume"], cv[r]),
        "backup": text(backups, "backup").iloc[r].array,
        "slot": times(slot), "started_at": times(started),
        "queue_delay_s": delay, "run_rank": rank})
    by_job_df = pd.DataFrame(by_job, columns=["cluster", "recurring_job", "n_runs",
                                              "n_backups", "p50_s", "p95_s", "max_s"])
    by_volume_df = (pd.concat(by_volume, ignore_index=True) if by_volume else pd.DataFrame(
        columns=["cluster", "recurring_job", "volume", "n_backups", "mean_rank", "p50_s",
                 "p95_s"]))
    return by_job_df, by_volume_df, per_backup
