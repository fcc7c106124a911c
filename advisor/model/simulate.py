"""A discrete-event simulation of a fleet's backup operations and their backupstore locks.

What is simulated (``longhorn-facts.md``; rules from :mod:`advisor.longhorn`):

- each backup RecurringJob fires at its cron times (:mod:`advisor.schedules`), under
  Forbid: a slot that fires during a run does not start; when the run ends the latest
  missed slot starts at once and older ones are lost. A run processes its volumes
  ``concurrency`` at a time, in name order, and ends with its slowest volume;
- per volume: a Backup is created, takes lock type 1 (written at its start, checked 2 s
  later), runs for a drawn duration and completes; then the job deletes its backups of
  that volume beyond ``retain``: each deletion runs in the background and takes lock
  type 2 for a drawn duration;
- the lock rule: a newcomer fails at once if an older lock of the other type is still
  held at its 2 s check; the lock already held wins;
- a failed deletion is retried (>= 1.8: after 1 min, doubling up to 24 h; <= 1.7: the work
  queue's 5 ms doubling up to 1000 s). A backup that meets a deletion fails (<= 1.7) or
  waits Pending while a Backup of the volume is Deleting (>= 1.8: a deletion attempt in
  progress; a failed one is in Error until its retry and holds nothing back);
- DR (standby) volumes restore incrementally at backup-target poll times (lock type 1) and
  retry at the next poll when blocked; Error backups are deleted at the first poll after
  the failed-backup TTL; system-backup jobs back up every non-DR volume at once; manual
  backups are created when asked;
- optionally, backups uploading at once to one target share its bandwidth
  (``target_capacity``), so storms slow every backup.

Durations come from each volume's distributions; the simulator fits nothing. The output
is the schema's frames (Backups with states, times and messages worded as Longhorn
writes them) and a ground-truth event log.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from advisor import longhorn, schema
from advisor.longhorn import LOCK_ACQUIRE_WAIT_S, Behaviour, behaviour
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.schedules import Forbid, fire_times

__all__ = ["SimulationResult", "simulate"]

BACKUP, RESTORE, DELETION = (int(longhorn.LockType.BACKUP), int(longhorn.LockType.RESTORE),
                             int(longhorn.LockType.DELETION))
EVENT_COLUMNS = ["time", "volume", "operation", "event", "recurring_job", "backup",
                 "conflict", "detail"]


def _hex(text: str, n: int) -> str:
    """Stable hex digits for generated names (Python's str hash changes per process)."""
    return hashlib.md5(text.encode()).hexdigest()[:n]


@dataclass
class _Lock:
    kind: int
    acquired: float
    released: float = np.inf


@dataclass
class _Backup:
    name: str
    volume: str
    job: str
    requested: float
    started: float = np.nan
    finished: float = np.nan
    state: str = ""
    error: str = ""
    info: str = ""
    msg_error: str = ""
    conflict: str = "none"
    failures: int = 0


@dataclass
class _VolumeState:
    spec: VolumeSpec
    locks: list[_Lock] = field(default_factory=list)
    deleting: list[str] = field(default_factory=list)
    pending: list[tuple[_Backup, Callable[[float], None]]] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)  # job -> Completed, oldest first
    restored: str | None = None
    restoring: bool = False
    last_completed: str | None = None  # the newest Completed backup, for DR restores
    created: int = 0  # backups created, for their names

    def blocked(self, kind: int, before: float, at: float) -> bool:
        """Whether a lock of ``kind`` written at ``before`` fails its check at ``at``: an
        older lock (acquired before it) of a type it cannot be held with
        (:func:`advisor.longhorn.locks_compatible`) is still held then."""
        return any(lk.acquired < before and lk.released > at
                   and not longhorn.locks_compatible(lk.kind, kind) for lk in self.locks)

    def take(self, kind: int, t: float) -> _Lock:
        """Write a lock file at ``t``; the caller sets its release time. Locks released
        by now are forgotten: they block nothing later."""
        self.locks = [lk for lk in self.locks if lk.released > t]
        lock = _Lock(kind, t)
        self.locks.append(lock)
        return lock


