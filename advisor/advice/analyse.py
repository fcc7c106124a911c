"""The one pipeline: a history in, an :class:`Analysis` out.

``analyse(frames, fits, settings)`` is the only place where the history becomes a fleet,
the fleet a risk assessment over the scored week, and the assessment advice. The report,
``advisor recommend``, the API's verbs and the notebooks all take their figures from an
Analysis, so they cannot disagree on the week, the at-risk rule or a recommendation.
"""

from __future__ import annotations

import dataclasses
import functools
import html
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from advisor.advice.search import Recommendation, recommend_intervals
from advisor.advice.search.apply import applied
from advisor.advice.search.split import ALONE_AT_MOST
from advisor.advice.settings import Settings, Window
from advisor.inputs import fleet_from_history, history_cluster
from advisor.model.durations import DurationFits
from advisor.model.fleet import Fleet
from advisor.model.observed import observed_vs_predicted
from advisor.model.recovery_observed import (
    fleet_recovery,
    observed_recovery,
    predicted_table,
    recovery_table,
)
from advisor.model.risk import (
    FLEET_DRAWS,
    Draws,
    RiskAssessment,
    Waits,
    assess,
    assess_fleet,
    learn_waits,
    plans_from_fleet,
    target_figure,
)
from advisor.model.simulate import run_members

__all__ = ["CHANGEABLE", "Analysis", "analyse", "with_changes"]

Progress = Callable[[str], None]
Changes = Mapping[str, Mapping[str, Any]]
CHANGEABLE = ("cron", "retain", "concurrency")
"""The RecurringJob fields a what-if may change."""


