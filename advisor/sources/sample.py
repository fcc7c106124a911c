"""The bundled sample fleet: one ``kubectl get ... -o json`` List of a small cluster.

It shows, in data, the problems the advisor exists to find:

- three backup jobs meet at 00:00 (``hourly``, ``daily``, and on Sundays ``weekly``), so
  retention deletions of one job run while another job backs up the same volume;
- ``pvc-db-main`` takes about 70 minutes to back up but is in the hourly job, so the job's
  runs outlast their interval and fire times are skipped;
- failed backups with lock messages of both directions, a backup Pending behind a
  deletion, backups still in progress (censored), a DR standby whose restore met a
  deletion, and a detached volume.

The file ``advisor/data/sample-fleet.json`` is written by ``python -m
advisor.sources.sample`` and the tests check that it is what this module generates. The
history is a schedule walk with Forbid catch-up, not the event simulator's output.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from advisor.sources import synthetic as syn

COLLECTED_AT = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # a Monday morning
DAYS = 7
GIB = syn.GIB

# name: (size GiB, actual GiB, job labels, group labels, median backup minutes)
VOLUMES = {
    "pvc-web-01": (10, 4, (), (), 2.0),
    "pvc-web-02": (10, 5, (), (), 2.5),
    "pvc-cache": (5, 1, (), (), 1.0),
    "pvc-logs": (100, 60, (), (), 12.0),
    "pvc-db-main": (500, 380, ("hourly",), ("critical",), 70.0),
    "pvc-db-replica": (200, 150, (), ("critical",), 25.0),
    "pvc-dr-standby": (200, 150, (), ("critical",), 0.0),
    "pvc-detached": (20, 8, (), (), 0.0),
}
SKIPPED_VOLUMES = {"pvc-dr-standby", "pvc-detached"}  # standby; detached
# name: (cron, retain, concurrency, groups, hour step, weekday or None)
JOBS = {
    "hourly": ("0 * * * *", 24, 2, ("default",)),
    "daily": ("0 0 * * *", 7, 10, ("default", "critical")),
    "weekly": ("0 0 * * 0", 4, 10, ("critical",)),
    "snap-6h": ("0 */6 * * *", 4, 10, ("default",)),
}


def _fire_times(job: str, start: datetime, end: datetime) -> list[datetime]:
    step = {"hourly": timedelta(hours=1), "daily": timedelta(days=1),
            "weekly": timedelta(days=7)}[job]
    t = start.replace(minute=0, second=0, microsecond=0)
    if job != "hourly":
        t = t.replace(hour=0)
    if job == "weekly":  # Sundays (cron weekday 0)
        t -= timedelta(days=(t.weekday() + 1) % 7)
    out = []
    while t < end:
        if t >= start:
            out.append(t)
        t += step
    return out


def _run_starts(fires: list[datetime], ends: list[datetime]) -> Iterator[datetime]:
    """Run start times under Forbid, given ``ends``, filled in by the caller as runs end.

    A slot that fires during a run does not start; when the run ends the most recent
    missed slot starts late (about 10 s later, at the controller's next sync) and older
    missed slots are lost.
    """
    i = 0
    while i < len(fires):
        free_at = ends[-1] if ends else fires[i]
        j = i
        while j + 1 < len(fires) and fires[j + 1] <= free_at:
            j += 1
        late = fires[j] < free_at
        yield free_at + timedelta(seconds=10) if late else fires[j]
        i = j + 1


def _members(job: str) -> list[str]:
    groups = set(JOBS[job][3])
    out = []
    for name, (_, _, jobs, grps, _) in VOLUMES.items():
        in_default = not jobs and not grps and "default" in groups
        if job in jobs or groups & set(grps) or in_default:
            out.append(name)
    return out


def build_sample_fleet(seed: int = 7) -> dict:
    """The sample fleet as a kubectl ``List`` (deterministic for a seed)."""
    rng = random.Random(seed)
    start = COLLECTED_AT - timedelta(days=DAYS)
    items: list[dict] = []
    backups: dict[tuple[str, str], list[dict]] = {}
    counter = 0
    for job in ("hourly", "daily", "weekly"):
        concurrency = JOBS[job][2]
        members = [v for v in _members(job) if v not in SKIPPED_VOLUMES]
        run_ends: list[datetime] = []

        for run_start in _run_starts(_fire_times(job, start, COLLECTED_AT), run_ends):
            if run_start >= COLLECTED_AT:
                break
            lanes = [run_start] * concurrency
            for volume in members:
                lane = min(range(concurrency), key=lanes.__getitem__)
                requested = lanes[lane]
                began = requested + timedelta(seconds=rng.randint(2, 20))
                minutes = VOLUMES[volume][4] * rng.lognormvariate(0, 0.15)
                ended = began + timedelta(minutes=minutes)
                lanes[lane] = ended
                counter += 1
                size, actual = VOLUMES[volume][0] * GIB, VOLUMES[volume][1] * GIB
                state = "Completed" if ended <= COLLECTED_AT else "InProgress"
                backups.setdefault((job, volume), []).append(syn.backup_cr(
                    f"backup-{counter:04d}{volume[-4:]}{job[:2]}", volume, state=state,
                    created=requested, started=began, finished=ended, job=job,
                    size_bytes=actual, volume_size_bytes=size,
                    uploaded_bytes=int(actual * rng.uniform(0.01, 0.05)),
                    mode="full" if job == "weekly" else "incremental",
                    progress=None if state == "Completed" else 63))
            run_ends.append(max(lanes))
    for (job, _volume), records in backups.items():
        items.extend(records[-JOBS[job][1]:])  # retention has deleted the older ones
    items.extend(_conflict_records())
    for name, (size, actual, jobs, groups, _) in VOLUMES.items():
        items.append(syn.volume_cr(
            name, size_bytes=size * GIB, actual_size_bytes=actual * GIB,
            created=start - timedelta(days=90), jobs=jobs, groups=groups,
            standby=name == "pvc-dr-standby",
            state="detached" if name == "pvc-detached" else "attached",
            conditions=_restore_failure(name) if name == "pvc-dr-standby" else None))
        if name != "pvc-detached":
            items.append(syn.backup_volume_cr(name, size_bytes=actual * GIB * 3))
    for name, (cron, retain, concurrency, groups) in JOBS.items():
        items.append(syn.recurring_job_cr(
            name, cron, task="snapshot" if name == "snap-6h" else "backup", retain=retain,
            concurrency=concurrency, groups=groups))
    items += [syn.setting_cr("failed-backup-ttl", "1440"),
              syn.setting_cr("allow-recurring-job-while-volume-detached", "false"),
              syn.setting_cr("backup-concurrent-limit", "2")]
    return syn.kubectl_list(items)


def _conflict_records() -> list[dict]:
    """The failures a week like this leaves behind, worded as Longhorn writes them."""
    midnight = COLLECTED_AT.replace(hour=0)
    db = "pvc-db-main"
    return [
        # daily's backup met hourly's retention deletion at 00:00 and failed (<= 1.7 path)
        syn.backup_cr("backup-err0000dbda", db, state="Error", job="daily",
                      created=midnight, started=midnight + timedelta(seconds=4),
                      volume_size_bytes=500 * GIB,
                      error=syn.lock_message(db, "create")),
        # >= 1.8: a backup waits Pending while a backup of the volume is being deleted
        syn.backup_cr("backup-pend0000logs", "pvc-logs", state="Pending", job="hourly",
                      created=COLLECTED_AT - timedelta(seconds=40),
                      volume_size_bytes=100 * GIB,
                      messages={"info": "Wait for backup backup-del00000logs to be deleted"}),
        # the retention deletion that ran into a backup: retried after 1 min, doubling
        syn.backup_cr("backup-del00000logs", "pvc-logs", state="Deleting", job="hourly",
                      created=COLLECTED_AT - timedelta(hours=25),
                      started=COLLECTED_AT - timedelta(hours=25, seconds=-5),
                      finished=COLLECTED_AT - timedelta(hours=24, minutes=48),
                      volume_size_bytes=100 * GIB,
                      messages={"error": "Failed to delete the backup backup-del00000logs in "
                                "the backupstore, err " + syn.lock_message("pvc-logs",
                                                                          "delete")}),
    ]


def _restore_failure(volume: str) -> list[dict]:
    """A DR volume whose incremental restore met a deletion of its backup volume."""
    return [{"type": "Restore", "status": "False", "reason": "RestoreFailure",
             "lastTransitionTime": syn.rfc3339(COLLECTED_AT - timedelta(minutes=25)),
             "message": syn.lock_message(volume, "create", final_period=False)}]


def sample_path() -> Path:
    """Path of the bundled sample fleet file."""
    return Path(str(resources.files("advisor") / "data" / "sample-fleet.json"))


if __name__ == "__main__":
    json.dump(build_sample_fleet(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
