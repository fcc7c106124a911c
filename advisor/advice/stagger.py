"""Start offsets between backup jobs, and one job split into staggered parts: the
modelling behind :func:`advisor.offsets` and :func:`advisor.stagger`.

A job's busy window is its slowest volume's p95 backup plus its p95 deletion (the
``retain`` cleanup after it). Offsets place each window where it meets no other job's on
a shared volume (:func:`advisor.advice.search.offsets.offsets`). Staggering splits one job into
parts that start one after another at a lower ``concurrency``
(:func:`advisor.advice.search.offsets.stagger`); the current fleet and the staggered one are
simulated over the same week with the same draws, from a day before it so that runs
already going at Monday 00:00 are there, and compared. Nothing is applied: the results
hold the manifests and the commands. Times are UTC.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from advisor.advice.search.offsets import OffsetAdvice, StaggerAdvice, offsets
from advisor.advice.search.offsets import stagger as split_job
from advisor.advice.settings import Settings
from advisor.inputs import fleet_from_history, history_cluster
from advisor.longhorn import DEFAULT_GROUP, GROUP_LABEL_PREFIX, NAMESPACE
from advisor.model.concurrency import running_at_once
from advisor.model.durations import DurationFits
from advisor.model.fleet import Fleet
from advisor.model.simulate import SimulationResult, run_members, simulate
from advisor.schema import utc

__all__ = ["WARM_UP", "Offsets", "Stagger", "busy_windows", "peak_at_once", "plan_offsets",
           "plan_stagger", "running_at_each_moment", "staggered_fleet"]

WARM_UP = pd.Timedelta(days=1)
"""How long before the week the simulations start, so runs going at its start are there."""
DEFAULT_LABEL = f"{GROUP_LABEL_PREFIX}{DEFAULT_GROUP}=enabled"
_SCHEDULES = ("current", "staggered")


def busy_windows(fleet: Fleet, fits: DurationFits, cluster: str) -> dict[str, float]:
    """Each backup job's busy window, seconds: the largest p95 backup plus p95 deletion
    of the volumes its runs process (60 s for a job with none)."""
    p95 = fits.preferred(cluster).set_index("volume")["p95_s"]
    d = fits.deletions[fits.deletions["cluster"] == cluster].set_index("volume")["p95_s"]
    return {job: max((float(p95[v] + d[v]) for v in volumes), default=60.0)
            for job, volumes in run_members(fleet).items()}


def plan_offsets(frames: Mapping[str, pd.DataFrame], fits: DurationFits,
                 cluster: str | None = None) -> list[OffsetAdvice]:
    """Start offsets of the backup jobs of ``cluster``'s history, from their busy
    windows (:func:`busy_windows`); jobs share volumes as their runs do."""
    fleet, _ = fleet_from_history(frames, fits, cluster)
    return offsets(fleet.jobs, busy_windows(fleet, fits, history_cluster(frames, cluster)),
                   volumes=run_members(fleet))


@dataclass
class Offsets:
    """Per backup RecurringJob, the start that keeps its busy window off the other
    jobs' on shared volumes, or why none does (``feasible`` False: the cron is kept)."""

    advice: list[OffsetAdvice]

    @property
    def table(self) -> pd.DataFrame:
        """One row per backup job: ``job``, ``current_cron``, ``recommended_cron``,
        ``busy_window_s``, ``feasible``, ``shares_with`` (the jobs sharing its volumes),
        ``reason``."""
        cols = ["job", "current_cron", "recommended_cron", "busy_window_s", "feasible",
                "shares_with", "reason"]
        return pd.DataFrame([(a.job, a.current_cron, a.recommended_cron, a.window_s,
                              a.feasible, ", ".join(a.shares_with), a.reason)
                             for a in self.advice], columns=cols)

    def __repr__(self) -> str:
        moved = [a.job for a in self.advice if a.recommended_cron != a.current_cron]
        stuck = sum(not a.feasible for a in self.advice)
        return (f"Offsets({len(self.advice)} backup jobs, {len(moved)} to move"
                + (f" ({', '.join(moved)})" if moved else "")
                + f", {stuck} no offset helps)")

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False, float_format=lambda x: f"{x:.0f}")


