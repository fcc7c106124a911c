"""The exploration API: what notebooks (and the CLI's stages) call, in a few functions.

Each result holds DataFrames, renders itself in Jupyter (``_repr_html_``) and plots with
the report's chart functions (``.plot(ax=None)`` returns the axes)::

    >>> import advisor
    >>> history = advisor.load_history(sample=True)
    >>> history.summary().clusters
    ['sample']
    >>> risk = advisor.assess_risk(history)
    >>> risk.table.columns[1:4].tolist()
    ['volume', 'jobs', 'at_risk']
    >>> change = advisor.what_if(history, {"hourly": {"cron": "30 * * * *"}})
    >>> sorted(change.table.columns)[:3]
    ['changed', 'p_conflict_per_run_after', 'p_conflict_per_run_before']

Risk is scored over one ISO week: by default the history's last complete week (the
week the weekly report covers); ``week="2026-W47"`` scores that week instead. Times
are UTC.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from advisor import schema
from advisor.advice import DEFAULT_TARGET, Analysis, Settings, analyse, gate
from advisor.advice.gate import GateResult
from advisor.advice.search.outcome import Recommendation
from advisor.advice.settings import parse_rpo
from advisor.advice.stagger import Offsets, Stagger, peak_at_once, plan_offsets, plan_stagger
from advisor.history import HistorySummary, summarize
from advisor.longhorn import LATEST, NAMESPACE
from advisor.model.durations import DurationFits, backup_observations, fit_durations
from advisor.model.fleet import Fleet
from advisor.model.risk import RiskAssessment
from advisor.sources.base import Problem

__all__ = ["Advice", "History", "Offsets", "Risk", "Stagger", "WhatIf", "assess_risk",
           "build_report", "check", "load_history", "offsets", "recommend", "stagger",
           "what_if"]


@dataclass(repr=False)
class History:
    """Backup history: the frames (``backups``, ``jobs``, ``volumes``, ...), their
    duration fits, and the records the load skipped or warned about."""

    frames: dict[str, pd.DataFrame]
    fits: DurationFits
    problems: list[Problem] = field(default_factory=list)
    source: str = ""

    @property
    def backups(self) -> pd.DataFrame:
        """One row per Backup (the latest observation of each)."""
        return self.frames["backups"]

    @property
    def jobs(self) -> pd.DataFrame:
        """The RecurringJobs."""
        return self.frames["jobs"]

    @property
    def volumes(self) -> pd.DataFrame:
        """The Volumes with their recurring-job labels."""
        return self.frames["volumes"]

    def summary(self) -> HistorySummary:
        """Clusters, volumes, jobs, backups by state, censored, conflicts."""
        return summarize(self.frames)

    def _of(self, cluster: str | None) -> pd.DataFrame:
        b = self.backups
        return b if cluster is None else b[b["cluster"] == cluster]

    def durations(self, volume: str, *, cluster: str | None = None) -> pd.DataFrame:
        """One volume's backups: ``started_at``, ``duration_s`` (NaN: censored, still
        running or failed), ``censored``, ``recurring_job``, ``state``."""
        b = self._of(cluster)
        b = b[b["volume"] == volume]
        return b[["started_at", "duration_s", "censored", "recurring_job", "state"]
                 ].sort_values("started_at").reset_index(drop=True)

    def plot(self, volume: str, *, interval_s: float | None = None,
             cluster: str | None = None, ax: Any = None) -> Any:
        """The duration distribution of ``volume``: completed backups as a histogram, its
        fitted quantiles (:meth:`DurationFits.preferred`), the job interval
        ``interval_s`` (seconds, e.g. the report's ``volumes.interval_s``) and censored
        backups as a rug at how long they lasted at least: each backup read as the fits
        read it (:func:`~advisor.model.durations.backup_observations`), in the fit's mode,
        as the report's charts do."""
        from advisor.report import charts

        b = self._of(cluster)
        obs = backup_observations(b[b["volume"] == volume])
        fit = self.fits.preferred(cluster).query("volume == @volume")
        q = None
        if len(fit):
            q = {k: float(fit[f"{k}_s"].iloc[0]) for k in ("p50", "p95", "p99")}
            obs = obs[obs["mode"] == fit["mode"].iloc[0]]
        with charts.chart_style():
            return charts.duration_distribution(
                obs.loc[~obs["censored"], "duration_s"], quantiles=q, interval_s=interval_s,
                censored_s=obs.loc[obs["censored"], "duration_s"],
                title=f"Volume {volume}: backup durations", ax=ax)

    def conflicts(self, *, cluster: str | None = None) -> pd.DataFrame:
        """The lock conflicts Longhorn reported on the history's Backups: one row per
        volume (most first), one column per ``lock_conflict`` kind, counts."""
        b = self._of(cluster)
        kind = b["lock_conflict"].astype("string").fillna("none")
        hit = b[kind != "none"]
        t = pd.crosstab(hit["volume"].astype(str), kind[kind != "none"])
        t.columns.name, t.index.name = "lock_conflict", "volume"
        return t.loc[t.sum(axis=1).sort_values(ascending=False, kind="stable").index]

    def plot_conflicts(self, *, top: int = 15, cluster: str | None = None,
                       ax: Any = None) -> Any:
        """The ``top`` volumes with the most lock conflicts, stacked by kind."""
        from advisor.report import charts

        t = self.conflicts(cluster=cluster).head(top).iloc[::-1]  # barh draws bottom-up
        colors = [charts.OKABE_ITO[c] for c in ("vermillion", "orange", "reddish_purple",
                                                "bluish_green", "sky_blue", "black")]
        with charts.chart_style():
            if ax is None:
                from matplotlib.figure import Figure

                ax = Figure(figsize=(9, 1.4 + 0.32 * max(len(t), 3)),
                            layout="constrained").add_subplot()
            if t.empty:
                ax.text(0.5, 0.5, "no lock conflict in the history", ha="center",
                        transform=ax.transAxes)
            left = pd.Series(0, index=t.index)
            for i, k in enumerate(t.columns):
                ax.barh(t.index, t[k], left=left, height=0.7, label=k,
                        color=colors[i % len(colors)])
                left = left + t[k]
            if len(t):
                ax.set_yticks(range(len(t)), labels=list(t.index), parse_math=False)
                ax.legend(title="lock_conflict", loc="lower right")
            ax.set_xlabel("backups with a lock conflict (whole history)")
            ax.set_ylabel("volume")
            ax.set_title("Lock conflicts observed per volume")
            return ax

    def peak_at_once(self, start: str | pd.Timestamp, end: str | pd.Timestamp, *,
                     cluster: str | None = None) -> pd.DataFrame:
        """The most backups running at once on each backup target between ``start`` and
        ``end`` (UTC), counted moment by moment from their starts and ends (backups
        with no end left out), and what ran then: one row per target and RecurringJob,
        ``backup_target``, ``at``, ``peak``, ``recurring_job``, ``running`` (its backups
        then) and ``concurrency`` (the job's)."""
        s, e = schema.utc(start), schema.utc(end)
        jobs = self.jobs if cluster is None else self.jobs[self.jobs["cluster"] == cluster]
        conc = jobs.drop_duplicates("recurring_job").set_index("recurring_job")["concurrency"]
        rows = []
        for target, group in self._of(cluster).groupby("backup_target", observed=True):
            most, when, by_job = peak_at_once(group, s, e)
            rows += [{"backup_target": str(target), "at": when, "peak": most,
                      "recurring_job": j, "running": int(n), "concurrency": conc.get(j)}
                     for j, n in by_job.items()]
        return pd.DataFrame(rows, columns=["backup_target", "at", "peak", "recurring_job",
                                           "running", "concurrency"])

    def __repr__(self) -> str:
        s = self.summary()
        return (f"History({self.source!r}: {s.backups} backups of {s.volumes} volumes, "
                f"jobs {', '.join(s.jobs) or '-'}, clusters {', '.join(s.clusters) or '-'})")

    def _repr_html_(self) -> str:
        return (f"<p>History from {html.escape(self.source)}</p>"
                + self.summary()._repr_html_())


def load_history(store: str | Path | None = None, *, files: Sequence[str | Path] = (),
                 sample: bool = False, cluster: str = "default") -> History:
    """The history of a store (None: the default store), of ``files`` (kubectl JSON or
    YAML, manifests, CSV; tagged ``cluster``), or of the bundled sample fleet
    (``sample=True``), with its duration fits (a store keeps them; see
    :func:`advisor.inputs.model_inputs`)."""
    if sum(bool(x) for x in (store is not None, files, sample)) > 1:
        raise ValueError("give one of store, files, sample")
    if sample or files:
        from advisor.sample import load_sample
        from advisor.sources.files import load_files

        loaded = load_sample() if sample else load_files(list(files), cluster=cluster)
        f = loaded.frames
        fits = fit_durations(f["backups"], f["volumes"], f["backup_volumes"], jobs=f["jobs"])
        return History(f, fits, list(loaded.problems),
                       "the sample fleet" if sample else ", ".join(map(str, files)))
    from advisor.inputs import model_inputs, store_problems
    from advisor.store import HistoryStore

    hs = HistoryStore(store)
    inputs = model_inputs(hs, backup_columns=[c.name for c in schema.BACKUPS])
    return History(inputs.frames, inputs.fits, store_problems(hs), str(hs.path))


@dataclass
class Risk:
    """Each volume's risk under the current schedules: ``table`` (riskiest first:
    conflict per run and per week with standard errors, conflicts and skipped runs a
    week) and the model's ``assessment``."""

    analysis: Analysis = field(repr=False)

    @property
    def assessment(self) -> RiskAssessment:
        return self.analysis.assessment

    @property
    def fleet(self) -> Fleet:
        return self.analysis.fleet

    @property
    def notes(self) -> tuple[str, ...]:
        return self.analysis.notes

    @property
    def target(self) -> float:
        return self.analysis.settings.target

    @property
    def table(self) -> pd.DataFrame:
        """One row per volume, riskiest first."""
        return self.analysis.risk_table

    def plot(self, *, top: int = 20, ax: Any = None) -> Any:
        """The risk ranking of the ``top`` riskiest volumes."""
        from advisor.report import charts

        with charts.chart_style():
            return charts.risk_ranking(self.table, top=top, target=self.target, ax=ax)

    def __repr__(self) -> str:
        return f"Risk({self.analysis.summary()})"

    def _repr_html_(self) -> str:
        return self.assessment._repr_html_()


Rpo = str | float | Sequence[str] | None
"""A recovery-point objective: ``"2h"`` or seconds (every volume), or ``--rpo`` values
(``["2h", "hourly=30m"]``: :func:`~advisor.advice.settings.parse_rpo`)."""


def _settings(cluster: str | None, week: str | None, version: str, target: float,
              rpo: Rpo = None) -> Settings:
    every, per_job = (None, ()) if rpo is None else (
        (float(rpo), ()) if isinstance(rpo, int | float) else
        parse_rpo([rpo] if isinstance(rpo, str) else list(rpo)))
    return Settings(target=target, week=week, version=version, cluster=cluster,
                    rpo_s=every, job_rpo_s=per_job)


def assess_risk(history: History, *, cluster: str | None = None, week: str | None = None,
                version: str = LATEST, target: float = DEFAULT_TARGET) -> Risk:
    """Each volume's risk of a lock conflict and of skipped runs under the current
    RecurringJobs (Monte Carlo over ``week``'s fire times, Longhorn ``version``'s
    rules)."""
    return Risk(analyse(history.frames, history.fits,
                        _settings(cluster, week, version, target), advise=False))


@dataclass
class Advice:
    """Per backup RecurringJob: keep its cron or change it, why, and the patch.
    ``minimum_safe_intervals``: per volume, its minimum safe interval and what says so
    (:meth:`advisor.advice.analyse.Analysis.minimum_safe_intervals`);
    ``over_target_after``: the volumes still over the target once every change is
    applied (:meth:`~advisor.advice.analyse.Analysis.over_target_after`);
    ``recovery``: per job, what its advice does to its volumes' recovery points
    (:meth:`~advisor.advice.analyse.Analysis.recovery_change`); ``over_rpo``: the
    volumes whose p95 gap is over their RPO now or after
    (:meth:`~advisor.advice.analyse.Analysis.over_rpo`; empty without an RPO)."""

    recommendations: list[Recommendation]
    target: float = 0.01
    minimum_safe_intervals: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    over_target_after: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    recovery: dict[str, dict | None] = field(default_factory=dict, repr=False)
    over_rpo: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def table(self) -> pd.DataFrame:
        """One row per job: crons now and recommended, the worst volume's conflict
        per run before and after, the reason and the ``kubectl patch``."""
        return pd.DataFrame([{k: v for k, v in r.to_dict().items()}
                             for r in self.recommendations])

    def plot(self, job: str, *, ax: Any = None) -> Any:
        """The job's worst volume's conflict per run against the intervals the search
        scored, the current and recommended marked."""
        from advisor.report import charts

        [r] = [r for r in self.recommendations if r.job == job]
        with charts.chart_style():
            return charts.conflict_vs_interval(
                r.curve, current_s=float(r.current_interval_s or 0), target=self.target,
                recommended_s=r.recommended_interval_s if r.changed else None,
                title=f"RecurringJob {job}: its worst volume's conflict per run", ax=ax)

    def __repr__(self) -> str:
        changed = [r.job for r in self.recommendations if r.changed]
        return (f"Advice({len(self.recommendations)} backup jobs, {len(changed)} to change"
                + (f": {', '.join(changed)})" if changed else ")"))

    def _repr_html_(self) -> str:
        cols = ["job", "current_cron", "recommended_cron", "p_per_run_now",
                "p_per_run_after", "reason"]
        return self.table[cols].to_html(index=False, float_format=lambda x: f"{x:.3g}")


def recommend(history: History, *, target: float = DEFAULT_TARGET,
              cluster: str | None = None, week: str | None = None, version: str = LATEST,
              jobs: Sequence[str] | None = None, rpo: Rpo = None) -> Advice:
    """The smallest safe interval (and offset) per backup RecurringJob: the worst
    volume's conflict per run under ``target`` (p + 2 se), never lengthened past the
    ``rpo`` (:data:`Rpo`). Never applied: the advice holds the YAML and ``kubectl
    patch``."""
    a = analyse(history.frames, history.fits,
                _settings(cluster, week, version, target, rpo), jobs=jobs)
    return Advice(a.recommendations, target, a.minimum_safe_intervals(),
                  a.over_target_after(),
                  {r.job: a.recovery_change(r.job) for r in a.recommendations}, a.over_rpo())


@dataclass
class WhatIf:
    """Each volume's risk before and after a change of RecurringJobs: ``table`` has
    ``p_conflict_per_run_before/after`` and ``skipped_runs_per_week_before/after``
    and ``changed`` (the difference is more than twice its standard error)."""

    before: Risk
    after: Risk
    changes: dict[str, dict[str, Any]]
    namespace: str = NAMESPACE

    @property
    def patches(self) -> list[str]:
        """The ``kubectl patch`` commands that would apply the change (printed, never
        run): the cron through :func:`~advisor.longhorn.manifests.kubectl_patch` (which
        checks it parses as Longhorn's would), the other fields as a merge patch of
        their own."""
        from advisor.longhorn.manifests import kubectl_merge_patch, kubectl_patch

        out = []
        for job, fields in self.changes.items():
            if "cron" in fields:
                out.append(kubectl_patch(job, str(fields["cron"]), namespace=self.namespace))
            rest = {k: v for k, v in fields.items() if k != "cron"}
            if rest:
                out.append(kubectl_merge_patch(job, rest, namespace=self.namespace))
        return out

    @property
    def table(self) -> pd.DataFrame:
        """One row per volume, the largest fall in risk first."""
        cols = ["volume", "p_conflict_per_run", "p_conflict_per_run_se",
                "skipped_runs_per_week"]
        b = self.before.assessment.table[cols]
        a = self.after.assessment.table[cols]
        t = b.merge(a, on="volume", suffixes=("_before", "_after"))
        diff = t["p_conflict_per_run_after"] - t["p_conflict_per_run_before"]
        se = (t["p_conflict_per_run_se_before"] ** 2
              + t["p_conflict_per_run_se_after"] ** 2) ** 0.5
        t["changed"] = (diff.abs() > 2 * se) | (
            (t["skipped_runs_per_week_after"] - t["skipped_runs_per_week_before"]).abs()
            > 0.5)
        return t.assign(_d=diff).sort_values("_d", kind="stable").drop(columns="_d"
                                                                      ).reset_index(drop=True)

    def plot(self, *, top: int = 20, ax: Any = None) -> Any:
        """Conflict per run before and after for the ``top`` volumes that moved most."""
        from matplotlib.ticker import PercentFormatter

        from advisor.report import charts

        t = self.table
        # the volumes whose change is real first, then by how much they moved
        t = t.assign(_m=(t["p_conflict_per_run_after"] - t["p_conflict_per_run_before"]).abs()
                     ).sort_values(["changed", "_m"], ascending=False, kind="stable"
                                   ).head(top)
        with charts.chart_style():
            if ax is None:
                from matplotlib.figure import Figure

                ax = Figure(figsize=(9, 0.32 * max(len(t), 4) + 1.5)).add_subplot()
            y = range(len(t))
            ax.barh([i - 0.2 for i in y], t["p_conflict_per_run_before"], height=0.4,
                    color=charts.OKABE_ITO["orange"], label="before")
            ax.barh([i + 0.2 for i in y], t["p_conflict_per_run_after"], height=0.4,
                    color=charts.OKABE_ITO["blue"], label="after")
            ax.set_yticks(list(y), labels=[
                f"{v}{'' if c else ' (no real change)'}"
                for v, c in zip(t["volume"].astype(str), t["changed"], strict=True)],
                parse_math=False)
            ax.invert_yaxis()
            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
            ax.set_xlabel("lock-conflict probability per run (%)")
            ax.set_title("What if: " + "; ".join(
                f"{j}: {', '.join(f'{k}={v}' for k, v in c.items())}"
                for j, c in self.changes.items()), parse_math=False)
            ax.legend(loc="lower right")
            return ax

    def __repr__(self) -> str:
        what = "; ".join(f"{j}: {', '.join(f'{k}={v}' for k, v in c.items())}"
                         for j, c in self.changes.items())
        return f"WhatIf({what}: {int(self.table['changed'].sum())} volumes really change)"

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False, float_format=lambda x: f"{x:.3g}")


