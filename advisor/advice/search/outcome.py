"""What the search works with and gives: a volume's outcome under a proposed job set
(:class:`VolumeOutcome`), the :data:`Scorer` that tells it, and a job's advice
(:class:`Recommendation`).

A schedule **meets** a target when, for every volume considered, ``p + 2·se <= target``
for both the conflict and the skip probability: the estimate's upper 97.5 % normal bound,
so Monte Carlo noise does not pass a schedule that is only lucky. A scorer that reports 0
with se 0 (no event in any draw) is taken at its word; it should use enough draws (the
"rule of three" bound of such an estimate is ``3 / draws``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd

from advisor.longhorn.manifests import kubectl_merge_patch, kubectl_patch, recurring_job_yaml
from advisor.model.fleet import JobSpec
from advisor.schedules import interval_of

if TYPE_CHECKING:
    from advisor.advice.search.split import Split

__all__ = ["Recommendation", "Scorer", "VolumeOutcome"]


@dataclass(frozen=True)
class VolumeOutcome:
    """One volume's risk under a proposed job set, per run of its jobs.

    ``p_conflict_per_run``: probability that a run meets a lock conflict;
    ``p_skip_per_run``: probability that a fire time is skipped (Forbid); each with its
    Monte Carlo standard error. Optional figures explain the numbers, in seconds: the p99
    backup and deletion durations, the p95 wait behind other volumes of the run.
    """

    p_conflict_per_run: float
    p_conflict_per_run_se: float
    p_skip_per_run: float
    p_skip_per_run_se: float = 0.0
    p99_backup_s: float | None = None
    p99_deletion_s: float | None = None
    queue_delay_p95_s: float | None = None

    def __post_init__(self) -> None:
        for p in (self.p_conflict_per_run, self.p_skip_per_run):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"a probability must be in [0, 1], not {p}")
        if self.p_conflict_per_run_se < 0 or self.p_skip_per_run_se < 0:
            raise ValueError("standard errors must be >= 0")

    @property
    def lower(self) -> float:
        """The larger lower bound, ``max(p - 2·se)`` of conflict and skip: a risk the
        volume surely has (0 when neither is clearly above 0)."""
        return max(0.0, self.p_conflict_per_run - 2 * self.p_conflict_per_run_se,
                   self.p_skip_per_run - 2 * self.p_skip_per_run_se)

    def cuts(self, now: VolumeOutcome) -> bool:
        """Whether this outcome is clearly better than ``now``: its upper bound at most
        nine tenths of ``now``'s lower bound (a cut of a tenth that the Monte Carlo
        error cannot explain)."""
        return self.upper <= 0.9 * now.lower

    @property
    def upper(self) -> float:
        """The figure compared with the target: ``max(p + 2·se)`` of conflict and skip."""
        return max(self.p_conflict_per_run + 2 * self.p_conflict_per_run_se,
                   self.p_skip_per_run + 2 * self.p_skip_per_run_se)


Scorer = Callable[[Sequence[JobSpec]], Mapping[str, VolumeOutcome]]
"""Given every proposed job (one or more changed), the outcome of each volume they cover.
A scorer told the target may stop once one volume is over it and leave the rest out: the
proposal breaks the target whatever they do."""


@dataclass(frozen=True)
class Recommendation:
    """One job's advice, with why: ``kind`` is ``interval``, ``offset``,
    ``interval+offset`` (a new cron), ``split`` (its slow volumes moved to a job of
    their own, :attr:`split`), ``concurrency`` (:attr:`concurrency`) or ``keep``.
    Probabilities are the worst volume's per-run conflict probability (None when the
    advice was not scored)."""

    job: str
    kind: str
    current_cron: str
    recommended_cron: str
    p_per_run_now: float | None
    p_per_run_after: float | None
    reason: str
    scored: tuple[tuple[float, float, float], ...] = ()
    """What the search scored: ``(interval_s, p, se)`` of the worst volume's conflict
    per run at each interval tried, shortest first (at the recommended phase)."""
    volume_now: str | None = None
    """The worst volume now: the one whose larger of conflict and skipped slot (by
    ``p + 2 se``, :attr:`VolumeOutcome.upper`) is largest, as ``advisor check`` picks."""
    now: VolumeOutcome | None = None
    """That volume's outcome now (conflict and skipped slot per run, with errors)."""
    volume_after: str | None = None
    """The worst volume once the advice is applied (of the job and, for a split, of the
    new job too)."""
    after: VolumeOutcome | None = None
    """That volume's outcome once the advice is applied."""
    split: Split | None = None
    """The slow volumes moved to a job of their own (``kind == "split"``)."""
    concurrency: int | None = None
    """The recommended ``spec.concurrency`` (``kind == "concurrency"``)."""

    @property
    def changed(self) -> bool:
        """Whether the advice changes anything (a cron, a split, a concurrency)."""
        return self.job_changed or self.split is not None

    @property
    def job_changed(self) -> bool:
        """Whether the job's own spec changes (its cron, its concurrency), not only the
        labels of a split's volumes."""
        return self.recommended_cron != self.current_cron or self.concurrency is not None

    @property
    def patches(self) -> tuple[str, ...]:
        """The ``kubectl`` commands that apply the advice: the job's patch, and a split's
        label commands after a comment (shell syntax) that its new job, a manifest
        (:meth:`manifests`), must be created first."""
        out = []
        if self.job_changed:
            spec: dict[str, object] = {}
            if self.recommended_cron != self.current_cron:
                spec["cron"] = self.recommended_cron
            if self.concurrency is not None:
                spec["concurrency"] = self.concurrency
            out.append(kubectl_patch(self.job, self.recommended_cron) if list(spec) == ["cron"]
                       else kubectl_merge_patch(self.job, spec))
        if self.split is not None:
            out += [f"# create RecurringJob {self.split.job.name} first (its manifest is "
                    "printed with -o yaml): a volume labelled for a job that does not "
                    "exist is backed up by none", *self.split.labels]
        return tuple(out)

    @property
    def current_interval_s(self) -> float | None:
        """The current cron's interval (an uneven schedule's median gap), seconds."""
        return interval_of(self.current_cron, median=True)

    @property
    def recommended_interval_s(self) -> float | None:
        """The recommended cron's interval (an uneven schedule's median gap), seconds."""
        return interval_of(self.recommended_cron, median=True)

    @property
    def curve(self) -> pd.DataFrame:
        """:attr:`scored` as a frame: ``interval_s``, ``p``, ``se`` and the range
        ``p_lo``, ``p_hi`` (p ± 2 se, within [0, 1]) that the charts draw."""
        c = pd.DataFrame(list(self.scored), columns=["interval_s", "p", "se"])
        return c.assign(p_lo=(c["p"] - 2 * c["se"]).clip(lower=0),
                        p_hi=(c["p"] + 2 * c["se"]).clip(upper=1))

    def manifests(self, spec: JobSpec, *, labels: Mapping[str, str] | None = None,
                  parameters: Mapping[str, str] | None = None) -> list[str]:
        """The RecurringJob manifests that apply the advice to ``spec`` (the job as it
        is; ``labels`` and ``parameters``: its ``spec.labels`` and ``spec.parameters``,
        which the changed job and a split's new job both keep): the job changed (cron,
        concurrency), and a split's new job, which must exist before its volumes are
        labelled (:attr:`patches`)."""
        out = []
        if self.job_changed:
            job = replace(spec, concurrency=self.concurrency or spec.concurrency)
            out.append(recurring_job_yaml(job, self.recommended_cron, labels=labels,
                                          parameters=parameters))
        if self.split is not None:
            out.append(recurring_job_yaml(self.split.job, self.split.job.cron,
                                          labels=labels, parameters=parameters))
        return out

    def to_dict(self) -> dict:
        """The JSON form of ``advisor recommend -o json``."""
        return {"job": self.job, "kind": self.kind, "current_cron": self.current_cron,
                "recommended_cron": self.recommended_cron, "changed": self.changed,
                "p_per_run_now": self.p_per_run_now, "p_per_run_after": self.p_per_run_after,
                "worst_volume_now": self.volume_now,
                "p_skip_now": None if self.now is None else self.now.p_skip_per_run,
                "worst_volume_after": self.volume_after,
                "p_skip_after": None if self.after is None else self.after.p_skip_per_run,
                "reason": self.reason,
                "concurrency": self.concurrency,
                "split": None if self.split is None else self.split.to_dict(),
                "patch": "\n".join(self.patches) if self.changed else None}

    def __str__(self) -> str:
        change = f"{self.current_cron!r} -> {self.recommended_cron!r}" if self.changed \
            else f"keep {self.current_cron!r}"
        return f"{self.job}: {change}: {self.reason}"