# --- staggering -------------------------------------------------------------------------

def staggered_fleet(fleet: Fleet, advice: StaggerAdvice, volumes: Sequence[str]) -> Fleet:
    """``fleet`` once ``advice`` is applied: the old job deleted, its parts created, each
    of ``volumes`` labelled with its part's group (dealt round-robin, as the advice's
    commands do)."""
    parts = [dataclasses.replace(spec, cron=cron) for spec, cron in advice.parts]
    group_of = {v: parts[i % len(parts)].groups[0] for i, v in enumerate(volumes)}
    changed = []
    for v in fleet.volumes:
        if v.name in group_of:
            # A volume with no recurring-job label is in Longhorn's `default` group; once
            # it has a label it must name `default` itself to stay in the default jobs.
            groups = v.groups or (() if v.jobs else (DEFAULT_GROUP,))
            v = dataclasses.replace(v, groups=(*groups, group_of[v.name]),
                                    jobs=tuple(j for j in v.jobs if j != advice.job))
        changed.append(v)
    jobs = (*(j for j in fleet.jobs if j.name != advice.job), *parts)
    return dataclasses.replace(fleet, volumes=tuple(changed), jobs=jobs)


def running_at_each_moment(backups: pd.DataFrame) -> pd.Series:
    """Backups running at each moment (a step function of time): +1 at each
    ``started_at``, -1 at each ``finished_at``; backups without both are left out."""
    b = backups.dropna(subset=["started_at", "finished_at"])
    steps = pd.concat([pd.Series(1, index=pd.DatetimeIndex(b["started_at"])),
                       pd.Series(-1, index=pd.DatetimeIndex(b["finished_at"]))])
    return steps.groupby(level=0).sum().cumsum()


def peak_at_once(backups: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
                 ) -> tuple[int, pd.Timestamp | None, pd.Series]:
    """The most ``backups`` running at once in ``start``..``end``, the first moment it
    is reached, and how many of each RecurringJob ran then (backups with no end left
    out: when a failed backup stopped is not known)."""
    b = backups[backups["started_at"].notna() & backups["finished_at"].notna()
                & (backups["started_at"] < end) & (backups["finished_at"] > start)]
    series = running_at_each_moment(b)
    series = series[(series.index >= start) & (series.index < end)]
    if series.empty:
        return 0, None, pd.Series(dtype=int)
    when = series.idxmax()
    at = b[(b["started_at"] <= when) & (b["finished_at"] > when)]
    return int(series.max()), when, at["recurring_job"].astype(str).value_counts()


def _operations(backups: pd.DataFrame) -> pd.DataFrame:
    """Simulated backups as the charts' operations."""
    return pd.DataFrame({"volume": backups["volume"], "backup_target": backups["backup_target"],
                         "operation": "backup", "start": backups["started_at"],
                         "end": backups["finished_at"], "conflict": backups["lock_conflict"]})


