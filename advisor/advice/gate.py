"""What ``advisor check`` decides: proposed RecurringJobs judged before they are applied.

A proposal is read like any manifest (its problems are errors: a gate must not pass
what it could not read), then judged two ways: structurally (jobs that fire together on
shared volumes, retention that outlasts the interval; no history needed) and, with a
history, by the Monte Carlo lock risk of each proposed job on the volumes it would cover,
scored over the settings' week like every other figure. A lock-risk finding counts
against the target as the advice does: on the worst volume's larger of the conflict and
the skipped-slot probability per run (a skipped slot is a lost recovery point), each on
``p + 2 se`` (see :mod:`advisor.advice.settings`), so a risk the draws cannot place under
the target is not passed as safe.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from advisor import units
from advisor.advice.settings import Settings
from advisor.cron import CronError, parse
from advisor.inputs import fleet_from_history, job_specs
from advisor.longhorn import TASKS
from advisor.model.collisions import rpo_findings, structural_findings
from advisor.model.durations import BackupPrior, DurationFits, size_prior
from advisor.model.proposal import assess_proposal
from advisor.sources.base import LoadResult

__all__ = ["GateResult", "ProposalError", "check"]


class ProposalError(ValueError):
    """A proposal that cannot be judged: ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(repr=False)
class GateResult:
    """The verdict on a proposal: ``risky`` when a counted finding is above the target
    (or could not be scored), else ``ok``; every finding, and what was assumed."""

    verdict: str
    findings: list[dict]
    settings: Settings
    assumptions: list[str] = field(default_factory=list)
    week: str | None = None

    @property
    def risky(self) -> bool:
        return self.verdict == "risky"

    @property
    def table(self) -> pd.DataFrame:
        """One row per finding: kind, severity, jobs, p per run, explanation."""
        cols = ["kind", "severity", "jobs", "p_per_run", "explanation"]
        return pd.DataFrame([{k: f.get(k) for k in cols} for f in self.findings],
                            columns=cols)

    def to_dict(self) -> dict:
        """``advisor check -o json``."""
        return {"verdict": self.verdict, "max_risk": self.settings.target,
                "findings": self.findings, "longhorn_version": self.settings.version,
                "week": self.week, "assumptions": self.assumptions}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def __repr__(self) -> str:
        return (f"GateResult({self.verdict}: {len(self.findings)} finding(s), target "
                f"{units.percent(self.settings.target)} per run)")

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(repr(self))}</p>" + self.table.to_html(index=False)


def _invalid(proposed: LoadResult) -> list[str]:
    """Why the proposal cannot be judged: its load problems, unknown tasks, crons robfig
    or Longhorn refuses, or no RecurringJob at all."""
    jobs = proposed.frames["jobs"]
    out = [str(p) for p in proposed.problems]
    for r in jobs.itertuples():
        if r.task not in TASKS:
            out.append(f"RecurringJob {r.recurring_job}: spec.task: {r.task!r} is not "
                       f"a Longhorn task ({', '.join(sorted(TASKS))})")
        try:
            parse(str(r.cron))
        except CronError as e:
            out.append(f"RecurringJob {r.recurring_job}: spec.cron: {r.cron!r}: {e}")
    return out or ([] if len(jobs) else ["no RecurringJob in the input"])


def _span(r) -> str:
    w0, w1 = r.windows[0]
    if r.rare:
        return (f"{len(r.windows)} window(s) of {units.duration((w1 - w0).total_seconds())} "
                f"around its fire time(s) from {w0:%Y-%m-%d}")
    return f"{(w1 - w0) // pd.Timedelta(weeks=1):g} week(s) from {w0:%Y-%m-%d}"


