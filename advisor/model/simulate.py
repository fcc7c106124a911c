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

The simulation's state (locks, Backups, jobs, shared targets) is
:mod:`advisor.model.simstate`'s, its output :mod:`advisor.model.simresult`'s, and which
volumes each job's runs process :mod:`advisor.model.membership`'s.
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from advisor import longhorn, schema
from advisor.longhorn import LOCK_ACQUIRE_WAIT_S, Behaviour, behaviour
from advisor.model.fleet import Duration, Fleet
from advisor.model.membership import independent_parts, run_members
from advisor.model.simresult import EVENT_COLUMNS as EVENT_COLUMNS  # (re-exported)
from advisor.model.simresult import SimulationResult, merge_results, simulation_result
from advisor.model.simstate import (
    JobState,
    Lock,
    SimulatedBackup,
    TargetShare,
    VolumeState,
    stable_hex,
)
from advisor.schedules import fire_times

__all__ = ["SimulationResult", "simulate"]

BACKUP, RESTORE, DELETION = (int(longhorn.LockType.BACKUP), int(longhorn.LockType.RESTORE),
                             int(longhorn.LockType.DELETION))


class _Simulation:
    """A fleet (or a part of it) simulated from ``start`` to ``end``: callbacks queued
    by time (then by when they were queued) act on the state of
    :mod:`advisor.model.simstate` and log events."""

    def __init__(self, fleet: Fleet, start: pd.Timestamp, end: pd.Timestamp,
                 rules: Behaviour, rng: np.random.Generator, tz: str | None,
                 target_capacity: float | None = None):
        self.fleet, self.rules, self.rng, self.tz = fleet, rules, rng, tz
        self.target_capacity = target_capacity
        self.shares: dict[str, TargetShare] = {}
        self.t0 = start.value / 1e9
        self.t_end = end.value / 1e9
        self.heap: list[tuple[float, int, Callable[[float], None]]] = []
        self.seq = itertools.count()
        self.volumes = {v.name: VolumeState(v) for v in fleet.volumes}
        self.backups: list[SimulatedBackup] = []
        self.by_name: dict[str, SimulatedBackup] = {}
        self.events: list[tuple] = []
        self.draw_cache: dict[int, tuple[np.ndarray, list[int]]] = {}
        members = run_members(fleet)
        self.jobs = {j.name: JobState(j, members[j.name]) for j in fleet.jobs
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

    def fire(self, job: JobState, t: float) -> None:
        starts, lost = job.forbid.fire(t)
        if lost is not None:
            self.log(t, "", "job", "slot_skipped", job.spec.name,
                     detail=f"slot {_iso(lost)} never ran")
        if starts:
            self.start_run(job, t, t)

    def start_run(self, job: JobState, slot: float, t: float) -> None:
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

    def end_run(self, job: JobState, run: dict, t: float) -> None:
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
        b = SimulatedBackup(f"backup-{stable_hex(f'{volume}/{vs.created}', 16)}", volume,
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

    def start_backup(self, b: SimulatedBackup, t: float, done: Callable[[float], None]) -> None:
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
        share = self.shares.setdefault(vs.spec.target, TargetShare(
            self.target_capacity, self.at))

        def finished(now: float) -> None:
            lock.released = now
            self.backup_done(b, now, done)

        share.start(id(b), t, duration, finished)

    def backup_blocked(self, b: SimulatedBackup, now: float, done: Callable[[float], None]) -> None:
        b.state, b.conflict = "Error", "create_blocked"
        b.error = longhorn.lock_failure_message(
            b.volume, "create", final_period=self.rules.lock_message_final_period)
        self.log(now, b.volume, "backup", "lock_conflict", b.job, b.name,
                 "create_blocked", "a deletion holds the lock; the backup fails")
        self.at(self.ttl_poll(now), lambda n: self.delete(b, n, "failed-backup TTL"))
        done(now)

    def backup_done(self, b: SimulatedBackup, now: float, done: Callable[[float], None]) -> None:
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

    def delete(self, b: SimulatedBackup, t: float, reason: str) -> None:
        self.attempt_deletion(b, t, reason)

    def attempt_deletion(self, b: SimulatedBackup, t: float, reason: str = "retry") -> None:
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

    def deletion_check(self, b: SimulatedBackup, lock: Lock, t: float, now: float) -> None:
        vs = self.volumes[b.volume]
        if vs.blocked(DELETION, t, now):
            lock.released = now
            self.deletion_blocked(b, now)
            return
        duration = max(self.draw(vs.spec.deletion_duration), LOCK_ACQUIRE_WAIT_S)
        lock.released = t + duration
        self.at(t + duration, lambda n: self.deletion_done(b, n))

    def deletion_blocked(self, b: SimulatedBackup, now: float) -> None:
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

    def deletion_done(self, b: SimulatedBackup, now: float) -> None:
        if self.rules.deleting_state:
            b.state = "Deleting"
        self.log(now, b.volume, "deletion", "completed", b.job, b.name)
        self.deletion_ended(b, now)

    def deletion_ended(self, b: SimulatedBackup, now: float) -> None:
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

    def restore(self, vs: VolumeState, src: VolumeState, b: SimulatedBackup, t: float) -> None:
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

    def restore_blocked(self, vs: VolumeState, src: VolumeState, b: SimulatedBackup,
                        now: float) -> None:
        vs.restoring = False
        self.log(now, vs.spec.name, "restore", "lock_conflict", "", b.name, "restore_blocked",
                 f"a deletion of {src.spec.name}'s backups holds the lock; tried again at "
                 "the next poll")

    # --- results -----------------------------------------------------------------------------

    def result(self) -> SimulationResult:
        """The frames, event log and runs of the simulation so far."""
        return simulation_result(self.fleet, self.backups, self.events, self.jobs.values(),
                                 self.rules, self.t_end)


def _simulate_part(args: tuple) -> SimulationResult:
    fleet, s, e, rules, seed_seq, tz, capacity = args
    sim = _Simulation(fleet, s, e, rules, np.random.default_rng(seed_seq), tz, capacity)
    sim.run()
    return sim.result()


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
    parts = [fleet] if target_capacity is not None else independent_parts(fleet)
    seeds = np.random.SeedSequence(seed).spawn(len(parts))
    tasks = [(p, s, e, rules, sq, tz, target_capacity) for p, sq in zip(parts, seeds,
                                                                        strict=True)]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(parts) > 1 and len(fleet.volumes) >= 300:
        with ProcessPoolExecutor(max_workers=min(workers, len(parts))) as pool:
            results = list(pool.map(_simulate_part, tasks))
    else:
        results = [_simulate_part(t) for t in tasks]
    return merge_results(results, rules)
