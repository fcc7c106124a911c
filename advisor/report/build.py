"""The weekly report's one structure: what an SRE reads on Monday, built from the history.

:func:`build_report` runs the model on one cluster's history (durations, risk of the
current schedules over the reported ISO week, the smallest safe intervals), compares the
prediction with the week's Backups, and gathers what the renderers show: a summary, each
job's advice, each volume's figures, what changed since the previous report, the data's
quality and the assumptions made, and the data behind every chart. No I/O: the
renderers (:mod:`advisor.report.render`) write files.

The reported week is an ISO week (Monday 00:00 UTC to the next Monday). Observed figures
count the Backups asked for (else started, else collected) in it; predicted figures are
the model's for the current schedules over the same week.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from advisor import __version__
from advisor.advice import Analysis, Settings, analyse
from advisor.advice.fit import in_week, week_conflicts, week_fit
from advisor.longhorn import BACKUPSTORE_TASKS
from advisor.longhorn.manifests import job_labels_and_parameters
from advisor.model.concurrency import running_at_once
from advisor.model.durations import DurationFits, backup_observations
from advisor.model.observed import OBSERVED_KINDS
from advisor.model.simulate import run_members
from advisor.model.trend import Trend, volume_trends
from advisor.report.changes import changes_since
from advisor.report.recovery import recovery_rows, recovery_summary
from advisor.schedules import interval_of
from advisor.schema import utc
from advisor.sources.base import Problem
from advisor.units import duration as dur
from advisor.units import percent as pct

__all__ = ["REPORT_BACKUP_COLUMNS", "REPORT_SCHEMA_VERSION", "JobReport", "Report",
           "build_report"]

REPORT_SCHEMA_VERSION = 2
"""Version of the report's JSON layout (``report.schema.json``). 2: the summary's
``recovery`` and ``fit``, and ``recovery_points``."""
DETAILED = 20
"""Volumes given their own charts: the riskiest."""
REPORT_BACKUP_COLUMNS = ("cluster", "backup_target", "volume", "backup", "recurring_job",
                         "state", "requested_at", "started_at", "finished_at",
                         "last_synced_at", "collected_at", "duration_s", "censored",
                         "size_bytes", "new_upload_bytes", "backup_mode", "lock_conflict",
                         "deletion_requested_at", "deleted_at")
"""The Backup columns :func:`build_report` reads (a store need not read the others):
with those the fits read a backup's duration and mode by, so that the detailed
volumes' charts show what their fits and trends were made of."""
Progress = Callable[[str], None]


@dataclass(frozen=True)
class JobReport:
    """One RecurringJob's advice: the recommendation, why, and how to apply it.
    ``curve``: the worst volume's conflict probability per run at each interval the
    search scored (``interval_s``, ``p``, ``p_lo``, ``p_hi``: ± 2 se)."""

    job: str
    kind: str
    current_cron: str
    recommended_cron: str
    changed: bool
    p_per_run_now: float | None
    p_per_run_after: float | None
    reason: str
    volumes: int
    current_interval_s: float | None
    recommended_interval_s: float | None
    yaml: str | None
    patch: str | None
    curve: pd.DataFrame
    concurrency: int | None = None
    """The recommended ``spec.concurrency`` (kind ``concurrency``)."""
    split: dict | None = None
    """The slow volumes moved to a new job (kind ``split``): as ``recommend -o json``
    gives it."""
    recovery: dict | None = None
    """What the advice does to the job's volumes' recovery points, predicted
    (:meth:`~advisor.advice.analyse.Analysis.recovery_change`)."""

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"job": self.job, "kind": self.kind, "current_cron": self.current_cron,
                "recommended_cron": self.recommended_cron, "changed": self.changed,
                "p_per_run_now": self.p_per_run_now, "p_per_run_after": self.p_per_run_after,
                "reason": self.reason, "volumes": self.volumes,
                "current_interval_s": self.current_interval_s,
                "recommended_interval_s": self.recommended_interval_s,
                "yaml": self.yaml, "patch": self.patch, "curve": _records(self.curve),
                "concurrency": self.concurrency, "split": self.split,
                "recovery": self.recovery}


