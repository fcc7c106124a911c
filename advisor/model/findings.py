"""A structural finding of ``advisor check`` (:mod:`advisor.model.collisions`), and the
proposed RecurringJob it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo

import numpy as np

from advisor.cron import EverySchedule, Schedule
from advisor.longhorn import BACKUPSTORE_TASKS, SYSTEM_BACKUP
from advisor.schedules import describe

__all__ = ["KINDS", "RETENTION_TASKS", "Finding", "ProposedJob"]

KINDS = {"invalid_cron": "error", "recovery_point_objective": "high",
         "interval_shorter_than_duration": "high", "simultaneous_fire": "high",
         "retention_deletion_meets_backup": "medium", "near_fire": "low"}
"""Finding kinds, in report order, with their severity."""
RETENTION_TASKS = BACKUPSTORE_TASKS - {SYSTEM_BACKUP}
"""The tasks whose retention deletes volume backups (system-backup's removes
SystemBackups, not the volume backups it made)."""


@dataclass(frozen=True)
class Finding:
    """One structural risk of a set of RecurringJobs.

    ``volumes`` are the volumes at stake when Volume manifests were given, else
    ``groups`` are. ``p_per_run``: the share of a job's runs affected (the larger of the
    two jobs' shares for a pair), None when no probability applies.
    ``expected_per_week``: affected runs (or volume-runs) per week on average.
    """

    kind: str
    jobs: tuple[str, ...]
    explanation: str
    volumes: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    p_per_run: float | None = None
    expected_per_week: float | None = None
    cluster: str = "default"
    details: Mapping[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def severity(self) -> str:
        """``error``, ``high``, ``medium`` or ``low`` (see :data:`KINDS`)."""
        return KINDS[self.kind]

    def to_dict(self) -> dict:
        """The JSON form printed by ``advisor check -o json``."""
        out: dict = {"kind": self.kind, "severity": self.severity, "cluster": self.cluster,
                     "jobs": list(self.jobs)}
        if self.volumes is not None:
            out["volumes"] = list(self.volumes)
        else:
            out["groups"] = list(self.groups or ())
        out.update(p_per_run=self.p_per_run, expected_per_week=self.expected_per_week,
                   explanation=self.explanation, **self.details)
        return out

    def __str__(self) -> str:
        return f"[{self.severity}] {self.kind}: {self.explanation}"


@dataclass(frozen=True)
class ProposedJob:
    """A RecurringJob of the manifests that touches the backupstore, with its fire times
    over the horizon (unix seconds) and the volumes or groups it covers (None: every
    volume)."""

    cluster: str
    name: str
    task: str
    cron: str
    schedule: Schedule
    concurrency: int
    fires: np.ndarray  # unix seconds
    members: frozenset[str] | None  # volumes or groups; None: every volume

    @property
    def label(self) -> str:
        """``name (cron)``."""
        return f"{self.name} ({self.cron})"

    @property
    def phased(self) -> bool:
        """Whether its fire times are known: ``@every`` counts from an unknown start."""
        return not isinstance(self.schedule, EverySchedule)

    def about(self, loc: tzinfo | None) -> str:
        """``name (cron: when it fires, in words)``, in the zone ``loc``."""
        return f"{self.name} ({self.cron}: {describe(self.schedule, loc)})"