class _TargetShare:
    """Backups uploading at once to one backup target share its bandwidth: with n of them
    each progresses at ``min(1, capacity / n)`` of its own speed alone (processor
    sharing), so a storm of backups at one minute slows every one of them."""

    def __init__(self, capacity: float, at: Callable[[float, Callable[[float], None]], None]):
        self.capacity, self.at = capacity, at
        self.active: dict[int, list] = {}  # id -> [remaining solo seconds, token, done]
        self.last = 0.0
        self.tokens = itertools.count()

    def rate(self) -> float:
        return min(1.0, self.capacity / len(self.active)) if self.active else 1.0

    def _advance(self, now: float) -> None:
        r = self.rate()
        for item in self.active.values():
            item[0] -= (now - self.last) * r
        self.last = now

    def _reschedule(self, now: float) -> None:
        r = self.rate()
        for key, item in self.active.items():
            item[1] = token = next(self.tokens)
            self.at(now + max(item[0], 0.0) / r,
                    lambda t, k=key, tok=token: self._finish(k, tok, t))

    def start(self, key: int, now: float, solo_s: float, done: Callable[[float], None]
              ) -> None:
        self._advance(now)
        self.active[key] = [solo_s, -1, done]
        self._reschedule(now)

    def _finish(self, key: int, token: int, now: float) -> None:
        item = self.active.get(key)
        if item is None or item[1] != token:
            return  # a stale completion: the rate changed since it was scheduled
        self._advance(now)
        del self.active[key]
        self._reschedule(now)
        item[2](now)


@dataclass
class _Job:
    spec: JobSpec
    members: list[str]
    forbid: Forbid = field(default_factory=Forbid)  # its CronJob's Forbid state
    runs: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class SimulationResult:
    """Frames in the schema (``backups``, ``jobs``, ``volumes``), the event log, and the
    job runs (``slot``, ``start``, ``end``, ``late_s``) and skipped slots per job."""

    frames: dict[str, pd.DataFrame]
    events: pd.DataFrame
    runs: pd.DataFrame
    skipped_slots: pd.DataFrame
    behaviour: Behaviour


