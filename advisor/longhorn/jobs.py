"""Which RecurringJobs run on which volume, and what a run does to the backupstore.

From ``longhorn-facts.md`` section 2 and the label-driven recurring job design
(longhorn/longhorn ``enhancements/20210624-label-driven-recurring-job.md``): a volume
runs the jobs named by its ``recurring-job.longhorn.io/<job>=enabled`` labels and the
jobs whose ``spec.groups`` hold a group of its
``recurring-job-group.longhorn.io/<group>=enabled`` labels; a volume with no recurring
job label at all is in the group ``default``. A run skips DR (standby) volumes, restoring
and faulted ones, and detached ones unless ``allow-recurring-job-while-volume-detached``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

TASKS = frozenset({"snapshot", "snapshot-force-create", "snapshot-cleanup", "snapshot-delete",
                   "backup", "backup-force-create", "filesystem-trim", "system-backup"})
"""RecurringJob ``spec.task`` values (longhorn.io/v1beta2 ``RecurringJobType``)."""

BACKUPSTORE_TASKS = frozenset({"backup", "backup-force-create", "system-backup"})
"""Tasks that create backups, and so take the backupstore lock and, after each backup,
delete the job's backups beyond ``retain``. Snapshot tasks and trims never touch it."""

DEFAULT_GROUP = "default"
DEFAULT_CONCURRENCY = 10
NAMESPACE = "longhorn-system"
"""The namespace Longhorn is installed in by default (its CRs live there)."""
JOB_LABEL_PREFIX = "recurring-job.longhorn.io/"
"""A Volume label ``recurring-job.longhorn.io/<job>: enabled`` puts it in that job."""
GROUP_LABEL_PREFIX = "recurring-job-group.longhorn.io/"
"""A Volume label ``recurring-job-group.longhorn.io/<group>: enabled`` puts it in every
job of that group."""
RETAIN_ZERO_TASKS = frozenset({"snapshot-cleanup", "filesystem-trim"})
"""Tasks whose ``retain`` Longhorn's webhook requires to be 0 (they keep nothing)."""
ALLOW_DETACHED_SETTING = "allow-recurring-job-while-volume-detached"
SYSTEM_BACKUP_POLICIES = ("if-not-present", "always", "disabled")
"""``parameters.volume-backup-policy`` of a system-backup job; the first is the default."""
SYSTEM_BACKUP = "system-backup"
"""The task that backs up volumes by policy, not by label, all at once."""


@dataclass(frozen=True)
class Membership:
    """One (volume, job) pair and why the job covers the volume: ``via`` is
    ``"job label"``, ``"group <name>"``, ``"default group"`` or ``"system backup"``."""

    volume: str
    recurring_job: str
    via: str


def _names(value: object) -> list[str]:
    # None, NaN and pd.NA (a nullable "string" column's missing value) name nothing
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return []
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return [str(v) for v in value]  # type: ignore[union-attr]


def volume_jobs(volume: str, job_labels: Iterable[str] | str, group_labels: Iterable[str] | str,
                jobs: Mapping[str, Iterable[str] | str]) -> list[Membership]:
    """The jobs (name -> groups) that run on ``volume`` given its labels, job by job.

    A job label naming a job that does not exist runs nothing. System-backup jobs are
    not label-driven: see :func:`job_volumes`.
    """
    own, groups = set(_names(job_labels)), set(_names(group_labels))
    if not own and not groups:
        groups = {DEFAULT_GROUP}
        default = True
    else:
        default = False
    out = []
    for job, job_groups in jobs.items():
        if job in own:
            out.append(Membership(volume, job, "job label"))
            continue
        shared = sorted(groups & set(_names(job_groups)))
        if shared:
            via = "default group" if default else f"group {shared[0]}"
            out.append(Membership(volume, job, via))
    return out


