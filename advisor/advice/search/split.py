"""When a few slow volumes hold a whole job back: move them to a RecurringJob of their
own, at the shortest interval that keeps them under the target, and keep the job's
interval for the rest.

Longhorn chooses a job's volumes by labels (``longhorn-facts.md`` section 2): the moved
volumes are labelled with the new job's name and with every other job they run today,
by name, and lose the labels that put them in the old job (a group's, or the old job's
own). Each moved volume keeps its other jobs; only its recovery points from the old job
become less frequent. The new job keeps the old one's task, retain and concurrency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from advisor.advice.search.intervals import IntervalAdvice, Phases, minimum_interval
from advisor.advice.search.ladder import LADDER
from advisor.advice.search.outcome import VolumeOutcome
from advisor.advice.search.scorer import fleet_scorer
from advisor.advice.settings import Settings
from advisor.longhorn.manifests import relabel_volume
from advisor.model.fleet import Fleet, JobSpec
from advisor.model.risk import Waits, weeks_to_run
from advisor.model.simulate import run_members

__all__ = ["ALONE_AT_MOST", "Split", "moved_fleet", "split_job", "split_name"]

ALONE_AT_MOST = 8
"""Moved volumes whose own minimum safe interval is searched one by one (each alone in a
job of its own); beyond, each gets the moved group's."""


@dataclass(frozen=True)
class Split:
    """A job's slow volumes moved to ``job``, a RecurringJob of their own.

    ``rest_cron``: the old job's cron for the volumes that stay (its interval, at its
    better offset); ``rest_outcomes``: each of their outcomes there; ``slow``: the search
    of the new job's interval over the moved volumes; ``minimums``: each moved volume's
    own minimum safe interval (seconds; None when no ladder step is safe) and its
    outcome there; ``labels``: the ``kubectl label`` command of each moved volume."""

    job: JobSpec
    volumes: tuple[str, ...]
    rest_cron: str
    slow: IntervalAdvice
    minimums: tuple[tuple[str, float | None, VolumeOutcome], ...]
    labels: tuple[str, ...]
    rest_outcomes: Mapping[str, VolumeOutcome] = field(default_factory=dict, repr=False)

    @property
    def rest_volume(self) -> str | None:
        """The old job's worst remaining volume (None when none remains)."""
        return _worst(self.rest_outcomes)

    @property
    def rest(self) -> VolumeOutcome | None:
        """That volume's outcome at ``rest_cron``."""
        v = self.rest_volume
        return None if v is None else self.rest_outcomes[v]

    def to_dict(self) -> dict:
        """The JSON form (``recommend -o json``'s and the report's ``split``)."""
        return {"job": self.job.name, "cron": self.job.cron, "volumes": list(self.volumes),
                "minimum_safe_interval_s": {v: s for v, s, _ in self.minimums},
                "rest_cron": self.rest_cron, "labels": list(self.labels)}

    @property
    def meets_target(self) -> bool:
        """Whether the rest and the moved volumes all stay under the target."""
        return self.slow.meets_target and (self.rest is None
                                           or self.rest.upper <= self.slow.target)


def _worst(outcomes: Mapping[str, VolumeOutcome]) -> str | None:
    return max(outcomes, key=lambda v: outcomes[v].upper, default=None)


def split_name(job: str, step_s: float, taken: Sequence[str]) -> str:
    """The new job's name: ``<job>-<interval>`` (``hourly-3h``), made unique."""
    step = int(step_s)
    label = (f"{step // 86400}d" if step % 86400 == 0 else f"{step // 3600}h"
             if step % 3600 == 0 else f"{step // 60}m")
    name, k = f"{job}-{label}"[:40], 2
    while name in taken:
        name, k = f"{job}-{label}-{k}"[:40], k + 1
    return name