@dataclass(repr=False)
class Analysis:
    """One cluster's history analysed under ``settings`` over ``window``.

    ``fleet``: what the history describes (jobs, volumes, fitted durations) and
    ``notes``, what was assumed to build it; ``assessment``: each volume's risk under the
    current RecurringJobs; ``recommendations``: per backup job, its smallest safe interval
    (empty when the analysis was asked for risk only); ``observed``: the history's lock
    conflicts against the prediction, per volume; ``backups``: the cluster's Backups
    (the history's own frame when it holds one cluster only: never copied)."""

    settings: Settings
    window: Window
    cluster: str
    fleet: Fleet
    notes: tuple[str, ...]
    assessment: RiskAssessment
    recommendations: list[Recommendation] = field(default_factory=list)
    observed: pd.DataFrame = field(default_factory=pd.DataFrame)
    waits: Waits = field(default_factory=dict)
    backups: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def jobs_of(self) -> dict[str, list[str]]:
        """``{volume: [the jobs whose runs back it up]}`` (Longhorn's membership)."""
        out: dict[str, list[str]] = {}
        for job, vols in run_members(self.fleet).items():
            for v in vols:
                out.setdefault(v, []).append(job)
        return out

    @property
    def risk_table(self) -> pd.DataFrame:
        """One row per volume, riskiest first: the assessment's figures with ``jobs``
        (comma-separated) and ``at_risk`` (the settings' rule) after ``volume``."""
        t = self.assessment.table
        if t.empty:
            return t
        jobs_of = self.jobs_of()
        at = t.columns.get_loc("volume") + 1
        t.insert(at, "jobs", t["volume"].map(lambda v: ", ".join(jobs_of.get(v, ()))))
        t.insert(at + 1, "at_risk", self.settings.at_risk(t))
        return t

    def minimum_safe_intervals(self) -> pd.DataFrame:
        """Per volume that a backup job covers: ``min_safe_interval_s``, the shortest
        ladder interval at which it stays under the target from its most frequent
        backup job (``job``), given the other jobs on it, and ``basis``, what says so:
        ``own`` (a volume the advice moves to a job of its own, searched alone),
        ``group`` (moved with others, the group's), ``current`` (safe at the job's
        interval: shorter steps are not searched), ``job`` (the interval the job's
        advice gives all its volumes) or ``none`` (no ladder step is safe: NaN)."""
        recs = {r.job: r for r in self.recommendations}
        risks = {r.volume: r for r in self.assessment.volumes}
        rows = []
        for v, jobs in self.jobs_of().items():
            timed = [(r.current_interval_s or np.inf, j)
                     for j in jobs if (r := recs.get(j)) is not None]
            if not timed:
                continue
            _, job = min(timed)
            r = recs[job]
            risk = risks.get(v)
            now = None if risk is None else target_figure(risk, job)
            rows.append({"volume": v, "job": job,
                         **_minimum(r, v, self.settings.target, now)})
        return pd.DataFrame(rows, columns=["volume", "job", "min_safe_interval_s", "basis"])

    @functools.cached_property
    def advised(self) -> RiskAssessment | None:
        """Each volume's risk once every changed recommendation is applied (crons,
        concurrencies, splits: :func:`~advisor.advice.search.apply.applied`), over the
        same window with the same draws as :attr:`assessment`; None when nothing
        changes."""
        changed = [r for r in self.recommendations if r.changed]
        if not changed:
            return None
        draws = _draws(self.settings)
        fleet = applied(self.fleet, self.recommendations)
        # only the volumes of the changed jobs (and of the new ones) can fare otherwise
        # (their DR partners' restores are part of their own figures)
        members = run_members(fleet)
        touched = {v for r in changed
                   for n in (r.job, *([r.split.job.name] if r.split else ()))
                   for v in members.get(n, ())}
        plans = plans_from_fleet(fleet, seed=self.settings.seed, waits=self.waits,
                                 only=touched)
        again = assess(plans, draws, start=self.window.start,
                       version=self.settings.version)
        kept = [r for r in self.assessment.volumes if r.volume not in touched]
        return dataclasses.replace(self.assessment, volumes=tuple(
            sorted((*kept, *again.volumes), key=lambda r: r.volume)))

    @functools.cached_property
    def _predicted(self) -> pd.DataFrame:
        return predicted_table(self.assessment.volumes)

    @functools.cached_property
    def recovery(self) -> pd.DataFrame:
        """Per volume, its recovery points in the week: intended by the crons, observed
        in the history and predicted under the current RecurringJobs, each with its
        range (:func:`~advisor.model.recovery_observed.recovery_table`)."""
        return recovery_table(self.assessment, observed_recovery(
            self.backups, self.window.start, self.window.end), self._predicted)

    @functools.cached_property
    def recovery_after(self) -> pd.DataFrame:
        """:attr:`recovery`'s predicted figures once the advice is applied (the same
        as now when nothing changes; nothing observed): the volumes the advice does not
        touch keep theirs."""
        risk = self.advised
        if risk is None:
            return recovery_table(self.assessment, pd.DataFrame(), self._predicted)
        now = {id(v) for v in self.assessment.volumes}
        again = predicted_table(v for v in risk.volumes if id(v) not in now)
        kept = self._predicted[~self._predicted["volume"].isin(again.get("volume", []))]
        both = pd.concat([kept, again], ignore_index=True).sort_values(
            "volume", kind="stable").reset_index(drop=True)
        return recovery_table(risk, pd.DataFrame(), both)

    def recovery_change(self, job: str) -> dict | None:
        """What a job's advice does to its volumes' recovery points, predicted: the
        median over them of completed backups a week (``points_now``, ``points_after``)
        and the worst p95 gap (``gap_p95_now``, ``gap_p95_after``, seconds); None for a
        job that covers no volume or was not drawn."""
        vols = run_members(self.fleet).get(job, [])
        now = self.recovery.set_index("volume") if len(self.recovery) else None
        after = self.recovery_after.set_index("volume") if len(self.recovery_after) else None
        vols = [v for v in vols if now is not None and after is not None
                and v in now.index and v in after.index]
        if not vols:
            return None
        return {"points_now": float(now.loc[vols, "points_predicted"].median()),
                "points_after": float(after.loc[vols, "points_predicted"].median()),
                "gap_p95_now": float(now.loc[vols, "gap_p95_predicted"].max()),
                "gap_p95_after": float(after.loc[vols, "gap_p95_predicted"].max())}

    def over_rpo(self) -> pd.DataFrame:
        """The volumes whose predicted p95 gap is over their RPO (settings) now or once
        the advice is applied: ``volume``, ``rpo_s``, ``gap_p95_now`` (with ``_lo`` and
        ``_hi``), ``gap_p95_after``, ``over_now``, ``over_after``; empty without an
        RPO."""
        cols = ["volume", "rpo_s", "gap_p95_now", "gap_p95_now_lo", "gap_p95_now_hi",
                "gap_p95_after", "over_now", "over_after"]
        if not self.settings.has_rpo or self.recovery.empty:
            return pd.DataFrame(columns=cols).astype({"over_now": bool, "over_after": bool})
        jobs_of = self.jobs_of()
        after = self.recovery_after.set_index("volume")["gap_p95_predicted"]
        rows = []
        for r in self.recovery.itertuples():
            rpo = self.settings.rpo_of_volume(jobs_of.get(r.volume, []))
            if rpo is None:
                continue
            late = float(after.get(r.volume, np.nan))
            rows.append({"volume": r.volume, "rpo_s": rpo, "gap_p95_now": r.gap_p95_predicted,
                         "gap_p95_now_lo": r.gap_p95_lo, "gap_p95_now_hi": r.gap_p95_hi,
                         "gap_p95_after": late, "over_now": bool(r.gap_p95_predicted > rpo),
                         "over_after": bool(late > rpo)})
        t = pd.DataFrame(rows, columns=cols).astype({"over_now": bool, "over_after": bool})
        return t[t["over_now"] | t["over_after"]].reset_index(drop=True)

    def recovery_summary(self) -> dict:
        """The fleet's recovery points in the week, observed and predicted with ranges
        (:func:`~advisor.model.recovery_observed.fleet_recovery`)."""
        return fleet_recovery(self.assessment, self.recovery, seed=self.settings.seed)

    def over_target_after(self) -> pd.DataFrame:
        """The volumes still over the target once the advice is applied (all over it
        now, when nothing changes): ``volume``, ``p``, ``se`` and ``upper`` (p + 2 se of
        the larger of conflict and skipped slot per run), worst first."""
        risk = self.advised or self.assessment
        rows = [{"volume": r.volume, "p": p, "se": se, "upper": p + 2 * se}
                for r in risk.volumes for p, se in [target_figure(r, None)]]
        t = pd.DataFrame(rows, columns=["volume", "p", "se", "upper"])
        return t[t["upper"] > self.settings.target].sort_values(
            "upper", ascending=False, kind="stable").reset_index(drop=True)

    def summary(self) -> str:
        """One line: the cluster, the week, volumes at risk, jobs to change."""
        t = self.assessment.table
        at_risk = int(self.settings.at_risk(t).sum()) if len(t) else 0
        text = (f"{self.cluster or 'one cluster'}, {self.window.label}: {len(t)} volumes, "
                f"{at_risk} at risk")
        if self.recommendations:
            changed = [r.job for r in self.recommendations if r.changed]
            text += (f"; {len(self.recommendations)} backup jobs, {len(changed)} to change"
                     + (f" ({', '.join(changed)})" if changed else ""))
        return text

    def __repr__(self) -> str:
        return f"Analysis({self.summary()})"

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(repr(self))}</p>"


