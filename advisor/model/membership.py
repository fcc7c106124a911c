"""Which volumes each backup RecurringJob's runs process, and the parts of a fleet that
share no volume, job or DR pair (Longhorn's membership rules are
:mod:`advisor.longhorn`'s).
"""

from __future__ import annotations

from advisor import longhorn
from advisor.model.fleet import Fleet, VolumeSpec

__all__ = ["independent_parts", "run_members"]


def run_members(fleet: Fleet) -> dict[str, list[str]]:
    """The volumes each backupstore job's runs process, in name order (skipped volumes
    left out); jobs that never touch the backupstore are not listed. (The advice asks
    this of the same fleet hundreds of times: answers are kept by what decides them.)"""
    key = (tuple((v.name, v.jobs, v.groups, v.standby, v.state, v.has_backup)
                 for v in fleet.volumes),
           tuple((j.name, j.task, j.groups, j.backup_policy) for j in fleet.jobs),
           fleet.allow_detached)
    if key not in _KEPT:
        _KEPT[key] = _run_members(fleet)
        while len(_KEPT) > 64:
            _KEPT.pop(next(iter(_KEPT)))
    return {job: list(vols) for job, vols in _KEPT[key].items()}


_KEPT: dict[tuple, dict[str, list[str]]] = {}


def _run_members(fleet: Fleet) -> dict[str, list[str]]:
    label_jobs, out = {j.name: j.groups for j in fleet.jobs}, {}
    runnable = [v for v in sorted(fleet.volumes, key=lambda v: v.name)
                if not longhorn.skip_reason({"standby": v.standby, "state": v.state},
                                            allow_detached=fleet.allow_detached)]
    covered = {v.name: {m.recurring_job for m in longhorn.volume_jobs(
        v.name, v.jobs, v.groups, label_jobs)} for v in runnable}
    for j in fleet.jobs:
        if j.task not in longhorn.BACKUPSTORE_TASKS:
            continue  # snapshots and trims never touch the backupstore
        out[j.name] = [v.name for v in runnable if longhorn.system_backup_covers(
            {"standby": v.standby, "last_backup": v.has_backup}, j.backup_policy)
            ] if j.task == longhorn.SYSTEM_BACKUP else [
            v.name for v in runnable if j.name in covered[v.name]]
    return out


def independent_parts(fleet: Fleet) -> list[Fleet]:
    """The fleet split into parts that share no volume, job or DR pair: each part's
    locks and runs are independent of the others'. Parts are ordered by their first
    volume's name; volumes and jobs in no backup run go with the first part."""
    parent = {v.name: v.name for v in fleet.volumes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    members = run_members(fleet)
    for names in members.values():
        for other in names[1:]:
            union(names[0], other)
    for v in fleet.volumes:
        if v.restore_of in parent:
            union(v.name, v.restore_of)
    for _, volume in fleet.manual_backups:
        parent.setdefault(volume, volume)
    groups: dict[str, list[VolumeSpec]] = {}
    for v in sorted(fleet.volumes, key=lambda v: v.name):
        groups.setdefault(find(v.name), []).append(v)
    parts = sorted(groups.values(), key=lambda vs: vs[0].name)
    out = []
    for i, vols in enumerate(parts):
        names = {v.name for v in vols}
        jobs = tuple(j for j in fleet.jobs if set(members.get(j.name, ())) & names
                     or (i == 0 and not members.get(j.name)))
        manual = tuple(m for m in fleet.manual_backups if m[1] in names)
        out.append(Fleet(tuple(vols), jobs, fleet.poll_interval_s, fleet.failed_backup_ttl_s,
                         fleet.allow_detached, manual))
    return out