def _comparison(results: Mapping[str, SimulationResult], start: pd.Timestamp,
                end: pd.Timestamp) -> pd.DataFrame:
    rows = {}
    for name, result in results.items():
        backups = result.frames["backups"]
        week = backups[(backups["started_at"] >= start) & (backups["started_at"] < end)]
        skipped = result.skipped_slots
        rows[name] = {
            "peak backups at once": peak_at_once(backups, start, end)[0],
            "worst hour's mean at once": round(float(
                running_at_once(_operations(week))["running"].max()), 1),
            "backups with a lock conflict": int((week["lock_conflict"] != "none").sum()),
            "runs skipped": int(((skipped["slot"] >= start) & (skipped["slot"] < end)).sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _joining_default(fleet: Fleet, volumes: Sequence[str], commands: Sequence[str]
                     ) -> list[str]:
    """Volumes not in the default group today (they have labels of their own) that the
    label commands would put in it (commands: one per volume, in ``volumes``' order)."""
    in_default = {v.name for v in fleet.volumes
                  if DEFAULT_GROUP in v.groups or not (v.groups or v.jobs)}
    return [v for v, cmd in zip(volumes, commands, strict=False)
            if v not in in_default and DEFAULT_LABEL in cmd]


@dataclass(repr=False)
class Stagger:
    """One backup RecurringJob split into parts that start one after another, and the
    week simulated with the current jobs and with the parts (same draws). ``advice``:
    the parts, manifests and commands; ``part_volumes``: each part's volumes;
    ``before``/``after``: the simulations (from :data:`WARM_UP` before ``start``);
    ``comparison``: one row per schedule; ``joining_default``: volumes with labels of
    their own that the commands would add to the ``default`` group."""

    advice: StaggerAdvice
    part_volumes: list[list[str]]
    start: pd.Timestamp
    end: pd.Timestamp
    comparison: pd.DataFrame
    joining_default: list[str]
    before: SimulationResult = field(repr=False)
    after: SimulationResult = field(repr=False)

    @property
    def reason(self) -> str:
        """Why, in numbers: backups at once before and after, the parts' spacing."""
        return self.advice.reason

    @property
    def manifests(self) -> str:
        """The parts' RecurringJob manifests (YAML, ``---`` between them)."""
        return self.advice.manifests

    @property
    def commands(self) -> list[str]:
        """``kubectl`` commands: label each volume into its part's group, then delete
        the old job (printed, never run; see :attr:`caution`)."""
        return list(self.advice.commands)

    @property
    def caution(self) -> str | None:
        """What to check in the commands before running them, or None."""
        if not self.joining_default:
            return None
        return (f"the commands add {DEFAULT_LABEL} to {len(self.joining_default)} "
                f"volume(s) that are not in the default group today "
                f"({', '.join(self.joining_default)}): drop that label from their commands "
                "unless you want them in the default group's RecurringJobs")

    @property
    def table(self) -> pd.DataFrame:
        """One row per part: ``job``, ``cron``, ``concurrency``, ``groups``, ``volumes``."""
        return pd.DataFrame([{"job": spec.name, "cron": cron, "concurrency": spec.concurrency,
                              "groups": ", ".join(spec.groups), "volumes": len(vs)}
                             for (spec, cron), vs in zip(self.advice.parts, self.part_volumes,
                                                         strict=True)])

    def _results(self) -> dict[str, SimulationResult]:
        return dict(zip(_SCHEDULES, (self.before, self.after), strict=True))

    def plot_running(self, day: str | pd.Timestamp | None = None, *, ax: Any = None) -> Any:
        """Backups running at once, moment by moment, over one UTC ``day`` (default: the
        week's first), simulated with the current jobs and with the parts."""
        from advisor.report import charts

        d0 = self.start if day is None else utc(day).floor("D")
        d1 = d0 + pd.Timedelta(days=1)
        colors = (charts.OKABE_ITO["orange"], charts.OKABE_ITO["blue"])
        with charts.chart_style():
            if ax is None:
                from matplotlib.figure import Figure

                ax = Figure(figsize=(11, 4), layout="constrained").add_subplot()
            for (name, result), color in zip(self._results().items(), colors, strict=True):
                series = running_at_each_moment(result.frames["backups"])
                series = series[(series.index >= d0 - WARM_UP) & (series.index < d1)]
                ax.step(series.index, series.to_numpy(), where="post", color=color,
                        label=name)
            ax.set_xlim(d0, d1)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("time (UTC)")
            ax.set_ylabel("backups running at once")
            ax.set_title(f"Backups running at once on {d0:%A %Y-%m-%d}, simulated "
                         f"({self.advice.job} now and in {len(self.part_volumes)} parts)",
                         parse_math=False)
            ax.legend(loc="upper right")
            return ax

    def plot_heatmaps(self, axes: Sequence[Any] | None = None) -> list[Any]:
        """The week's hour-of-week heatmaps of backups running at once, current and
        staggered (two axes, default a new figure's), on one colour scale."""
        from advisor.report import charts

        with charts.chart_style():
            if axes is None:
                from matplotlib.figure import Figure

                axes = Figure(figsize=(11, 8), layout="constrained").subplots(2, 1)
            axes = list(axes)
            for ax, (name, result) in zip(axes, self._results().items(), strict=True):
                b = result.frames["backups"]
                week = b[(b["started_at"] >= self.start) & (b["started_at"] < self.end)]
                charts.concurrency_heatmap(
                    _operations(week), ax=ax,
                    title=f"Backups running at once, {name} schedule (simulated)")
            top = max(ax.images[0].get_clim()[1] for ax in axes if ax.images)
            for ax in axes:
                if ax.images:
                    ax.images[0].set_clim(0, top)
        return axes

    def __repr__(self) -> str:
        c = self.comparison["peak backups at once"]
        return (f"Stagger({self.advice.job} in {len(self.part_volumes)} parts: peak backups "
                f"at once {c['current']} now, {c['staggered']} staggered)")

    def _repr_html_(self) -> str:
        caution = f"<p><b>Caution</b>: {html.escape(self.caution)}</p>" if self.caution else ""
        return (f"<p>{html.escape(self.reason)}</p>" + self.table.to_html(index=False)
                + self.comparison.to_html() + caution)


def plan_stagger(frames: Mapping[str, pd.DataFrame], fits: DurationFits, job: str, *,
                 parts: int, concurrency: int, settings: Settings,
                 namespace: str = NAMESPACE) -> Stagger:
    """``job`` of the history split into ``parts`` at ``concurrency`` each, simulated
    over ``settings``' week (its cluster, version and seed) before and after.

    The volumes are dealt round-robin to the parts slowest first (by p95 backup), which
    balances them; a part's p95 run is its volumes' p95 backups spread over its
    ``concurrency`` lanes, and at least its slowest volume's p95."""
    fleet, _ = fleet_from_history(frames, fits, settings.cluster)
    cluster = history_cluster(frames, settings.cluster)
    specs = {j.name: j for j in fleet.jobs}
    members = run_members(fleet)
    if job not in members:
        raise ValueError(f"no backup RecurringJob {job!r} in the history; backup jobs: "
                         f"{sorted(members)}")
    if not 2 <= parts <= len(members[job]) or concurrency < 1:
        raise ValueError(f"{job} backs up {len(members[job])} volumes: need 2 <= parts <= "
                         f"{len(members[job])} and concurrency >= 1")
    p95 = fits.preferred(cluster).set_index("volume")["p95_s"]
    volumes = sorted(members[job], key=lambda v: -p95[v])
    part_volumes = [volumes[k::parts] for k in range(parts)]
    run_p95_s = max(max(p95[vs].max(), p95[vs].sum() / concurrency) for vs in part_volumes)
    advice = split_job(specs[job], len(volumes), concurrency, run_p95_s, parts,
                       volumes=volumes, namespace=namespace)
    window = settings.window(frames["backups"])
    start, end = window.start, window.end
    before = simulate(fleet, start - WARM_UP, end, version=settings.version,
                      seed=settings.seed)
    after = simulate(staggered_fleet(fleet, advice, volumes), start - WARM_UP, end,
                     version=settings.version, seed=settings.seed)
    comparison = _comparison(dict(zip(_SCHEDULES, (before, after), strict=True)), start, end)
    return Stagger(advice, part_volumes, start, end, comparison,
                   _joining_default(fleet, volumes, advice.commands), before, after)