def analyse(frames: Mapping[str, pd.DataFrame], fits: DurationFits,
            settings: Settings | None = None, *, jobs: Iterable[str] | None = None,
            advise: bool = True, changes: Changes | None = None,
            progress: Progress | None = None) -> Analysis:
    """The history's ``frames`` and ``fits`` analysed under ``settings`` (default
    :class:`Settings`): the fleet, the risk of the current RecurringJobs over the
    settings' window and, when ``advise``, the smallest safe interval of each backup job
    (or of ``jobs``). ``changes`` (``{job: {field: value}}``, see :func:`with_changes`)
    analyses the fleet with those jobs changed instead: with the same settings, the
    same week and the same draws, so the difference is the change's. ``progress`` is
    told each stage's name as it starts."""
    s = settings or Settings()
    say = progress or (lambda _: None)
    window = s.window(frames["backups"])
    say("the fleet from the history")
    fleet, notes = fleet_from_history(frames, fits, s.cluster)
    if changes:
        fleet = with_changes(fleet, changes)
    cluster = s.cluster or history_cluster(frames)
    say("queueing inside runs")
    waits = learn_waits(fleet, start=window.start, version=s.version, seed=s.seed)
    say("the risk of the current schedules")
    draws = _draws(s)
    risk = assess_fleet(fleet, draws, start=window.start, version=s.version, waits=waits)
    recs = []
    if advise:
        say("the smallest safe intervals")
        recs = recommend_intervals(fleet, s, start=window.start, jobs=jobs, waits=waits,
                                   current=risk)
    b = _of_cluster(frames["backups"], cluster)
    return Analysis(s, window, cluster, fleet, notes, risk, recs,
                    observed_vs_predicted(b, risk, seed=s.seed), waits, b)