class _Simulation:
    def __init__(self, fleet: Fleet, start: pd.Timestamp, end: pd.Timestamp,
                 rules: Behaviour, rng: np.random.Generator, tz: str | None,
                 target_capacity: float | None = None):
        self.fleet, self.rules, self.rng, self.tz = fleet, rules, rng, tz
        self.target_capacity = target_capacity
        self.shares: dict[str, _TargetShare] = {}
        self.t0 = start.value / 1e9
        self.t_end = end.value / 1e9
        self.heap: list[tuple[float, int, Callable[[float], None]]] = []
        self.seq = itertools.count()
        self.volumes = {v.name: _VolumeState(v) for v in fleet.volumes}
        self.backups: list[_Backup] = []
        self.by_name: dict[str, _Backup] = {}
        self.events: list[tuple] = []
        self.draw_cache: dict[int, tuple[np.ndarray, list[int]]] = {}
        members = run_members(fleet)
        self.jobs = {j.name: _Job(j, members[j.name]) for j in fleet.jobs
                     if j.name in members}

    # --- the event loop ------------------------------------------------------------------

    def draw(self, dist: Duration) -> float:
        """One draw of ``dist`` in seconds (drawn 512 at a time: one call per draw is slow)."""
        cached = self.draw_cache.get(id(dist))
        if cached is None or cached[1][0] >= len(cached[0]):
            cached = (dist.sample(self.rng, 512), [0])
            self.draw_cache[id(dist)] = cached
        values, pos = cached
        pos[0] += 1
        return float(values[pos[0] - 1])

    def at(self, t: float, fn: Callable[[float], None]) -> None:
        heapq.heappush(self.heap, (t, next(self.seq), fn))

    def log(self, t: float, volume: str, operation: str, event: str, job: str = "",
            backup: str = "", conflict: str = "", detail: str = "") -> None:
        self.events.append((t, volume, operation, event, job, backup, conflict, detail))

    def run(self) -> None:
        start, end = pd.Timestamp(self.t0 - 1, unit="s", tz="UTC"), pd.Timestamp(
            self.t_end, unit="s", tz="UTC")
        for job in self.jobs.values():
            for slot in fire_times(job.spec.cron, start, end, self.tz).astype(np.int64):
                self.at(float(slot), lambda t, j=job: self.fire(j, t))
        poll = self.fleet.poll_interval_s
        if any(v.standby and v.restore_of for v in self.fleet.volumes):  # DR restores
            for k in range(int((self.t_end - self.t0) // poll) + 1):
                self.at(self.t0 + k * poll, self.poll)
        for when, volume in self.fleet.manual_backups:
            t = pd.Timestamp(when).value / 1e9
            if self.t0 <= t <= self.t_end:
                self.at(t, lambda now, v=volume: self.create(v, "", now, lambda _t: None))
        while self.heap:
            t, _, fn = heapq.heappop(self.heap)
            if t > self.t_end:
                break
            fn(t)

    # --- jobs and Forbid ------------------------------------------------------------------

    def fire(self, job: _Job, t: float) -> None:
        starts, lost = job.forbid.fire(t)
        if lost is not None:
            self.log(t, "", "job", "slot_skipped", job.spec.name,
                     detail=f"slot {_iso(lost)} never ran")
        if starts:
            self.start_run(job, t, t)

    def start_run(self, job: _Job, slot: float, t: float) -> None:
        run = {"recurring_job": job.spec.name, "slot": slot, "start": t, "end": np.nan,
               "late_s": t - slot, "volumes": len(job.members)}
        job.runs.append(run)
        self.log(t, "", "job", "run_start", job.spec.name,
                 detail=f"slot {_iso(slot)}" + (f", {t - slot:.0f} s late" if t > slot else ""))
        queue = list(job.members)
        lanes = longhorn.run_lanes(job.spec.task, job.spec.concurrency, len(queue))
        busy = [0]

        def next_volume(now: float) -> None:
            if queue:
                volume = queue.pop(0)
                busy[0] += 1
                self.create(volume, job.spec.name, now, done,
                            system=job.spec.task == longhorn.SYSTEM_BACKUP)
            elif busy[0] == 0:
                self.end_run(job, run, now)

        def done(now: float) -> None:
            busy[0] -= 1
            next_volume(now)

        for _ in range(max(1, min(lanes, len(queue)))):
            next_volume(t)

    def end_run(self, job: _Job, run: dict, t: float) -> None:
        run["end"] = t
        self.log(t, "", "job", "run_end", job.spec.name)
        slot = job.forbid.end()
        if slot is not None:  # the latest slot that fired during the run starts now
            self.start_run(job, slot, t)

    # --- backups ---------------------------------------------------------------------------

    def create(self, volume: str, job: str, t: float, done: Callable[[float], None],
               system: bool = False) -> None:
        vs = self.volumes[volume]
        vs.created += 1  # Longhorn names backups "backup-" and 16 hex digits
        b = _Backup(f"backup-{_hex(f'{volume}/{vs.created}', 16)}", volume,
                    "" if system else job, t)
        self.backups.append(b)
        self.by_name[b.name] = b
        if self.rules.backup_meets_deletion == "wait" and vs.deleting:
            self.log(t, volume, "backup", "requested", job, b.name)
            b.state = "Pending"
            b.info = f"Wait for backup {vs.deleting[0]} to be deleted"
            b.conflict = "pending_behind_deletion"
            self.log(t, volume, "backup", "pending", job, b.name, "pending_behind_deletion",
                     b.info)
            vs.pending.append((b, lambda now: self.start_backup(b, now, done)))
            return
        self.start_backup(b, t, done)

    # A lock attempt is decided when the lock file is written: its 2 s check only looks at
    # older locks, and every older lock's release time is already known then (its own
    # check failed at +2 s, or it holds for its drawn duration). One event per operation.

    def start_backup(self, b: _Backup, t: float, done: Callable[[float], None]) -> None:
        vs = self.volumes[b.volume]
        b.state, b.started = "InProgress", t
        check = t + LOCK_ACQUIRE_WAIT_S
        self.log(t, b.volume, "backup", "started", b.job, b.name)
        if vs.blocked(BACKUP, t, check):
            vs.take(BACKUP, t).released = check
            self.at(check, lambda now: self.backup_blocked(b, now, done))
            return
        duration = max(self.draw(vs.spec.backup_duration_for(b.job)), LOCK_ACQUIRE_WAIT_S)
        lock = vs.take(BACKUP, t)
        if self.target_capacity is None:
            lock.released = t + duration
            self.at(t + duration, lambda now: self.backup_done(b, now, done))
            return
        # Shared bandwidth: the end depends on the backups to come, so the lock is held
        # until it comes (and deletion checks wait their 2 s to see it).
        share = self.shares.setdefault(vs.spec.target, _TargetShare(
            self.target_capacity, self.at))

        def finished(now: float) -> None:
            lock.released = now
            self.backup_done(b, now, done)

        share.start(id(b), t, duration, finished)

    def backup_blocked(self, b: _Backup, now: float, done: Callable[[float], None]) -> None:
        b.state, b.conflict = "Error", "create_blocked"
        b.error = longhorn.lock_failure_message(
            b.volume, "create", final_period=self.rules.lock_message_final_period)
        self.log(now, b.volume, "backup", "lock_conflict", b.job, b.name,
                 "create_blocked", "a deletion holds the lock; the backup fails")
        self.at(self.ttl_poll(now), lambda n: self.delete(b, n, "failed-backup TTL"))
        done(now)

    def backup_done(self, b: _Backup, now: float, done: Callable[[float], None]) -> None:
        vs = self.volumes[b.volume]
        b.state, b.finished = "Completed", now
        vs.last_completed = b.name
        self.log(now, b.volume, "backup", "completed", b.job, b.name)
        job = self.jobs.get(b.job)
        if job is not None:
            kept = vs.kept.setdefault(b.job, [])
            kept.append(b.name)
            while len(kept) > job.spec.retain:
                self.delete(self.by_name[kept.pop(0)], now, "retention")
        done(now)

    # --- deletions -----------------------------------------------------------------------------

    def delete(self, b: _Backup, t: float, reason: str) -> None:
        self.attempt_deletion(b, t, reason)

    def attempt_deletion(self, b: _Backup, t: float, reason: str = "retry") -> None:
        """An attempt to delete ``b`` from the backupstore: its Backup is Deleting until
        the attempt ends (done, or failed on the lock: then Error until the retry)."""
        vs = self.volumes[b.volume]
        if self.rules.deleting_state:
            b.state = "Deleting"
        vs.deleting.append(b.name)
        check = t + LOCK_ACQUIRE_WAIT_S
        self.log(t, b.volume, "deletion", "started", b.job, b.name, detail=reason)
        if self.target_capacity is not None:
            # a backup's end is not known in advance: look at the locks at the 2 s check
            lock = vs.take(DELETION, t)
            self.at(check, lambda now: self.deletion_check(b, lock, t, now))
            return
        if vs.blocked(DELETION, t, check):
            vs.take(DELETION, t).released = check
            self.at(check, lambda now: self.deletion_blocked(b, now))
            return
        duration = max(self.draw(vs.spec.deletion_duration), LOCK_ACQUIRE_WAIT_S)
        vs.take(DELETION, t).released = t + duration
        self.at(t + duration, lambda now: self.deletion_done(b, now))

    def deletion_check(self, b: _Backup, lock: _Lock, t: float, now: float) -> None:
        vs = self.volumes[b.volume]
        if vs.blocked(DELETION, t, now):
            lock.released = now
            self.deletion_blocked(b, now)
            return
        duration = max(self.draw(vs.spec.deletion_duration), LOCK_ACQUIRE_WAIT_S)
        lock.released = t + duration
        self.at(t + duration, lambda n: self.deletion_done(b, n))

    def deletion_blocked(self, b: _Backup, now: float) -> None:
        rules = self.rules
        b.failures += 1
        wait = min(rules.deletion_retry_min_s * 2 ** (b.failures - 1),
                   rules.deletion_retry_max_s)
        # The Backup's messages keep an info and an error; the frame keeps the worst.
        if longhorn.LOCK_CONFLICT_SEVERITY[b.conflict] <= longhorn.LOCK_CONFLICT_SEVERITY[
                "delete_blocked"]:
            b.conflict = "delete_blocked"
        b.msg_error = (f"Failed to delete the backup {b.name} in the backupstore, err "
                       + longhorn.lock_failure_message(
                           b.volume, "delete", final_period=rules.lock_message_final_period))
        if rules.deleting_state:
            b.state = "Error"
        self.log(now, b.volume, "deletion", "lock_conflict", b.job, b.name, "delete_blocked",
                 f"a backup or restore holds the lock; retry in {wait:g} s")
        self.at(now + wait, lambda n: self.attempt_deletion(b, n))
        # In Error, the Backup no longer holds back new backups (longhorn-manager
        # controller/backup_controller.go: "With the state being Error, other pending
        # backups can start without considering the deletion lock").
        self.deletion_ended(b, now)

    def deletion_done(self, b: _Backup, now: float) -> None:
        if self.rules.deleting_state:
            b.state = "Deleting"
        self.log(now, b.volume, "deletion", "completed", b.job, b.name)
        self.deletion_ended(b, now)

    def deletion_ended(self, b: _Backup, now: float) -> None:
        """An attempt to delete ``b`` ended: when no Backup of the volume is Deleting any
        more, its Pending backups start."""
        vs = self.volumes[b.volume]
        vs.deleting.remove(b.name)
        if not vs.deleting:
            waiting, vs.pending = vs.pending, []
            for pb, go in waiting:
                self.log(now, pb.volume, "backup", "pending_released", pb.job, pb.name)
                go(now)

    # --- poll times: DR restores and the failed-backup TTL ----------------------------------

    def ttl_poll(self, t: float) -> float:
        """The first backup-target poll at or after ``t`` + the failed-backup TTL."""
        due = t + self.fleet.failed_backup_ttl_s - self.t0
        poll = self.fleet.poll_interval_s
        return self.t0 + np.ceil(due / poll) * poll

    def poll(self, t: float) -> None:
        for vs in self.volumes.values():
            spec = vs.spec
            if not spec.standby or not spec.restore_of:
                continue
            src = self.volumes.get(spec.restore_of)
            if src is None or src.last_completed is None or vs.restoring:
                continue
            if src.last_completed != vs.restored:
                self.restore(vs, src, self.by_name[src.last_completed], t)

    def restore(self, vs: _VolumeState, src: _VolumeState, b: _Backup, t: float) -> None:
        name, check = vs.spec.name, t + LOCK_ACQUIRE_WAIT_S
        self.log(t, name, "restore", "started", "", b.name)
        vs.restoring = True
        if src.blocked(RESTORE, t, check):  # (on the backup volume it restores from)
            src.take(RESTORE, t).released = check
            self.at(check, lambda now: self.restore_blocked(vs, src, b, now))
            return
        dist = vs.spec.restore_duration or vs.spec.backup_duration
        duration = max(self.draw(dist), LOCK_ACQUIRE_WAIT_S)
        src.take(RESTORE, t).released = t + duration

        def finish(now: float) -> None:
            vs.restored, vs.restoring = b.name, False
            self.log(now, name, "restore", "completed", "", b.name)

        self.at(t + duration, finish)

    def restore_blocked(self, vs: _VolumeState, src: _VolumeState, b: _Backup,
                        now: float) -> None:
        vs.restoring = False
        self.log(now, vs.spec.name, "restore", "lock_conflict", "", b.name, "restore_blocked",
                 f"a deletion of {src.spec.name}'s backups holds the lock; tried again at "
                 "the next poll")

    # --- results -----------------------------------------------------------------------------

    def result(self) -> SimulationResult:
        collected = pd.Timestamp(self.t_end, unit="s", tz="UTC")

        bs = self.backups
        specs = [self.volumes[b.volume].spec for b in bs]
        # A backup ended when it completed, whatever its state since (Deleting, or Error
        # while its deletion is retried); one that failed or never finished is censored.
        ended = np.array([not np.isnan(b.finished) for b in bs], dtype=bool)
        started = np.array([b.started for b in bs], dtype=float)
        finished = np.where(ended, np.array([b.finished for b in bs], dtype=float), np.nan)
        messages = [_worst_message(b) for b in bs]
        paths = [longhorn.parse_lock_path(m) if m else None for m in messages]
        n = len(bs)

        def times(x: np.ndarray) -> pd.Series:
            return pd.Series(pd.to_datetime(x, unit="s", utc=True))

        columns = {
            "cluster": ["simulated"] * n, "backup_target": [v.target for v in specs],
            "volume": [b.volume for b in bs], "backup": [b.name for b in bs],
            "recurring_job": [b.job for b in bs], "state": [b.state for b in bs],
            "requested_at": times(np.array([b.requested for b in bs], dtype=float)),
            "started_at": times(started), "finished_at": times(finished),
            "volume_size_bytes": [v.size_bytes for v in specs],
            "backup_mode": ["incremental"] * n,
            "lock_conflict": [b.conflict for b in bs], "message": messages,
            "lock_path": [p.path if p else None for p in paths],
            "lock_path_matches": [True if p else None for p in paths],
            "source": ["simulation"] * n, "collected_at": [collected] * n,
        }
        backups = schema.with_durations(schema.coerce("backups", pd.DataFrame(columns)))
        jobs = schema.from_records("jobs", [
            {"cluster": "simulated", "recurring_job": j.name, "task": j.task, "cron": j.cron,
             "retain": j.retain, "concurrency": j.concurrency,
             "groups": ",".join(sorted(j.groups)), "labels": "{}", "parameters": "{}",
             "source": "simulation", "collected_at": collected} for j in self.fleet.jobs])
        volumes = schema.from_records("volumes", [
            {"cluster": "simulated", "volume": v.name, "size_bytes": v.size_bytes,
             "standby": v.standby, "restore_required": v.standby, "state": v.state,
             "robustness": "healthy", "recurring_jobs": ",".join(sorted(v.jobs)),
             "recurring_job_groups": ",".join(sorted(v.groups)), "backup_target": v.target,
             "lock_conflict": "none", "source": "simulation", "collected_at": collected}
            for v in self.fleet.volumes])
        cols = list(zip(*self.events, strict=True)) if self.events else [()] * 8
        events = pd.DataFrame({
            "time": pd.to_datetime(np.asarray(cols[0], dtype=float), unit="s", utc=True),
            # plain object columns: a million events convert in a blink this way
            **{c: pd.Series(np.array(v, dtype=object), dtype=object)
               for c, v in zip(EVENT_COLUMNS[1:], cols[1:], strict=True)}})
        runs = pd.DataFrame([r for j in self.jobs.values() for r in j.runs],
                            columns=["recurring_job", "slot", "start", "end", "late_s",
                                     "volumes"])
        for c in ("slot", "start", "end"):
            runs[c] = pd.to_datetime(runs[c], unit="s", utc=True)
        skipped = pd.DataFrame([(j.spec.name, s) for j in self.jobs.values()
                                for s in j.forbid.skipped], columns=["recurring_job", "slot"])
        skipped["slot"] = pd.to_datetime(skipped["slot"], unit="s", utc=True)
        return SimulationResult({"backups": backups, "jobs": jobs, "volumes": volumes},
                                events, runs, skipped, self.rules)


def run_members(fleet: Fleet) -> dict[str, list[str]]:
    """The volumes each backupstore job's runs process, in name order (skipped volumes
    left out); jobs that never touch the backupstore are not listed."""
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


def _components(fleet: Fleet) -> list[Fleet]:
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


def _simulate_part(args: tuple) -> SimulationResult:
    fleet, s, e, rules, seed_seq, tz, capacity = args
    sim = _Simulation(fleet, s, e, rules, np.random.default_rng(seed_seq), tz, capacity)
    sim.run()
    return sim.result()


def _merge(parts: list[SimulationResult], rules: Behaviour) -> SimulationResult:
    if len(parts) == 1:
        return parts[0]
    frames = {name: pd.concat([p.frames[name] for p in parts], ignore_index=True)
              for name in parts[0].frames}
    events = pd.concat([p.events for p in parts], ignore_index=True)
    events = events.sort_values("time", kind="stable", ignore_index=True)
    runs = pd.concat([p.runs for p in parts], ignore_index=True)
    skipped = pd.concat([p.skipped_slots for p in parts], ignore_index=True)
    return SimulationResult(frames, events, runs, skipped, rules)


def _worst_message(b: _Backup) -> str | None:
    """The message that shows the Backup's worst conflict (the frame has one column)."""
    if b.conflict == "delete_blocked" and b.msg_error:
        return b.msg_error
    return b.error or b.info or b.msg_error or None


def _iso(t: float) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def simulate(fleet: Fleet, start: str | pd.Timestamp, end: str | pd.Timestamp, *,
             version: str = longhorn.LATEST, seed: int = 0, tz: str | None = None,
             target_capacity: float | None = None, workers: int | None = None
             ) -> SimulationResult:
    """Simulate ``fleet`` from ``start`` to ``end`` (UTC) under Longhorn ``version``'s
    rules, with durations drawn from a generator seeded by ``seed``; ``tz`` is the
    evaluation zone of the schedules (default UTC).

    ``target_capacity``: when set, backups uploading at once to one backup target share
    its bandwidth, each at ``min(1, capacity / n)`` of its speed alone (a volume's backup
    duration is its duration alone); None (default) treats backups as independent.
    Deletions and restores are not slowed.

    Parts of the fleet that share no volume, job or DR pair are independent; each gets
    its own random stream (so results do not depend on ``workers``) and, for fleets of
    300 volumes or more, they run in ``workers`` processes (default: one per core).
    """
    s, e = schema.utc(start), schema.utc(end)
    if target_capacity is not None and not target_capacity > 0:
        raise ValueError(f"target_capacity must be > 0, not {target_capacity!r}")
    rules = behaviour(version)
    # Targets shared by backups at once couple every part of the fleet on that target.
    parts = [fleet] if target_capacity is not None else _components(fleet)
    seeds = np.random.SeedSequence(seed).spawn(len(parts))
    tasks = [(p, s, e, rules, sq, tz, target_capacity) for p, sq in zip(parts, seeds,
                                                                        strict=True)]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(parts) > 1 and len(fleet.volumes) >= 300:
        with ProcessPoolExecutor(max_workers=min(workers, len(parts))) as pool:
            results = list(pool.map(_simulate_part, tasks))
    else:
        results = [_simulate_part(t) for t in tasks]
    return _merge(results, rules)