def skip_reason(volume: Mapping, *, allow_detached: bool = False) -> str | None:
    """Why a run of a job skips this volume (a row of the ``volumes`` frame), or None."""
    if volume.get("standby") is True:
        return "DR (standby) volume"
    if volume.get("restore_required") is True:
        return "restoring"
    if str(volume.get("robustness") or "") == "faulted":
        return "faulted"
    if str(volume.get("state") or "") == "detached" and not allow_detached:
        return f"detached ({ALLOW_DETACHED_SETTING} is false)"
    return None


def system_backup_covers(volume: Mapping, policy: str = SYSTEM_BACKUP_POLICIES[0]) -> bool:
    """Whether a system-backup job whose ``volume-backup-policy`` is ``policy`` backs up
    ``volume`` (a mapping with ``standby`` and ``last_backup``): every non-DR volume
    with ``always``, those without a backup yet with ``if-not-present`` (the default),
    none with ``disabled``."""
    if volume.get("standby") is True or policy == "disabled":
        return False
    return not (policy == "if-not-present" and volume.get("last_backup"))


def run_lanes(task: str, concurrency: int, volumes: int) -> int:
    """How many of a run's ``volumes`` it backs up at once: the job's ``concurrency``;
    a system backup has no limit, so all of them."""
    return volumes if task == SYSTEM_BACKUP else concurrency


def kept_by_retention(task: str, retain: int) -> float:
    """How many of its own backups per volume a job's retention keeps: ``retain``. A
    system backup's Backups carry no RecurringJob label, so no retention counts or
    deletes them (infinite)."""
    return float("inf") if task == SYSTEM_BACKUP else float(retain)


def system_backup_policy(parameters: object) -> str:
    """A system-backup job's ``volume-backup-policy`` from its ``spec.parameters`` (a
    mapping or its JSON text; the default when it names none)."""
    try:
        params = json.loads(parameters) if isinstance(parameters, str) else parameters
    except ValueError:
        params = {}
    policy = (params if isinstance(params, Mapping) else {}).get("volume-backup-policy")
    return str(policy or SYSTEM_BACKUP_POLICIES[0])


def job_volumes(jobs: pd.DataFrame, volumes: pd.DataFrame, *,
                allow_detached: bool = False) -> pd.DataFrame:
    """Every (volume, job) pair of the ``jobs`` and ``volumes`` frames, per cluster.

    Columns: ``cluster``, ``volume``, ``recurring_job``, ``task``, ``via``,
    ``touches_backupstore``, ``skipped`` (the reason a run skips the volume, else NA).
    System-backup jobs cover every non-DR volume their ``volume-backup-policy`` asks for
    (``if-not-present``: volumes without a backup yet).
    """
    rows = []
    for cluster, vols in volumes.groupby("cluster", sort=True):
        cj = jobs[jobs["cluster"] == cluster]
        label_jobs = {r.recurring_job: r.groups for r in cj.itertuples()
                      if r.task != SYSTEM_BACKUP}
        tasks = dict(zip(cj["recurring_job"], cj["task"], strict=True))
        system = [(r.recurring_job, system_backup_policy(r.parameters))
                  for r in cj[cj["task"] == SYSTEM_BACKUP].itertuples()]
        for v in vols.to_dict("records"):
            reason = skip_reason(v, allow_detached=allow_detached)
            found = volume_jobs(v["volume"], v["recurring_jobs"], v["recurring_job_groups"],
                                label_jobs)
            found += [Membership(v["volume"], name, "system backup")
                      for name, policy in system if system_backup_covers(v, policy)]
            for m in found:
                rows.append({"cluster": cluster, "volume": m.volume,
                             "recurring_job": m.recurring_job, "task": tasks[m.recurring_job],
                             "via": m.via,
                             "touches_backupstore": tasks[m.recurring_job] in BACKUPSTORE_TASKS,
                             "skipped": reason})
    cols = ["cluster", "volume", "recurring_job", "task", "via", "touches_backupstore",
            "skipped"]
    out = pd.DataFrame(rows, columns=cols)
    return out.astype({"cluster": "string", "volume": "string", "recurring_job": "string",
                       "task": "string", "via": "string", "touches_backupstore": "boolean",
                       "skipped": "string"})