@dataclass(frozen=True)
class Report:
    """Everything the weekly report shows, as plain data and DataFrames.

    ``volumes``: one row per volume, riskiest first (see :data:`VOLUME_COLUMNS`).
    ``operations``: the week's observed operations (``volume``, ``backup_target``,
    ``operation``, ``start``, ``end``, ``conflict``) for the timeline and heatmap charts.
    ``durations``: the completed and censored backups of the detailed volumes
    (``volume``, ``started_at``, ``duration_s``, ``censored``). ``detailed``: the volumes
    given their own charts. ``fits``: each volume's fitted durations, one row per volume
    (its incremental fit, else its other: :meth:`DurationFits.preferred`).
    """

    meta: dict
    summary: dict
    jobs: list[JobReport]
    volumes: pd.DataFrame
    changes: dict | None
    data_quality: dict
    operations: pd.DataFrame
    durations: pd.DataFrame
    detailed: list[str]
    fits: pd.DataFrame = field(repr=False)
    running_at_once: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    trends: dict[str, Trend] = field(default_factory=dict, repr=False)
    recovery: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    """Per volume, the week's recovery points observed and predicted
    (:data:`~advisor.report.recovery.RECOVERY_COLUMNS`), the most lost first."""

    def to_dict(self) -> dict:
        """The JSON form: every number the HTML shows (``report.schema.json``), the
        charts' too: the backups running at once per target and hour of the week, each
        detailed volume's duration trend, each job's risk-against-interval curve."""
        trends = [{"volume": v, "n": t.n, "n_censored": t.n_censored, "method": t.method,
                   "slope_per_day": _finite(t.slope_per_day),
                   "slope_se": _finite(t.slope_se), "significant": bool(t.significant),
                   "p99_now_s": _finite(t.p99_now_s), "interval_s": t.interval_s,
                   "crossing_at": _iso(t.crossing_at), "crossing_lo": _iso(t.crossing_lo),
                   "crossing_hi": _iso(t.crossing_hi), "note": t.note}
                  for v, t in self.trends.items()]
        return {"schema_version": REPORT_SCHEMA_VERSION, "meta": self.meta,
                "summary": self.summary, "jobs": [j.to_dict() for j in self.jobs],
                "volumes": _records(self.volumes), "changes": self.changes,
                "data_quality": self.data_quality, "detailed": list(self.detailed),
                "running_at_once": _records(self.running_at_once), "trends": trends,
                "recovery_points": _records(self.recovery)}

    def plot_timeline(self, start: str | pd.Timestamp | None = None,
                      end: str | pd.Timestamp | None = None, *,
                      volumes: Sequence[str] | None = None, ax: Any = None) -> Any:
        """The week's backupstore operations, one row per volume (``volumes``, default
        the detailed ones), from ``start`` to ``end`` (UTC; default the week), conflicts
        marked (:func:`advisor.report.charts.timeline`), in the report's style."""
        from advisor.report import charts

        with charts.chart_style():
            return charts.timeline(
                self.operations, start=None if start is None else utc(start),
                end=None if end is None else utc(end),
                volumes=self.detailed if volumes is None else list(volumes), ax=ax,
                title=f"Backupstore operations, week {self.meta['week']} (UTC)")

    def plot_concurrency(self, backup_target: str | None = None, *, ax: Any = None) -> Any:
        """The hour-of-week heatmap of backups running at once on ``backup_target``
        (default: the one with the most backups;
        :func:`advisor.report.charts.concurrency_heatmap`), in the report's style."""
        from advisor.report import charts

        with charts.chart_style():
            return charts.concurrency_heatmap(self.operations, backup_target=backup_target,
                                              ax=ax)

    def _repr_html_(self) -> str:
        s = self.summary
        return (f"<p>Longhorn backup report {html.escape(self.meta['week'])}, cluster "
                f"{html.escape(self.meta['cluster'])}: {s['volumes_at_risk']} of "
                f"{s['volumes']} volumes at risk; {s['conflicts_observed']} lock conflicts "
                f"observed, {s['conflicts_predicted']:.1f} predicted.</p>")