def moved_fleet(fleet: Fleet, job: str, volumes: Sequence[str], new: JobSpec) -> Fleet:
    """``fleet`` with ``volumes`` moved from ``job`` to ``new`` (added): each is labelled
    with the jobs it runs today but ``job``, and ``new``, by name."""
    members = run_members(fleet)
    covered = {v: [j for j, vols in members.items() if v in vols] for v in volumes}
    specs = tuple(replace(v, jobs=tuple([*(j for j in covered[v.name] if j != job),
                                         new.name]), groups=())
                  if v.name in covered else v for v in fleet.volumes)
    return replace(fleet, volumes=specs, jobs=(*fleet.jobs, new))


def _labels(fleet: Fleet, moved: Fleet, volumes: Sequence[str]) -> tuple[str, ...]:
    before = {v.name: v for v in fleet.volumes}
    after = {v.name: v for v in moved.volumes}
    return tuple(relabel_volume(v, before[v].jobs, before[v].groups, after[v].jobs)
                 for v in volumes)


@dataclass(frozen=True)
class How:
    """How a split is searched: over the week from ``start``, with the run lanes'
    ``waits``, trying at each step of a job in a fleet the other offset ``phases``
    gives (see :func:`minimum_interval`), up to ``max_s`` at most (the RPO)."""

    start: str | pd.Timestamp | None
    waits: Waits
    phases: Callable[[Fleet, JobSpec], Phases]
    max_s: float | None = None


def _search(fleet: Fleet, new: JobSpec, volumes: Sequence[str], s: Settings, how: How
            ) -> IntervalAdvice:
    """The new job's smallest safe interval over ``volumes`` in ``fleet``."""
    scorer = fleet_scorer(fleet, s, start=how.start, weeks=weeks_to_run(new), focus=new.name,
                          waits=how.waits, target=s.target)
    return minimum_interval(new, fleet.jobs, scorer, s.target, volumes=volumes,
                            phases=how.phases(fleet, new), max_s=how.max_s)


def split_job(fleet: Fleet, job: JobSpec, slow: Sequence[str], rest_crons: Sequence[str],
              s: Settings, how: How) -> Split:
    """``slow`` (volumes of ``job``) moved to a new job searched up the ladder from
    ``job``'s interval (:class:`How`); the rest stay in ``job`` at the better of
    ``rest_crons`` (its cron, and another offset)."""
    taken = [j.name for j in fleet.jobs]
    weeks = weeks_to_run(job)
    draft = replace(job, name=split_name(job.name, LADDER[-1], taken), groups=())
    found = _search(moved_fleet(fleet.with_job(job.name, cron=rest_crons[0]), job.name,
                                slow, draft),
                    draft, slow, s, how)
    step = found.step_s or found.current_interval_s
    new = replace(draft, name=split_name(job.name, step, taken), cron=found.recommended_cron)
    best: tuple[float, str, Fleet, Mapping[str, VolumeOutcome]] | None = None
    for cron in rest_crons:
        moved = moved_fleet(fleet.with_job(job.name, cron=cron), job.name, slow, new)
        # (the scorer's outcomes are those of the volumes staying in the job: its focus)
        out: Mapping[str, VolumeOutcome] = fleet_scorer(
            moved, s, start=how.start, weeks=weeks, focus=job.name, waits=how.waits,
            target=s.target)(moved.jobs) if run_members(moved).get(job.name) else {}
        worst = _worst(out)
        upper = out[worst].upper if worst is not None else 0.0
        if best is None or upper < best[0]:
            best = (upper, cron, moved, out)
    assert best is not None
    _, rest_cron, moved, out = best
    minimums = []
    for v in slow:
        if len(slow) == 1 or len(slow) > ALONE_AT_MOST:
            minimums.append((v, (found.step_s or found.current_interval_s)
                             if found.meets_target else None, found.after))
            continue
        alone = replace(draft, name=split_name(job.name, 60, taken), groups=())
        solo = moved_fleet(replace(fleet, jobs=tuple(j for j in fleet.jobs
                                                     if j.name != job.name)),
                           job.name, [v], alone)
        a = _search(solo, alone, [v], s, how)
        minimums.append((v, (a.step_s or a.current_interval_s) if a.meets_target else None,
                         a.after))
    return Split(new, tuple(slow), rest_cron, found, tuple(minimums),
                 _labels(fleet, moved, slow), out)
