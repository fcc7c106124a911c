"""The one pipeline: a history in, an :class:`Analysis` out.

``analyse(frames, fits, settings)`` is the only place where the history becomes a fleet,
the fleet a risk assessment over the scored week, and the assessment advice. The report,
``advisor recommend``, the API's verbs and the notebooks all take their figures from an
Analysis, so they cannot disagree on the week, the at-risk rule or a recommendation.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from advisor.advice.search import Recommendation, recommend_intervals
from advisor.advice.settings import Settings, Window
from advisor.inputs import fleet_from_history, history_cluster
from advisor.model.durations import DurationFits
from advisor.model.fleet import Fleet
from advisor.model.observed import observed_vs_predicted
from advisor.model.risk import (
    FLEET_DRAWS,
    RiskAssessment,
    Waits,
    assess_fleet,
    learn_waits,
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
    draws = dataclasses.replace(FLEET_DRAWS, seed=s.seed, precision=s.precision)
    risk = assess_fleet(fleet, draws, start=window.start, version=s.version, waits=waits)
    recs = []
    if advise:
        say("the smallest safe intervals")
        recs = recommend_intervals(fleet, s, start=window.start, jobs=jobs, waits=waits,
                                   current=risk)
    b = _of_cluster(frames["backups"], cluster)
    return Analysis(s, window, cluster, fleet, notes, risk, recs,
                    observed_vs_predicted(b, risk, seed=s.seed), waits, b)


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
    jobs = tuple(dataclasses.replace(j, **changes[j.name]) if j.name in changes else j
                 for j in fleet.jobs)
    return dataclasses.replace(fleet, jobs=jobs)