VOLUME_COLUMNS = ("volume", "jobs", "at_risk", "p_conflict_per_run", "p_conflict_per_run_se",
                  "p_conflict_per_week", "expected_conflicts_per_week",
                  "skipped_runs_per_week", "observed_conflicts_week", "failed_backups_week",
                  "p95_s", "p99_s", "interval_s", "min_safe_interval_s", "margin_s",
                  "p99_crosses_at", "duration_source")
"""The per-volume table: risk per run (with its standard error) and per week, conflicts
and skipped runs expected per week, this week's observed conflicts and failed backups,
p95 / p99 backup duration, the shortest interval of its jobs, its minimum safe interval
(:meth:`~advisor.advice.analyse.Analysis.minimum_safe_intervals`; NaN: no ladder step is
safe), the margin (interval - p99;
negative: backups outlast the interval), when the p99 trend reaches the interval, and
whether the duration is the volume's own fit or the fleet prior."""


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _records(df: pd.DataFrame) -> list[dict]:
    out = df.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].map(lambda t: None if pd.isna(t) else t.isoformat())
    return [{k: (None if (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA
                 else v.item() if isinstance(v, np.generic) else v)
             for k, v in row.items()} for row in out.astype(object).to_dict("records")]


def _operations(backups: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
                ) -> pd.DataFrame:
    """The week's backups (start to finish; no finish: NaT) and deletions seen (asked for
    to removed), each with its volume, target and lock conflict."""
    b = backups
    run_start = b["started_at"].fillna(b["requested_at"])
    keep = (run_start < end) & (b["finished_at"].fillna(end) >= start) & run_start.notna()
    ops = [pd.DataFrame({"volume": b.loc[keep, "volume"].astype(str),
                         "backup_target": b.loc[keep, "backup_target"].astype(str),
                         "operation": "backup", "start": run_start[keep],
                         "end": b.loc[keep, "finished_at"],
                         "conflict": b.loc[keep, "lock_conflict"].astype(str)})]
    d = b[b["deletion_requested_at"].notna() & (b["deletion_requested_at"] < end)
          & (b["deleted_at"].fillna(end) >= start)]
    if len(d):
        ops.append(pd.DataFrame({"volume": d["volume"].astype(str),
                                 "backup_target": d["backup_target"].astype(str),
                                 "operation": "deletion",
                                 "start": d["deletion_requested_at"], "end": d["deleted_at"],
                                 "conflict": "none"}))
    out = pd.concat(ops, ignore_index=True)
    return out.sort_values(["volume", "start"], kind="stable").reset_index(drop=True)


def _volume_table(risk_table: pd.DataFrame, fleet, fits: DurationFits, backups: pd.DataFrame,
                  week: tuple[pd.Timestamp, pd.Timestamp], settings: Settings,
                  cluster: str) -> pd.DataFrame:
    intervals = {j.name: interval_of(j.cron, median=True)
                 for j in fleet.jobs if j.task in BACKUPSTORE_TASKS}
    jobs_of: dict[str, list[str]] = {}
    for job, vols in run_members(fleet).items():
        if job in intervals:
            for v in vols:
                jobs_of.setdefault(v, []).append(job)
    fit = fits.preferred(cluster).set_index("volume")
    b = backups[in_week(backups, *week)]
    seen = b[b["lock_conflict"].isin(OBSERVED_KINDS)].groupby("volume").size()
    failed = b[b["state"] == "Error"].groupby("volume").size()
    rows = []
    for r in risk_table.itertuples():
        vol = str(r.volume)
        ivs = [intervals[j] for j in jobs_of.get(vol, ()) if intervals.get(j)]
        interval = min(ivs) if ivs else np.nan
        p95 = float(fit.at[vol, "p95_s"]) if vol in fit.index else np.nan
        p99 = float(fit.at[vol, "p99_s"]) if vol in fit.index else np.nan
        crosses = None  # (the trend's, below)
        p, se = float(r.p_conflict_per_run), float(r.p_conflict_per_run_se)
        skipped = float(r.skipped_runs_per_week)
        rows.append({
            "volume": vol, "jobs": ", ".join(jobs_of.get(vol, ())),
            "at_risk": False,  # (the settings' rule, below)
            "p_conflict_per_run": p, "p_conflict_per_run_se": se,
            "p_conflict_per_week": float(r.p_conflict_per_week),
            "expected_conflicts_per_week": float(r.expected_conflicts_per_week),
            "skipped_runs_per_week": skipped,
            "observed_conflicts_week": int(seen.get(vol, 0)),
            "failed_backups_week": int(failed.get(vol, 0)),
            "p95_s": p95, "p99_s": p99, "interval_s": interval,
            "margin_s": interval - p99,
            "p99_crosses_at": crosses,
            "duration_source": str(fit.at[vol, "source"]) if vol in fit.index else "",
        })
    df = pd.DataFrame(rows, columns=list(VOLUME_COLUMNS))
    if len(df):
        df["at_risk"] = settings.at_risk(df)
    df["p99_crosses_at"] = pd.to_datetime(df["p99_crosses_at"], utc=True)
    return df.sort_values(["at_risk", "p_conflict_per_run", "skipped_runs_per_week"],
                          ascending=False, kind="stable").reset_index(drop=True)


def _jobs(a: Analysis, members: Mapping[str, int], extras: Mapping[str, dict]
          ) -> list[JobReport]:
    """``extras``: each job's collected ``labels`` and ``parameters``, which its printed
    manifest must keep (:func:`job_labels_and_parameters`)."""
    specs = {j.name: j for j in a.fleet.jobs}
    out = []
    for r in a.recommendations:
        out.append(JobReport(
            r.job, r.kind, r.current_cron, r.recommended_cron, r.changed,
            r.p_per_run_now, r.p_per_run_after, r.reason, members.get(r.job, 0),
            r.current_interval_s, r.recommended_interval_s,
            "---\n".join(r.manifests(specs[r.job], **extras.get(r.job, {}))) or None
            if r.changed else None,
            "\n".join(r.patches) or None if r.changed else None,
            r.curve.drop(columns="se"), r.concurrency,
            None if r.split is None else r.split.to_dict(), a.recovery_change(r.job)))
    return out


def _top_changes(jobs: list[JobReport], volumes: pd.DataFrame, target: float
                 ) -> list[str]:
    """The three changes that remove the most risk: recommended crons that meet the
    target or cut the worst volume's risk by a tenth or more (largest cut first), then
    volumes whose backups outlast their interval (a cron cannot fix those: the backup
    is too slow), then the other recommended crons."""
    def cut(j: JobReport) -> float:
        return (j.p_per_run_now or 0) - (j.p_per_run_after or 0)

    def text(j: JobReport) -> str:
        risk = (f"(worst volume's conflict per run {pct(j.p_per_run_now)} -> "
                f"{pct(j.p_per_run_after)})")
        if j.split is not None:
            sp = j.split
            return (f"RecurringJob {j.job}: move {len(sp['volumes'])} slow volume(s) to a "
                    f"new job {sp['job']} ({sp['cron']!r}); the others stay at "
                    f"{j.recommended_cron!r} {risk}")
        if j.concurrency is not None:
            return f"RecurringJob {j.job}: concurrency {j.concurrency} {risk}"
        return f"RecurringJob {j.job}: cron {j.current_cron!r} -> {j.recommended_cron!r} {risk}"

    changed = sorted((j for j in jobs if j.changed), key=lambda j: -cut(j))
    strong = [j for j in changed if (j.p_per_run_after or 1) <= target
              or cut(j) >= 0.1 * (j.p_per_run_now or 0)]
    out = [text(j) for j in strong]
    slow = volumes[volumes["margin_s"] < 0].sort_values("margin_s")
    for jobs_of, g in slow.groupby("jobs", sort=False):  # (one item per set of jobs)
        names = ", ".join(f"{r.volume} ({dur(r.p99_s)})" for r in g.head(3).itertuples())
        more = f" and {len(g) - 3} more" if len(g) > 3 else ""
        out.append(f"{len(g)} volume(s) of {jobs_of} back up slower than their "
                   f"{dur(g['interval_s'].iloc[0])} interval at p99: {names}{more}; runs "
                   "skip fire times, and a faster backup or a longer interval, not an "
                   "offset, fixes it")
    out += [text(j) for j in changed if j not in strong]
    return out[:3]


def _skipped_runs(risk) -> float:
    """Fire times skipped a week, all jobs together: a skipped slot skips the run for
    every volume of the job, so each job counts once (its largest per-volume figure),
    not once per volume."""
    per_job: dict[str, float] = {}
    for v in risk.volumes:
        for job, e in v.skipped_per_week.items():
            per_job[job] = max(per_job.get(job, 0.0), float(e.mean))
    return float(sum(per_job.values()))


def build_report(frames: Mapping[str, pd.DataFrame], fits: DurationFits,
                 settings: Settings | None = None, *, previous: Mapping | None = None,
                 problems: Sequence[Problem] = (), detailed: int = DETAILED,
                 progress: Progress | None = None) -> Report:
    """The report of one cluster's history under ``settings`` (default
    :class:`~advisor.advice.Settings`: the last complete ISO week of the history, its only
    cluster, Longhorn's latest rules, a 1 % target). ``previous``: the previous report's
    JSON, for what changed. ``problems``: the records a load skipped or kept with warnings
    (a store keeps only what was usable: its skipped records were reported when
    collected). ``detailed``: how many of the riskiest volumes get their own charts.
    ``progress`` is told each stage's name as it starts."""
    settings = Settings() if settings is None else settings
    a = analyse(frames, fits, settings, progress=progress)
    (progress or (lambda _: None))("the report")
    start, end, cluster, risk = a.window.start, a.window.end, a.cluster, a.assessment
    b = a.backups
    volumes = _volume_table(risk.table, a.fleet, fits, b, (start, end), a.settings, cluster)
    members = {j: len(v) for j, v in run_members(a.fleet).items()}
    jobs = _jobs(a, members, job_labels_and_parameters(frames["jobs"], cluster))
    rows = recovery_rows(a)
    summary = _summary(a, b[in_week(b, start, end)], volumes, jobs, settings.target)
    summary |= {"recovery": recovery_summary(a, rows), "fit": week_fit(a, frames["jobs"])}
    data_quality = _data_quality(b, fits, cluster, problems, a.notes, settings.version)
    meta = {"advisor_version": __version__, "generated_at": _iso(pd.Timestamp.now(tz="UTC")),
            "week": a.window.label, "week_start": _iso(start), "week_end": _iso(end),
            "cluster": cluster, "longhorn_version": settings.version,
            "target_risk": settings.target,
            "model_window": [_iso(risk.start), _iso(risk.end)]}
    top = volumes["volume"].head(detailed).tolist()
    durations = _durations(b[b["volume"].isin(top)], fits, cluster)
    ops = _operations(b, start, end)
    # one trend model for the table's "p99 reaches interval" and the trend charts: each
    # volume's, fitted with its duration fits, read at the week's end
    trends_all = volume_trends(fits.trends(cluster),
                               volumes.set_index("volume")["interval_s"], end)
    safe = a.minimum_safe_intervals().set_index("volume")["min_safe_interval_s"]
    volumes["min_safe_interval_s"] = volumes["volume"].map(safe).astype(float)
    volumes["p99_crosses_at"] = pd.to_datetime(
        volumes["volume"].map(lambda v: trends_all[v].crossing_at), utc=True)
    trends = {v: trends_all[v] for v in top}
    return Report(meta, summary, jobs, volumes, changes_since(previous, summary, volumes, jobs),
                  data_quality, ops, durations, top, fits.preferred(cluster),
                  running_at_once(ops), trends, rows)


def _summary(a: Analysis, week_b: pd.DataFrame, volumes: pd.DataFrame,
             jobs: list[JobReport], target: float) -> dict:
    """The report's headline figures: volumes at risk, the week's lock conflicts
    observed against those predicted (:func:`~advisor.advice.fit.week_conflicts`),
    failed backups (``week_b``: the week's Backups), skipped runs, and the three
    changes that matter most."""
    c = week_conflicts(a)
    return {
        "volumes": len(volumes),
        "volumes_at_risk": int(volumes["at_risk"].sum()),
        "conflicts_observed": c["observed"],
        "conflicts_observed_by_kind": c["by_kind"],
        "conflicts_predicted": c["predicted"],
        "conflicts_predicted_range": c["range"],
        "backups_week": len(week_b),
        "failed_backups": int((week_b["state"] == "Error").sum()),
        "skipped_runs_predicted": _skipped_runs(a.assessment),
        "top_changes": _top_changes(jobs, volumes, target),
        "over_target_after": a.over_target_after()["volume"].tolist(),
    }


def _data_quality(b: pd.DataFrame, fits: DurationFits, cluster: str,
                  problems: Sequence[Problem], notes: Sequence[str], version: str) -> dict:
    """What the report rests on: the cluster's Backups (``b``) and how many are censored,
    the span of the history, the volumes on the fleet prior, how deletions were timed,
    the records skipped or warned about, the fits' problems and the model's
    assumptions (``notes``)."""
    fit_t = fits.table[fits.table["cluster"] == cluster]
    prior = sorted(set(fit_t.loc[fit_t["source"] != "own_history", "volume"].astype(str)))
    dels = fits.deletions[fits.deletions["cluster"] == cluster]
    measured = b[b["deleted_at"].notna() & b["deletion_requested_at"].notna()]
    return {
        "backups": len(b),
        "backups_censored": int(b["censored"].fillna(False).sum()),
        "history_from": None if b.empty else _iso(b["started_at"].min()),
        "history_to": None if b.empty else _iso(b["collected_at"].max()),
        "volumes_on_fleet_prior": prior,
        "deletion_durations": (
            f"{len(measured)} deletions measured by advisor watch; the model still uses "
            "the stated prior" if len(measured) else "no deletion was measured: every "
            "volume's deletion duration is the stated prior")
        + (f" ({dels['note'].dropna().iloc[0]})" if len(dels) and dels["note"].notna().any()
           else ""),
        "records_skipped": [str(p) for p in problems if p.severity == "skipped"],
        "records_with_warnings": [str(p) for p in problems if p.severity == "warning"],
        "fit_problems": [str(p) for p in fits.problems],
        "assumptions": list(notes),
        "longhorn_version": version,
        "schedule_time_zone": "UTC (a RecurringJob's CronJob has no spec.timeZone, so it "
                              "fires in the kube-controller-manager's time zone: UTC on "
                              "most clusters)",
    }


def _durations(b: pd.DataFrame, fits: DurationFits, cluster: str) -> pd.DataFrame:
    """Each backup's duration as the fits read it (a censored one: how long it lasted at
    least), in the mode of the volume's preferred fit: what its charts and trend show
    (``volume``, ``started_at``, ``duration_s``, ``censored``)."""
    shown = fits.preferred(cluster)[["volume", "mode"]].astype(str)
    return backup_observations(b).merge(shown, on=["volume", "mode"])[
        ["volume", "started_at", "duration_s", "censored"]].astype({"volume": str})


def _iso(t: pd.Timestamp) -> str | None:
    return None if t is None or pd.isna(t) else pd.Timestamp(t).isoformat()