def _risk_findings(fleet, jobs: pd.DataFrame, start: pd.Timestamp,
                   settings: Settings) -> list[dict]:
    """The lock risk of each proposed job on the history's volumes (its own runs)."""
    out = []
    for name, r in sorted(assess_proposal(fleet, job_specs(jobs), start=start,
                                          version=settings.version,
                                          target=settings.target).items()):
        worst = r.worst()
        if worst is None:
            out.append({"kind": "lock_risk", "severity": "low", "jobs": [name],
                        "volumes": list(r.volumes), "p_per_run": 0.0, "p_per_run_se": 0.0,
                        "expected_per_week": 0.0,
                        "explanation": f"{name}: does not fire in the {_span(r)}, so its "
                                       "lock risk was not scored"})
            continue
        volume, figure = worst
        p, skip = r.p_conflict_per_run[volume], r.p_skip_per_slot[volume]
        over = figure.upper > settings.target
        lost = skip.mean * r.runs_per_week
        out.append({"kind": "lock_risk", "severity": "high" if over else "low",
                    "jobs": [name], "volumes": list(r.volumes), "volume": volume,
                    "p_per_run": p.mean, "p_per_run_se": p.se,
                    "p_skip_per_run": skip.mean, "p_skip_per_run_se": skip.se,
                    "expected_per_week": r.expected_per_week,
                    "explanation": f"{name}: on {volume}, its worst volume, P(lock conflict "
                                   f"per run) {units.percent_pm(p.mean, p.se)} and "
                                   f"P(skipped slot) {units.percent_pm(skip.mean, skip.se)}"
                                   f" ({units.number(lost)} of its {units.number(r.runs_per_week)}"
                                   " recovery points a week lost there); Monte Carlo, "
                                   f"{r.draws[volume]} draws over {_span(r)}; "
                                   f"{units.number(r.expected_per_week)} of its runs a week "
                                   f"expected to meet a conflict on its {len(r.volumes)} "
                                   "volume(s)"})
    return out


def _counts_against(f: Mapping, target: float) -> bool:
    """Whether a finding fails the gate: a counted one whose risk is unknown, or above
    the target on p + 2 se (p alone where no standard error is known)."""
    if f.get("severity") == "low":
        return False
    p = f.get("p_per_run")
    if p is None:
        return True
    skip = f.get("p_skip_per_run") or 0.0
    return max(p + 2 * (f.get("p_per_run_se") or 0.0),
               skip + 2 * (f.get("p_skip_per_run_se") or 0.0)) > target


def check(proposed: LoadResult, settings: Settings | None = None, *,
          history: tuple[Mapping[str, pd.DataFrame], DurationFits] | None = None
          ) -> GateResult:
    """Judge the RecurringJobs (and Volumes) of ``proposed`` under ``settings`` (its
    ``target`` is the largest acceptable risk per run), against ``history`` (frames and
    fits) when given. Raises :class:`ProposalError` when the proposal cannot be judged."""
    s = settings or Settings()
    invalid = _invalid(proposed)
    if invalid:
        raise ProposalError(invalid)
    jobs, volumes = proposed.frames["jobs"], proposed.frames["volumes"]
    assumptions: list[str] = []
    risk: list[dict] = []
    week = None
    if history is not None:
        frames, fits = history
        if volumes.empty:
            volumes = frames["volumes"]
        fleet, notes = fleet_from_history(frames, fits, s.cluster)
        assumptions += list(notes)
        prior = size_prior(fits, frames["volumes"])
        window = s.window(frames["backups"])
        week = window.label
        risk = _risk_findings(fleet, jobs, window.start, s)
        # the proposal among the jobs already there: what it changes
        current = frames["jobs"]
        current = current[~current["recurring_job"].isin(jobs["recurring_job"])]
        cluster = current["cluster"].iloc[0] if len(current) else "default"
        judged = pd.concat([current, jobs.assign(cluster=cluster)], ignore_index=True)
    else:
        prior = BackupPrior()
        assumptions.append(f"no history: {prior}")
        judged = jobs
    names = set(jobs["recurring_job"])
    found = structural_findings(judged, volumes, prior=prior)
    if s.has_rpo:
        found += rpo_findings(judged, volumes, s.rpo_of_job)
    findings = [f.to_dict() for f in found if names & set(f.jobs)] + risk
    risky = any(_counts_against(f, s.target) for f in findings)
    return GateResult("risky" if risky else "ok", findings, s, assumptions, week)
