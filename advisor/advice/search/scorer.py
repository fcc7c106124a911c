"""The fast path as a :data:`~advisor.advice.search.outcome.Scorer`: the per-volume
outcome of a proposed set of jobs, for the interval search."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from advisor.advice.search.outcome import VolumeOutcome
from advisor.advice.settings import Settings
from advisor.model.fastpath import Estimate, zero_if_nan
from advisor.model.fleet import Fleet, JobSpec, VolumeSpec
from advisor.model.membership import run_members
from advisor.model.risk import (
    Draws,
    RiskAssessment,
    VolumePlan,
    VolumeRisk,
    Waits,
    assess,
    decided,
    default_window,
    learn_waits,
    plans_from_fleet,
)

__all__ = ["FleetScorer", "fleet_scorer"]


def _outcome(volume: VolumeSpec, r: VolumeRisk, focus: str | None) -> VolumeOutcome:
    """The :class:`~advisor.advice.search.outcome.VolumeOutcome` of one scored volume: of
    ``focus``'s runs when it covers the volume, else of all its runs."""
    if focus is not None and focus in r.p_skip_per_slot:
        skip, p = r.p_skip_per_slot[focus], r.p_conflict_per_run_by_job[focus]
    else:
        skip = max(r.p_skip_per_slot.values(), key=lambda e: e.mean,
                   default=Estimate(0.0, 0.0))
        p = r.p_conflict_per_run
    # (a job with no run in the window: nothing met, as far as it shows)
    return VolumeOutcome(
        p_conflict_per_run=zero_if_nan(p.mean), p_conflict_per_run_se=zero_if_nan(p.se),
        p_skip_per_run=zero_if_nan(skip.mean), p_skip_per_run_se=zero_if_nan(skip.se),
        p99_backup_s=max(volume.backup_duration_for(j).p99_s for j in r.p_skip_per_slot),
        p99_deletion_s=volume.deletion_duration.p99_s)


class FleetScorer:
    """A :data:`~advisor.advice.search.outcome.Scorer` over a fleet: see
    :func:`fleet_scorer`. Each proposal is scored once (``memo``)."""

    def __init__(self, fleet: Fleet, settings: Settings, *, start: str | pd.Timestamp | None,
                 weeks: int, focus: str | None, waits: Waits, target: float | None,
                 current: RiskAssessment | None) -> None:
        self.fleet, self.settings, self.focus, self.waits = fleet, settings, focus, waits
        self.start, self.weeks, self.target = start, weeks, target
        self.current_jobs = {j.name: j for j in fleet.jobs}
        self.by_name = {v.name: v for v in fleet.volumes}
        self.memo: dict[tuple[JobSpec, ...], Mapping[str, VolumeOutcome]] = {}
        t0, t1 = default_window(start, weeks)
        self.known = {r.volume: r for r in current.volumes} if current is not None and (
            current.start, current.end, current.version) == (t0, t1, settings.version) \
            else {}
        self.last: dict[str, float] = {}  # each volume's last upper bound: worst first

    def __call__(self, proposed: Sequence[JobSpec]) -> Mapping[str, VolumeOutcome]:
        key = tuple(sorted(proposed, key=lambda j: j.name))
        if key in self.memo:
            return self.memo[key]
        changed = {j.name: j for j in proposed}
        differ = {n for n, j in changed.items() if self.current_jobs.get(n) != j}
        jobs = tuple(changed.pop(j.name, j) for j in self.fleet.jobs) + tuple(changed.values())
        # only the volumes a changed job covers can change (all, for the current jobs);
        # with focus, only its volumes count
        focus = self.focus
        proposal = replace(self.fleet, jobs=jobs)
        members = run_members(proposal)
        only = (None if focus is None and not differ else
                {v for n in ([focus] if focus is not None else differ)
                 for v in members.get(n, ())})
        plans = plans_from_fleet(proposal, seed=self.settings.seed, waits=self.waits,
                                 only=only)
        out: dict[str, VolumeOutcome] = {}
        if not differ and self.known:  # what ``current`` tells on the target's either side
            for p in plans:
                r = self.known.get(p.volume)
                if r is not None and (self.target is None or decided(r, focus, self.target)):
                    out[p.volume] = self._keep(r)
            plans = [p for p in plans if p.volume not in out]
        out.update(self._run(plans, whole=not differ))  # the jobs as they are: every volume
        self.memo[key] = out
        return out

    def _keep(self, r: VolumeRisk) -> VolumeOutcome:
        out = _outcome(self.by_name[r.volume], r, self.focus)
        self.last[r.volume] = out.upper
        return out

    def _run(self, plans: list[VolumePlan], whole: bool) -> dict[str, VolumeOutcome]:
        s, target = self.settings, self.target
        draws = Draws(seed=s.seed, precision=s.precision, target=target, focus=self.focus,
                      min_draws=500 if target is None else 64)
        common = dict(start=self.start, weeks=self.weeks, version=s.version)
        if target is None or whole:
            return {r.volume: self._keep(r) for r in assess(plans, draws, **common).volumes}
        plans = sorted(plans, key=lambda p: -self.last.get(p.volume, math.inf))
        out: dict[str, VolumeOutcome] = {}
        i, size = 0, 4  # a few first, since the worst usually decides; then more at once
        while i < len(plans):
            scored = [self._keep(r)
                      for r in assess(plans[i:i + size], draws, **common).volumes]
            out.update(zip((p.volume for p in plans[i:i + size]), scored, strict=True))
            if any(o.upper > target for o in scored):
                break
            i, size = i + size, min(2 * size, 64)
        return out


def fleet_scorer(fleet: Fleet, settings: Settings | None = None, *,
                 start: str | pd.Timestamp | None = None, weeks: int = 1,
                 focus: str | None = None, waits: Waits | None = None,
                 target: float | None = None,
                 current: RiskAssessment | None = None) -> FleetScorer:
    """A scorer for :func:`~advisor.advice.search.intervals.minimum_interval`: the
    per-volume outcome of a proposed set of jobs that replaces the fleet's jobs of the
    same names, under ``settings``' Longhorn version, seed and precision. With
    ``focus``, the outcome of that job's runs only, on the volumes it covers (the
    conflicts its runs meet, its skipped slots): another job's own trouble on the same
    volume is not this job's interval's doing.
    ``waits``: as :func:`~advisor.model.risk.assess_fleet`'s (learnt from ``fleet`` when
    not given).
    ``target``: the per-run probability the caller compares with; each volume then gets
    only the draws that place it on one side of it (from 64), which is what makes a
    fleet of thousands of volumes affordable. A proposal's volumes are then scored worst
    first (by their last outcome) and the scoring stops once one is over ``target``:
    the proposal breaks it whatever the others do, so its outcome holds only the
    volumes scored (as the :data:`~advisor.advice.search.outcome.Scorer` contract
    allows). Without ``target`` every volume is scored to the settings' precision.
    The current jobs (no job changed) are always scored on every volume, so the worst
    one is known. ``current``: an assessment of the fleet's jobs as they are, over the
    same window (:func:`~advisor.model.risk.assess_fleet`); their outcome is read from
    it rather than scored again."""
    s = settings or Settings()
    # the lanes' waits under the current schedule, for every proposal: a longer interval
    # leaves fewer waits, so its risk is overstated a little (a shorter one's, which is
    # only ever shown as "could run", understated)
    if waits is None:
        waits = learn_waits(fleet, start=start, weeks=weeks, version=s.version, seed=s.seed)
    return FleetScorer(fleet, s, start=start, weeks=weeks, focus=focus, waits=waits,
                       target=target, current=current)
