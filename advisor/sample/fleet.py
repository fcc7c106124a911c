"""The bundled sample fleet: eight weeks of a 60-volume cluster, made by the simulator.

The fleet holds the mistakes seen in real clusters, next to healthy jobs:

- every backup job but one fires at minute 0;
- ``hourly`` and ``daily`` both cover the ``default`` group (40 volumes) and meet at
  00:00, so hourly retention deletions run into daily backups;
- ``hourly`` runs those 40 volumes 10 at a time and its run outlasts the hour, so slots
  start late or never run;
- ``hourly-db`` backs up the ``db`` group hourly, and its largest volumes take over an hour;
- ``weekly`` and ``monthly`` cover ``archive`` at 03:00 and meet when the 1st is a Sunday
  (2026-11-01);
- ``pvc-dr-orders`` is a DR volume following ``pvc-orders``, whose ``orders`` job keeps
  only 2 backups every 15 minutes, so its restores meet deletions;
- ``batch`` (minute 17, 4 volumes) is healthy.

:func:`build_sample_fleet` runs the simulation (fixed seed) and returns what a watch of the
cluster would have recorded: every Backup with its last state and message, worded as
Longhorn writes them, plus the RecurringJobs, Volumes, BackupVolumes and Settings, as one
kubectl ``List``. ``advisor sample --out DIR`` writes it with the ground-truth event log.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.longhorn import lock_failure_message
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.simulate import SimulationResult, simulate
from advisor.sources import synthetic as syn

COLLECTED_AT = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # a Monday morning
WEEKS = 8
SEED = 20261123
VERSION = "1.8"
GIB = 2**30

JOBS = (
    JobSpec("hourly", "0 * * * *", retain=24, concurrency=10, groups=("default",)),
    JobSpec("daily", "0 0 * * *", retain=7, concurrency=10, groups=("default", "db")),
    JobSpec("hourly-db", "0 * * * *", retain=12, concurrency=2, groups=("db",)),
    JobSpec("weekly", "0 3 * * 0", retain=4, concurrency=4, groups=("archive",)),
    JobSpec("monthly", "0 3 1 * *", retain=6, concurrency=4, groups=("archive",)),
    JobSpec("orders", "*/15 * * * *", retain=2, concurrency=1, groups=("orders",)),
    JobSpec("batch", "17 2 * * *", retain=7, concurrency=4, groups=("batch",)),
    JobSpec("snapshots", "30 */6 * * *", task="snapshot", retain=4, groups=("default",)),
)


def _durations(size_gib: float, rng: np.random.Generator, churn: float = 0.035
               ) -> tuple[Duration, Duration]:
    """Backup and deletion durations that grow with the volume (incremental backups
    upload changed blocks, ``churn`` minutes per GiB; a deletion walks the backup volume's
    blocks)."""
    backup_min = 0.5 + churn * size_gib * rng.uniform(0.8, 1.2)
    deletion_s = 20 + 0.4 * size_gib * rng.uniform(0.5, 1.5)
    return (Duration(backup_min * 60, backup_min * 60 * 1.8, "lognormal"),
            Duration(deletion_s, deletion_s * 2.5, "lognormal"))


def sample_fleet(seed: int = SEED) -> Fleet:
    """The sample fleet's volumes and jobs (sizes and durations drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    volumes: list[VolumeSpec] = []

    def add(name: str, size_gib: float, churn: float = 0.035, **kw: object) -> None:
        backup, deletion = _durations(size_gib, rng, churn)
        volumes.append(VolumeSpec(name, int(size_gib * GIB), backup, deletion, **kw))

    sizes = np.exp(rng.uniform(np.log(1), np.log(400), 40))
    sizes[:3] = (900, 1200, 1500)  # a few large volumes in the hourly group
    for i, size in enumerate(sizes):
        add(f"pvc-app-{i:02d}", float(round(size)))
    for i, size in enumerate((500, 800, 1100, 1400, 1800, 2048)):
        add(f"pvc-db-{i:02d}", size, churn=0.045, groups=("db",))  # busy databases
    for i in range(8):
        add(f"pvc-archive-{i:02d}", float(round(rng.uniform(50, 600))), groups=("archive",))
    add("pvc-orders", 40, groups=("orders",))
    backup, deletion = _durations(40, rng)
    volumes.append(VolumeSpec("pvc-dr-orders", 40 * GIB, backup, deletion, standby=True,
                              restore_of="pvc-orders", groups=("dr",),
                              restore_duration=Duration(90, 240, "lognormal")))
    for i in range(4):
        add(f"pvc-batch-{i:02d}", float(round(rng.uniform(5, 80))), groups=("batch",))
    return Fleet(tuple(volumes), JOBS)