def _draws(s: Settings) -> Draws:
    """How a fleet's figures are drawn under ``s`` (its seed and precision)."""
    return dataclasses.replace(FLEET_DRAWS, seed=s.seed, precision=s.precision)


def _minimum(r: Recommendation, volume: str, target: float,
             now: tuple[float, float] | None) -> dict:
    """``min_safe_interval_s`` and ``basis`` of ``volume`` from its job's advice ``r``
    and its own figure now (``now``: p and se, :func:`target_figure`; see
    :meth:`Analysis.minimum_safe_intervals`)."""
    sp = r.split
    if sp is not None and volume in sp.volumes:
        step = dict((v, s) for v, s, _ in sp.minimums)[volume]
        alone = 1 < len(sp.volumes) <= ALONE_AT_MOST
        return {"min_safe_interval_s": np.nan if step is None else step,
                "basis": "none" if step is None else "own" if alone else "group"}
    if now is not None and now[0] + 2 * now[1] <= target and not r.changed:
        return {"min_safe_interval_s": r.current_interval_s, "basis": "current"}
    safe = r.after is not None and r.after.upper <= target
    if not safe:
        return {"min_safe_interval_s": np.nan, "basis": "none"}
    if r.recommended_interval_s == r.current_interval_s or r.kind in ("split", "concurrency"):
        return {"min_safe_interval_s": r.current_interval_s, "basis": "current"}
    return {"min_safe_interval_s": r.recommended_interval_s, "basis": "job"}


def _of_cluster(b: pd.DataFrame, cluster: str) -> pd.DataFrame:
    """The rows of ``b`` of ``cluster``: ``b`` itself when they are all of it (millions
    of Backups are not copied for nothing)."""
    if not len(b) or "cluster" not in b:
        return b
    mine = (b["cluster"] == cluster).to_numpy(dtype=bool, na_value=False)
    return b if mine.all() else b[mine]


def with_changes(fleet: Fleet, changes: Changes) -> Fleet:
    """``fleet`` with RecurringJobs changed: ``changes`` maps a job name to the fields
    to change (:data:`CHANGEABLE`), e.g. ``{"hourly": {"cron": "30 * * * *"}}``. A
    ValueError names an unknown job or field; a CronError a cron robfig refuses."""
    from advisor.cron import parse

    names = {j.name for j in fleet.jobs}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"no RecurringJob {unknown} in the history; jobs: {sorted(names)}")
    for job, c in changes.items():
        bad = sorted(set(c) - set(CHANGEABLE))
        if bad:
            raise ValueError(f"{job}: cannot change {bad}; what_if changes "
                             f"{sorted(CHANGEABLE)}")
        if "cron" in c:
            parse(str(c["cron"]))  # (a CronError names what is wrong)
    for job, c in changes.items():
        fleet = fleet.with_job(job, **c)
    return fleet
