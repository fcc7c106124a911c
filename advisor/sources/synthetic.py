"""Longhorn custom resources built in code, shaped exactly as ``kubectl get -o json`` shows.

Used to write the bundled sample fleet, by ``bench/`` to make large inputs, and by the
tests to build objects field by field. Field names and formats follow Longhorn v1.8
(``longhorn.io/v1beta2``); see ``longhorn-facts.md`` section 4.

The history this module lays out is a plain schedule walk, not a model of Longhorn: the
event simulator (``advisor.model.simulate``) is where lock conflicts are decided.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from advisor import longhorn

API = "longhorn.io/v1beta2"
GIB = 1024**3


def rfc3339(t: datetime) -> str:
    """A time as Kubernetes writes it: UTC, whole seconds, ``Z``."""
    # (isoformat then cut: a fifth of strftime's time, for the sample's 260,000 times)
    return t.astimezone(UTC).isoformat()[:19] + "Z"


def _uid(*parts: object) -> str:
    return str(uuid.UUID(hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()))


def _meta(name: str, created: datetime, labels: dict | None = None) -> dict:
    return {"creationTimestamp": rfc3339(created), "generation": 1,
            "labels": labels or {}, "name": name, "namespace": longhorn.NAMESPACE,
            "resourceVersion": str(int(hashlib.md5(name.encode()).hexdigest()[:7], 16)),
            "uid": _uid(name, created)}


def backup_cr(name: str, volume: str, *, state: str, created: datetime,
              started: datetime | None = None, finished: datetime | None = None,
              job: str = "", size_bytes: int = 0, volume_size_bytes: int = 0,
              uploaded_bytes: int = 0, mode: str = "incremental", target: str = "default",
              error: str = "", messages: dict | None = None, progress: int | None = None,
              api: str = API) -> dict:
    """A Backup CR. ``started``/``finished`` become snapshotCreatedAt/backupCreatedAt."""
    done = state in ("Completed", "Deleting")
    spec_labels = {"longhorn.io/volume-access-mode": "rwo"}
    if job:
        spec_labels["RecurringJob"] = job
    snapshot = f"snap-{name.removeprefix('backup-')}"
    return {
        "apiVersion": api, "kind": "Backup",
        "metadata": {**_meta(name, created, {"backup-target": target,
                                             "backup-volume": volume}),
                     "finalizers": ["longhorn.io"]},
        "spec": {"backupMode": mode, "labels": spec_labels, "snapshotName": snapshot,
                 "syncRequestedAt": None},
        "status": {
            "backupCreatedAt": rfc3339(finished) if done and finished else "",
            "backupTargetName": target, "compressionMethod": "lz4", "error": error,
            "labels": dict(spec_labels) if done else None,
            "lastSyncedAt": rfc3339(finished or started or created),
            "messages": messages, "newlyUploadDataSize": str(uploaded_bytes),
            "ownerID": "node-1",
            "progress": progress if progress is not None else (100 if done else 0),
            "reUploadedDataSize": "0", "replicaAddress": "tcp://10.42.0.12:10000",
            "size": str(size_bytes) if done else "0",
            "snapshotCreatedAt": rfc3339(started) if started else "",
            "snapshotName": snapshot, "state": state,
            "url": f"s3://backups@us-east-1/?backup={name}&volume={volume}",
            "volumeBackingImageName": "", "volumeCreated": rfc3339(created),
            "volumeName": volume, "volumeSize": str(volume_size_bytes),
        },
    }


def volume_cr(name: str, *, size_bytes: int, actual_size_bytes: int, created: datetime,
              jobs: Iterable[str] = (), groups: Iterable[str] = (), standby: bool = False,
              state: str = "attached", last_backup: str = "",
              last_backup_at: datetime | None = None,
              conditions: list[dict] | None = None) -> dict:
    """A Volume CR with its recurring-job and recurring-job-group labels."""
    labels = {"longhornvolume": name}
    labels.update({f"{longhorn.JOB_LABEL_PREFIX}{j}": "enabled" for j in jobs})
    labels.update({f"{longhorn.GROUP_LABEL_PREFIX}{g}": "enabled" for g in groups})
    return {
        "apiVersion": API, "kind": "Volume", "metadata": _meta(name, created, labels),
        "spec": {"size": str(size_bytes), "numberOfReplicas": 3, "dataEngine": "v1",
                 "backupTargetName": "default", "standby": standby, "frontend": "blockdev"},
        "status": {"actualSize": actual_size_bytes, "isStandby": standby,
                   "restoreRequired": standby, "state": state, "robustness": "healthy",
                   "lastBackup": last_backup,
                   "lastBackupAt": rfc3339(last_backup_at) if last_backup_at else "",
                   "conditions": conditions or []},
    }


def recurring_job_cr(name: str, cron: str, *, task: str = "backup", retain: int | None = 1,
                     concurrency: int | None = 10, groups: Iterable[str] = ("default",),
                     parameters: dict | None = None, created: datetime | None = None) -> dict:
    """A RecurringJob CR (``None`` leaves a field out, as a GitOps manifest may)."""
    spec: dict = {"name": name, "task": task, "cron": cron, "groups": list(groups),
                  "labels": {}, "parameters": parameters or {}}
    if retain is not None:
        spec["retain"] = retain
    if concurrency is not None:
        spec["concurrency"] = concurrency
    created = created or datetime(2026, 1, 5, tzinfo=UTC)
    return {"apiVersion": API, "kind": "RecurringJob", "metadata": _meta(name, created),
            "spec": spec, "status": {"executionCount": 0, "ownerID": "node-1"}}


def backup_volume_cr(volume: str, *, size_bytes: int, last_backup: str = "",
                     last_backup_at: datetime | None = None,
                     created: datetime | None = None) -> dict:
    """A BackupVolume CR (v1.8 names it ``<volume>-<hash>``)."""
    created = created or datetime(2026, 1, 5, tzinfo=UTC)
    name = f"{volume}-{hashlib.md5(volume.encode()).hexdigest()[:6]}"
    return {"apiVersion": API, "kind": "BackupVolume",
            "metadata": _meta(name, created, {"backup-target": "default",
                                              "backup-volume": volume}),
            "spec": {"backupTargetName": "default", "volumeName": volume},
            "status": {"size": str(size_bytes), "lastBackupName": last_backup,
                       "lastBackupAt": rfc3339(last_backup_at) if last_backup_at else ""}}


def setting_cr(name: str, value: str) -> dict:
    """A Setting CR (its value is a top-level field)."""
    created = datetime(2026, 1, 5, tzinfo=UTC)
    return {"apiVersion": API, "kind": "Setting", "metadata": _meta(name, created),
            "value": value, "status": {"applied": True}}


def kubectl_list(items: list[dict]) -> dict:
    """The ``List`` that ``kubectl get a,b,c -o json`` prints."""
    return {"apiVersion": "v1", "items": items, "kind": "List",
            "metadata": {"resourceVersion": ""}}


def backups_for_bench(n: int, *, volumes: int = 400, seed: int = 0) -> Iterable[dict]:
    """``n`` Completed/Error/InProgress Backups spread over ``volumes`` volumes, hourly."""
    import random

    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        volume = f"pvc-{_uid('bench', i % volumes)}"
        fire = t0 + timedelta(hours=i // volumes)
        start = fire + timedelta(seconds=rng.randint(1, 120))
        state = rng.choices(["Completed", "Error", "InProgress"], [96, 3, 1])[0]
        end = start + timedelta(seconds=rng.lognormvariate(5, 1))
        yield backup_cr(
            f"backup-{hashlib.md5(str(i).encode()).hexdigest()[:16]}", volume, state=state,
            created=fire, started=start, finished=end, job="hourly",
            size_bytes=rng.randint(1, 50) * GIB, volume_size_bytes=100 * GIB,
            uploaded_bytes=rng.randint(0, 4) * GIB,
            error=longhorn.lock_failure_message(volume, "create") if state == "Error" else "")