def what_if(history: History, changes: Mapping[str, Mapping[str, Any]], *,
            cluster: str | None = None, week: str | None = None,
            version: str = LATEST, target: float = DEFAULT_TARGET,
            namespace: str = NAMESPACE) -> WhatIf:
    """The risk before and after changing RecurringJobs: ``changes`` maps a job name to
    the fields to change (``cron``, ``retain``, ``concurrency``), e.g.
    ``{"hourly": {"cron": "30 * * * *", "retain": 12}}``. Both sides are scored over the
    same week with the same draws, so the difference is the change's. ``namespace``:
    Longhorn's, for the printed :attr:`WhatIf.patches`."""
    settings = _settings(cluster, week, version, target)
    after = analyse(history.frames, history.fits, settings, advise=False, changes=changes)
    before = analyse(history.frames, history.fits, settings, advise=False)
    return WhatIf(Risk(before), Risk(after), {k: dict(v) for k, v in changes.items()},
                  namespace)


def offsets(history: History, *, cluster: str | None = None) -> Offsets:
    """Start offsets between the backup RecurringJobs that share volumes: each job's
    busy window (its slowest volume's p95 backup plus p95 deletion) placed where it
    meets no other job's, or why no start does (see :mod:`advisor.advice.stagger`)."""
    return Offsets(plan_offsets(history.frames, history.fits, cluster))