def simulate_sample(seed: int = SEED) -> tuple[Fleet, SimulationResult]:
    """Eight weeks of the sample fleet up to :data:`COLLECTED_AT`."""
    fleet = sample_fleet(seed)
    start = COLLECTED_AT - timedelta(weeks=WEEKS)
    return fleet, simulate(fleet, start, COLLECTED_AT, version=VERSION, seed=seed)


def _seconds(column: pd.Series) -> list[datetime | None]:
    """A column of times as Longhorn writes them (whole seconds), None for NaT: converted
    at once (a Timestamp's ``floor`` one by one costs 40 µs each, 6 s for the sample)."""
    floored = column.dt.floor("s")
    return [None if pd.isna(t) else t for t in floored.dt.to_pydatetime()]


def to_kubectl_list(fleet: Fleet, result: SimulationResult) -> dict:
    """The simulation as the objects a collector would have recorded (a kubectl List)."""
    items: list[dict] = []
    sizes = {v.name: v.size_bytes for v in fleet.volumes}
    backups = result.frames["backups"]
    # column by column: itertuples over the frame's Arrow strings costs seconds
    columns = [backups[c].tolist() for c in ("backup", "volume", "state", "recurring_job",
                                              "message", "lock_conflict")]
    times = [_seconds(backups[c]) for c in ("requested_at", "started_at", "finished_at")]
    for name, volume, state, job, message, kind, created, started, finished in zip(
            *columns, *times, strict=True):
        message = message if isinstance(message, str) else ""
        items.append(syn.backup_cr(
            name, volume, state=state, created=created, started=started,
            finished=finished, job=job, size_bytes=sizes[volume] // 3,
            volume_size_bytes=sizes[volume], uploaded_bytes=sizes[volume] // 50,
            error=message if kind == "create_blocked" else "",
            messages=({"error": message} if kind == "delete_blocked" else
                      {"info": message} if kind == "pending_behind_deletion" else None)))
    ev = result.events
    restore_blocked = ev[ev["conflict"] == "restore_blocked"]
    start = COLLECTED_AT - timedelta(weeks=WEEKS + 12)
    done = result.frames["backups"]
    done = done[done["state"] == "Completed"].sort_values("finished_at")
    for v in fleet.volumes:
        conditions = None
        # a DR volume's status.lastBackup: the last backup of its source it restored
        restored = done[done["volume"] == v.restore_of].tail(1) if v.standby else done[:0]
        last = restore_blocked[restore_blocked["volume"] == v.name].tail(1)
        if len(last):
            conditions = [{"type": "Restore", "status": "False", "reason": "RestoreFailure",
                           "lastTransitionTime": syn.rfc3339(last["time"].iloc[0]),
                           "message": lock_failure_message(v.restore_of or v.name, "create",
                                                       final_period=False)}]
        items.append(syn.volume_cr(v.name, size_bytes=v.size_bytes,
                                   actual_size_bytes=v.size_bytes // 2, created=start,
                                   jobs=v.jobs, groups=v.groups, standby=v.standby,
                                   conditions=conditions,
                                   last_backup=restored["backup"].iloc[0] if len(restored)
                                   else "",
                                   last_backup_at=_seconds(restored["started_at"])[0]
                                   if len(restored) else None))
        if not v.standby:
            items.append(syn.backup_volume_cr(v.name, size_bytes=v.size_bytes // 2))
    for j in fleet.jobs:
        items.append(syn.recurring_job_cr(j.name, j.cron, task=j.task, retain=j.retain,
                                          concurrency=j.concurrency, groups=j.groups))
    items += [syn.setting_cr("failed-backup-ttl", "1440"),
              syn.setting_cr("allow-recurring-job-while-volume-detached", "false"),
              syn.setting_cr("backup-concurrent-limit", "2")]
    return syn.kubectl_list(items)


def build_sample_fleet(seed: int = SEED) -> dict:
    """The sample fleet as a kubectl ``List`` (deterministic for a seed)."""
    return to_kubectl_list(*simulate_sample(seed))


def write_sample(out: str | Path, seed: int = SEED) -> dict[str, Path]:
    """Write ``sample-fleet.json`` (for ``advisor collect --from-file``) and the ground
    truth ``events.csv``, ``runs.csv`` and ``skipped-slots.csv`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fleet, result = simulate_sample(seed)
    paths = {"fleet": out / "sample-fleet.json", "events": out / "events.csv",
             "runs": out / "runs.csv", "skipped": out / "skipped-slots.csv"}
    with paths["fleet"].open("w") as f:
        json.dump(to_kubectl_list(fleet, result), f, separators=(",", ":"))
    result.events.to_csv(paths["events"], index=False)
    result.runs.to_csv(paths["runs"], index=False)
    result.skipped_slots.to_csv(paths["skipped"], index=False)
    return paths
