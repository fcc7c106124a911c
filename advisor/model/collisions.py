"""Structural findings for ``advisor check``: what proposed RecurringJobs do to the
backupstore lock, read from the manifests alone (no backup history).

Rules (facts in ``longhorn-facts.md`` sections 1, 2 and 5):

- Only jobs whose task touches the backupstore (:data:`advisor.longhorn.BACKUPSTORE_TASKS`)
  can meet on the lock; snapshot, snapshot-cleanup/-delete and filesystem-trim jobs never
  appear in a finding other than ``invalid_cron``.
- Two jobs meet on a volume both cover. With a ``volumes`` frame, membership is
  :func:`advisor.longhorn.job_volumes` (job labels, groups, the ``default`` group for a
  volume without recurring-job labels, system backups), and volumes a run skips are left
  out. Without volumes (or with an empty frame), two jobs share volumes when their
  ``groups`` share a name; a system-backup job with ``volume-backup-policy: always``
  covers every volume, one with ``if-not-present`` only volumes never backed up (none,
  in steady state).
- Fire times are robfig's (:func:`advisor.schedules.fire_times`) over ``horizon_days``
  from the Monday 00:00 UTC on or after ``start`` (default 2027-01-04), so results are
  reproducible. ``@every`` schedules count from the job's creation, an unknown phase:
  they get no ``simultaneous_fire`` / ``near_fire`` / deletion finding, only the interval
  check.
- Durations come from ``prior(size_bytes)``: the backup of one volume of that
  ``spec.size`` (``status.actualSize`` when the size is missing). The single-volume check
  uses its p95; a run's makespan lists the volumes largest first on ``concurrency``
  workers with median durations (``ceil(n / c) x d`` for equal durations). The share of
  runs that outlast their gap to the next slot is exact for ``n <= concurrency`` and a
  seeded Monte Carlo otherwise.
- A retention deletion starts when its job's backup of the volume ends (queueing inside
  the run is ignored: every volume is taken to start at the fire time). It meets another
  job's backup when it starts while that backup runs; its own duration (which would also
  block backups starting during it) needs a deletion prior and is not modelled here.

A finding and the job it is about are :mod:`advisor.model.findings`'; two jobs' fire
times against each other (``simultaneous_fire``, ``near_fire``)
:mod:`advisor.model.fire_pairs`'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import tzinfo

import numpy as np
import pandas as pd
from scipy import special

from advisor.cron import CronError, EverySchedule, parse, zone
from advisor.longhorn import (
    BACKUPSTORE_TASKS,
    DEFAULT_CONCURRENCY,
    SYSTEM_BACKUP,
    job_volumes,
    system_backup_policy,
)
from advisor.model.findings import KINDS, RETENTION_TASKS, Finding, ProposedJob
from advisor.model.fire_pairs import pair_findings
from advisor.model.fleet import Duration
from advisor.schedules import fire_times
from advisor.schema import utc
from advisor.units import duration as _dur
from advisor.units import size as _size

__all__ = ["DEFAULT_START", "KINDS", "Finding", "rpo_findings", "structural_findings"]

DEFAULT_START = "2027-01-04"  # a Monday
NEAR_WINDOW_S = 300
MIN_P_PER_RUN = 1e-3
"""Deletion/backup meetings rarer than this share of runs are not reported."""
_MC_DRAWS, _QUAD_NODES = 2000, 64


def structural_findings(jobs: pd.DataFrame, volumes: pd.DataFrame | None = None, *,
                        prior: Callable[[int], Duration] | None = None,
                        horizon_days: int = 366, start: object = None,
                        tz: str | tzinfo | None = None,
                        near_window_s: float = NEAR_WINDOW_S,
                        allow_detached: bool = False) -> list[Finding]:
    """Findings for the ``jobs`` frame (and optionally ``volumes``), most severe first.

    ``prior(size_bytes) -> Duration`` is one volume's backup duration; without it (or
    without volume sizes) the duration findings are left out. ``horizon_days`` of fire
    times from the Monday 00:00 UTC on or after ``start`` (default 2027-01-04) in the
    evaluation zone ``tz`` (default UTC). ``near_window_s``: fires this close (but not in
    the same minute) are ``near_fire``. ``allow_detached``: Longhorn's
    ``allow-recurring-job-while-volume-detached`` setting.
    """
    t0 = _monday(start)
    t1 = t0 + pd.Timedelta(days=horizon_days)
    loc = zone(tz)
    weeks = horizon_days / 7
    jobs = jobs.drop_duplicates(["cluster", "recurring_job"], keep="last")
    by_volume = volumes is not None and len(volumes) > 0
    members = _members(jobs, volumes, allow_detached) if by_volume else None
    findings, parsed = _parse(jobs, members, t0, t1, loc)
    sizes = _sizes(volumes) if by_volume else {}
    for a in parsed:
        for b in parsed:
            if a.cluster != b.cluster or a is b or not (a.phased and b.phased):
                continue
            shared = _shared(a, b)
            if not shared:
                continue
            scope = {"volumes" if by_volume else "groups": tuple(sorted(shared))}
            if a.name < b.name:
                findings += pair_findings(a, b, scope, t0, weeks, loc, near_window_s)
            if prior is not None and by_volume and a.task in RETENTION_TASKS:
                f = _deletion_meets(a, b, scope, sizes, prior, weeks)
                findings += [f] if f else []
    if prior is not None and by_volume:
        for j in parsed:
            f = _interval(j, sizes, prior, weeks)
            findings += [f] if f else []
    order = list(KINDS)
    return sorted(findings, key=lambda f: (order.index(f.kind), -(f.expected_per_week or 0),
                                           f.jobs))


def rpo_findings(jobs: pd.DataFrame, volumes: pd.DataFrame | None,
                 rpo: Callable[[str], float | None], *, horizon_days: int = 35,
                 allow_detached: bool = False) -> list[Finding]:
    """Jobs whose volumes' recovery points are, as scheduled, further apart than their
    RPO (``rpo(job)``, None: none): the 95th percentile of the gaps between the fire
    times of every job covering a volume (with ``volumes``: its volumes', as
    :func:`structural_findings` reads membership; else the jobs sharing a group with it)
    over ``horizon_days`` from :data:`DEFAULT_START`. A schedule that promises gaps
    beyond the RPO breaks it even when every backup succeeds; conflicts and skipped runs
    only lengthen the gaps."""
    t0 = _monday(None)
    jobs = jobs.drop_duplicates(["cluster", "recurring_job"], keep="last")
    by_volume = volumes is not None and len(volumes) > 0
    members = _members(jobs, volumes, allow_detached) if by_volume else None
    _, parsed = _parse(jobs, members, t0, t0 + pd.Timedelta(days=horizon_days), zone(None))
    out = []
    for j in parsed:
        limit = rpo(j.name)
        if limit is None:
            continue
        same = [p for p in parsed if p.cluster == j.cluster]
        units = ({frozenset(p.name for p in same if p.members is None or v in p.members)
                  for v in j.members} if by_volume and j.members is not None
                 else {frozenset(p.name for p in same if _shared(j, p))})
        worst = max(((_p95_gap([p.fires for p in same if p.name in u]), u) for u in units),
                    default=None, key=lambda t: t[0])
        if worst is None or not worst[0] > limit:
            continue
        gap, with_jobs = worst
        others = sorted(with_jobs - {j.name})
        out.append(Finding(
            "recovery_point_objective", (j.name,),
            f"{j.label}: its volumes' backups are {_dur(gap)} apart (p95 of the fire times"
            + (f", with {', '.join(others)}" if others else "") + f") as scheduled, beyond "
            f"the RPO of {_dur(limit)}; lock conflicts and skipped runs only lengthen the "
            "gaps", volumes=tuple(sorted(j.members)) if by_volume and j.members else None,
            groups=None if by_volume else tuple(sorted(j.members or ())), cluster=j.cluster,
            details={"gap_p95_s": gap, "rpo_s": limit}))
    return out


def _p95_gap(fires: list[np.ndarray]) -> float:
    t = np.unique(np.concatenate(fires)) if fires else np.zeros(0)
    return float(np.quantile(np.diff(t), 0.95)) if len(t) > 1 else math.inf


def _parse(jobs: pd.DataFrame, members: Mapping[tuple[str, str], frozenset[str]] | None,
           t0: pd.Timestamp, t1: pd.Timestamp, loc: tzinfo
           ) -> tuple[list[Finding], list[ProposedJob]]:
    """The ``invalid_cron`` findings, and the jobs that touch the backupstore with their
    fire times from ``t0`` to ``t1`` and what they cover: their volumes (``members``),
    else their groups."""
    findings: list[Finding] = []
    parsed: list[ProposedJob] = []
    for r in jobs.itertuples():
        cron = "" if pd.isna(r.cron) else str(r.cron)
        try:
            schedule = parse(cron)
        except CronError as e:
            findings.append(Finding(
                "invalid_cron", (r.recurring_job,), f"{r.recurring_job}: cron {cron!r} is "
                f"rejected by Longhorn and Kubernetes (robfig/cron): {e}",
                groups=_split(r.groups), cluster=r.cluster,
                details={"cron": cron, "reason": e.reason, "field": e.field}))
            continue
        if r.task not in BACKUPSTORE_TASKS:
            continue
        fires = fire_times(schedule, t0 - pd.Timedelta(seconds=1), t1, loc)
        scope = (members.get((r.cluster, r.recurring_job), frozenset()) if members is not None
                 else _groups_scope(r.task, r.groups, r.parameters))
        c = DEFAULT_CONCURRENCY if pd.isna(r.concurrency) else int(r.concurrency)
        parsed.append(ProposedJob(r.cluster, r.recurring_job, r.task, cron, schedule,
                                  max(c, 1), fires.astype(np.int64), scope))
    return findings, parsed


# --- membership ---------------------------------------------------------------------------


def _split(value: object) -> tuple[str, ...]:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ()
    return tuple(v for v in str(value).split(",") if v)


def _members(jobs: pd.DataFrame, volumes: pd.DataFrame, allow_detached: bool
             ) -> dict[tuple[str, str], frozenset[str]]:
    volumes = volumes.drop_duplicates(["cluster", "volume"], keep="last")
    pairs = job_volumes(jobs, volumes, allow_detached=allow_detached)
    pairs = pairs[pairs["skipped"].isna()]
    return {(str(c), str(j)): frozenset(g["volume"].astype(str))
            for (c, j), g in pairs.groupby(["cluster", "recurring_job"])}


def _groups_scope(task: str, groups: object, parameters: object) -> frozenset[str] | None:
    if task != SYSTEM_BACKUP:
        return frozenset(_split(groups))
    return None if system_backup_policy(parameters) == "always" else frozenset()


def _shared(a: ProposedJob, b: ProposedJob) -> frozenset[str]:
    if a.members is None and b.members is None:
        return frozenset({"*"})
    if a.members is None or b.members is None:
        return b.members if a.members is None else a.members  # type: ignore[return-value]
    return a.members & b.members


def _sizes(volumes: pd.DataFrame) -> dict[tuple[str, str], int]:
    v = volumes.drop_duplicates(["cluster", "volume"], keep="last")
    size = v["size_bytes"].fillna(v["actual_size_bytes"])
    return {(str(c), str(n)): int(s) for c, n, s in zip(v["cluster"], v["volume"], size,
                                                        strict=True) if not pd.isna(s)}


# --- the horizon --------------------------------------------------------------------------


def _monday(start: object) -> pd.Timestamp:
    t = utc(start if start is not None else DEFAULT_START)
    monday = (t + pd.Timedelta(days=(7 - t.weekday()) % 7)).normalize()
    return monday if monday >= t else monday + pd.Timedelta(days=7)


# --- durations ----------------------------------------------------------------------------


def _cdf(d: Duration, y: np.ndarray, *, inclusive: bool = False) -> np.ndarray:
    """P(D < y), or P(D <= y) when ``inclusive`` (they differ for a fixed duration)."""
    y = np.asarray(y, dtype=float)
    if d.sigma == 0.0:
        return ((d.median_s <= y) if inclusive else (d.median_s < y)).astype(float)
    with np.errstate(divide="ignore"):
        z = (np.log(np.maximum(y, 0.0)) - math.log(d.median_s)) / d.sigma
    return special.ndtr(z)


def _nodes(d: Duration) -> np.ndarray:
    """Equal-probability quadrature nodes of ``d``."""
    if d.sigma == 0.0:
        return np.array([d.median_s])
    u = (np.arange(_QUAD_NODES) + 0.5) / _QUAD_NODES
    return d.median_s * np.exp(d.sigma * special.ndtri(u))


def _p95(d: Duration) -> float:
    return d.p95_s if d.p95_s is not None else d.median_s


def _gaps(j: ProposedJob) -> tuple[np.ndarray, np.ndarray]:
    """Distinct gaps to the next slot (seconds) and their share of runs."""
    if isinstance(j.schedule, EverySchedule):
        return np.array([float(j.schedule.delay_s)]), np.array([1.0])
    gaps, counts = np.unique(np.diff(j.fires), return_counts=True)
    return gaps.astype(float), counts / max(counts.sum(), 1)


def _interval(j: ProposedJob, sizes: Mapping, prior: Callable[[int], Duration], weeks: float
              ) -> Finding | None:
    if j.task not in RETENTION_TASKS or j.members is None:
        return None
    vols = sorted(((sizes[(j.cluster, v)], v) for v in j.members if (j.cluster, v) in sizes),
                  reverse=True)
    gaps, share = _gaps(j)
    if not vols or not len(gaps):
        return None
    durs = [prior(s) for s, _ in vols]
    n, c, gap = len(vols), j.concurrency, float(gaps.min())
    big_size, big = vols[0]
    makespan = float(_makespan(np.array([[d.median_s for d in durs]]), c)[0])
    if _p95(durs[0]) <= gap and makespan <= gap:
        return None
    if n <= c:  # one round: the run lasts as long as its slowest volume
        p_gap = 1 - np.prod([_cdf(d, gaps, inclusive=True) for d in durs], axis=0)
    else:
        rng = np.random.default_rng(0)
        draws = np.column_stack([d.sample(rng, _MC_DRAWS) for d in durs])
        p_gap = (_makespan(draws, c)[:, None] > gaps[None, :]).mean(axis=0)
    p = float(np.dot(share, p_gap))
    per_week = p * len(j.fires) / weeks if j.phased else p * 7 * 86400 / gap
    rounds = math.ceil(n / c)
    text = (f"{j.about(None)}: its shortest interval is {_dur(gap)}, but the prior backup of "
            f"its largest volume {big} ({_size(big_size)}) takes {_dur(durs[0].median_s)} "
            f"(p95 {_dur(_p95(durs[0]))}), and one run of its {n} volume(s), {c} at a time "
            f"({rounds} round(s)), lasts about {_dur(makespan)}. {p:.1%} of runs outlast the "
            "next slot, which Longhorn then skips (concurrencyPolicy Forbid): the job "
            "backs up less often than its schedule says.")
    return Finding("interval_shorter_than_duration", (j.name,), text,
                   volumes=tuple(v for _, v in vols), p_per_run=p, expected_per_week=per_week,
                   cluster=j.cluster,
                   details={"min_interval_s": gap, "largest_volume": big,
                            "largest_size_bytes": big_size,
                            "volume_median_s": durs[0].median_s,
                            "volume_p95_s": _p95(durs[0]), "volume_count": n,
                            "concurrency": c, "rounds": rounds, "makespan_s": makespan})


def _makespan(durations: np.ndarray, workers: int) -> np.ndarray:
    """Per row (a draw), when the last of the volumes (columns, in order) ends on
    ``workers`` workers that each take the next volume when free."""
    free = np.zeros((durations.shape[0], workers))
    rows = np.arange(durations.shape[0])
    for k in range(durations.shape[1]):
        w = free.argmin(axis=1)
        free[rows, w] += durations[:, k]
    return free.max(axis=1)


def _deletion_meets(a: ProposedJob, b: ProposedJob, scope: dict, sizes: Mapping,
                    prior: Callable[[int], Duration], weeks: float) -> Finding | None:
    vols = [v for v in scope["volumes"] if (a.cluster, v) in sizes]
    if not vols or not len(a.fires) or not len(b.fires):
        return None
    distinct = sorted({sizes[(a.cluster, v)] for v in vols})
    durations = [prior(s) for s in distinct]
    # B's slots near each of A's, within the largest volume's reach (beyond p99.99)
    reach = max(d.median_s * math.exp(4 * d.sigma) for d in durations)
    lo = np.searchsorted(b.fires, a.fires - reach, "left")
    hi = np.searchsorted(b.fires, a.fires + reach, "right")
    owner = np.repeat(np.arange(len(a.fires)), hi - lo)
    pos = np.arange(len(owner)) - np.repeat(np.cumsum(hi - lo) - (hi - lo), hi - lo)
    x = (b.fires[lo[owner] + pos] - a.fires[owner]).astype(float)
    ux, inv = np.unique(x, return_inverse=True)
    per_size: dict[int, float] = {}
    if not len(ux):
        per_size = dict.fromkeys(distinct, 0.0)
    else:
        starts = np.flatnonzero(np.diff(np.concatenate([[-1], owner])))
        for s, d in zip(distinct, durations, strict=True):
            # A's deletion starts at D_A; B's backup runs over [x, x + D_B).
            p_x = _cdf(d, ux[:, None] + _nodes(d)[None, :]).mean(axis=1) - _cdf(d, ux)
            p_run = np.minimum(np.add.reduceat(p_x[inv], starts), 1.0)
            per_size[s] = float(p_run.sum() / len(a.fires))
    p = max(per_size.values())
    if p < MIN_P_PER_RUN:
        return None
    per_week = sum(per_size[sizes[(a.cluster, v)]] for v in vols) * len(a.fires) / weeks
    worst = max(vols, key=lambda v: (per_size[sizes[(a.cluster, v)]], v))
    size = sizes[(a.cluster, worst)]
    text = (f"{a.name}'s retention deletion, which starts when its backup of a volume ends, "
            f"falls while {b.label}'s backup of the same volume still runs in {p:.1%} of "
            f"{a.name}'s runs on {worst} ({_size(size)}, prior backup "
            f"{_dur(prior(size).median_s)}): about {per_week:.2f} blocked "
            f"deletions a week over {len(vols)} shared volume(s). Each fails on the lock and "
            "is retried later; a retry can meet the next backup.")
    return Finding("retention_deletion_meets_backup", (a.name, b.name), text, **scope,
                   p_per_run=p, expected_per_week=per_week, cluster=a.cluster,
                   details={"p_per_run_by_volume": {v: per_size[sizes[(a.cluster, v)]]
                                                    for v in vols}})