def stagger(history: History, job: str, *, parts: int = 3, concurrency: int = 3,
            week: str | None = None, cluster: str | None = None, version: str = LATEST,
            namespace: str = NAMESPACE) -> Stagger:
    """``job`` split into ``parts`` RecurringJobs (``<job>-s1``...) of ``concurrency``
    each, starting one after another, and the ``week`` simulated with the current jobs
    and with the parts (same draws): ``comparison`` holds the peak backups at once, the
    worst hour's mean, backups with a lock conflict and runs skipped. Never applied:
    the result holds the manifests and the ``kubectl`` commands (in ``namespace``)."""
    return plan_stagger(history.frames, history.fits, job, parts=parts,
                        concurrency=concurrency, namespace=namespace,
                        settings=_settings(cluster, week, version, DEFAULT_TARGET))


def check(proposed: str | Path | Sequence[str | Path], history: History | None = None, *,
          target: float = DEFAULT_TARGET, week: str | None = None, version: str = LATEST,
          max_risk: float | None = None, rpo: Rpo = None) -> GateResult:
    """Judge proposed RecurringJobs (manifest files or folders) before they are applied,
    as ``advisor check`` does: against ``history``'s volumes and durations when given
    (their lock risk over ``week``, against ``target`` as in every verb), structurally
    otherwise; ``rpo`` (:data:`Rpo`): the longest gap between a volume's backups its
    schedules may promise. ``max_risk``: the old name of ``target``, kept. Raises
    :class:`~advisor.advice.gate.ProposalError` for a proposal that cannot be judged."""
    from advisor.sources.files import load_files

    if max_risk is not None and target != DEFAULT_TARGET and max_risk != target:
        raise TypeError("give target or its old name max_risk, not both")
    paths = [proposed] if isinstance(proposed, str | Path) else list(proposed)
    settings = _settings(None, week, version, target if max_risk is None else max_risk, rpo)
    return gate.check(load_files(paths), settings,
                      history=None if history is None else (history.frames, history.fits))


def build_report(history: History, **options: Any) -> Any:
    """The weekly report of ``history`` (options: ``week``, ``cluster``, ``version``,
    ``target`` and ``rpo`` (:data:`Rpo`), the report's :class:`~advisor.advice.Settings`,
    and
    :func:`advisor.report.build.build_report`'s ``previous`` and ``detailed``); render it
    with :func:`advisor.report.render.write_report`."""
    from advisor.report.build import build_report as build

    asked = {k: options.pop(k) for k in ("target", "week", "version", "cluster", "rpo")
             if k in options}
    settings = _settings(asked.get("cluster"), asked.get("week"),
                         asked.get("version", LATEST), asked.get("target", DEFAULT_TARGET),
                         asked.get("rpo"))
    return build(history.frames, history.fits, settings,
                 problems=history.problems, **options)
