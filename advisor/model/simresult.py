"""What :func:`advisor.model.simulate.simulate` returns: the schema's frames, worded as
Longhorn writes them, the ground-truth event log, and the jobs' runs and skipped slots.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor import longhorn, schema
from advisor.longhorn import Behaviour
from advisor.model.fleet import Fleet, VolumeSpec
from advisor.model.simstate import JobState, SimulatedBackup

__all__ = ["EVENT_COLUMNS", "SimulationResult", "merge_results", "simulation_result"]

EVENT_COLUMNS = ["time", "volume", "operation", "event", "recurring_job", "backup",
                 "conflict", "detail"]


@dataclass(frozen=True)
class SimulationResult:
    """Frames in the schema (``backups``, ``jobs``, ``volumes``), the event log, and the
    job runs (``slot``, ``start``, ``end``, ``late_s``) and skipped slots per job."""

    frames: dict[str, pd.DataFrame]
    events: pd.DataFrame
    runs: pd.DataFrame
    skipped_slots: pd.DataFrame
    behaviour: Behaviour


def simulation_result(fleet: Fleet, backups: Sequence[SimulatedBackup], events: list[tuple],
                      jobs: Collection[JobState], rules: Behaviour, t_end: float
                      ) -> SimulationResult:
    """The result of a simulation of ``fleet`` that ended at ``t_end`` (seconds): its
    Backups, its event log (tuples in :data:`EVENT_COLUMNS` order) and its jobs."""
    collected = pd.Timestamp(t_end, unit="s", tz="UTC")
    specs = {v.name: v for v in fleet.volumes}
    frames = {"backups": _backups_frame(backups, [specs[b.volume] for b in backups],
                                        collected),
              "jobs": _jobs_frame(fleet, collected),
              "volumes": _volumes_frame(fleet, collected)}
    runs = pd.DataFrame([r for j in jobs for r in j.runs],
                        columns=["recurring_job", "slot", "start", "end", "late_s", "volumes"])
    for c in ("slot", "start", "end"):
        runs[c] = pd.to_datetime(runs[c], unit="s", utc=True)
    skipped = pd.DataFrame([(j.spec.name, s) for j in jobs for s in j.forbid.skipped],
                           columns=["recurring_job", "slot"])
    skipped["slot"] = pd.to_datetime(skipped["slot"], unit="s", utc=True)
    return SimulationResult(frames, _events_frame(events), runs, skipped, rules)


def _backups_frame(bs: Sequence[SimulatedBackup], specs: list[VolumeSpec],
                   collected: pd.Timestamp) -> pd.DataFrame:
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
    return schema.with_durations(schema.coerce("backups", pd.DataFrame(columns)))


def _jobs_frame(fleet: Fleet, collected: pd.Timestamp) -> pd.DataFrame:
    return schema.from_records("jobs", [
        {"cluster": "simulated", "recurring_job": j.name, "task": j.task, "cron": j.cron,
         "retain": j.retain, "concurrency": j.concurrency,
         "groups": ",".join(sorted(j.groups)), "labels": "{}", "parameters": "{}",
         "source": "simulation", "collected_at": collected} for j in fleet.jobs])


def _volumes_frame(fleet: Fleet, collected: pd.Timestamp) -> pd.DataFrame:
    return schema.from_records("volumes", [
        {"cluster": "simulated", "volume": v.name, "size_bytes": v.size_bytes,
         "standby": v.standby, "restore_required": v.standby, "state": v.state,
         "robustness": "healthy", "recurring_jobs": ",".join(sorted(v.jobs)),
         "recurring_job_groups": ",".join(sorted(v.groups)), "backup_target": v.target,
         "lock_conflict": "none", "source": "simulation", "collected_at": collected}
        for v in fleet.volumes])


def _events_frame(events: list[tuple]) -> pd.DataFrame:
    cols = list(zip(*events, strict=True)) if events else [()] * 8
    return pd.DataFrame({
        "time": pd.to_datetime(np.asarray(cols[0], dtype=float), unit="s", utc=True),
        # plain object columns: a million events convert in a blink this way
        **{c: pd.Series(np.array(v, dtype=object), dtype=object)
           for c, v in zip(EVENT_COLUMNS[1:], cols[1:], strict=True)}})


def _worst_message(b: SimulatedBackup) -> str | None:
    """The message that shows the Backup's worst conflict (the frame has one column)."""
    if b.conflict == "delete_blocked" and b.msg_error:
        return b.msg_error
    return b.error or b.info or b.msg_error or None


def merge_results(parts: list[SimulationResult], rules: Behaviour) -> SimulationResult:
    """One result of the simulations of parts of a fleet that share nothing: frames
    and runs part after part, events in time order (parts in order on equal times)."""
    if len(parts) == 1:
        return parts[0]
    frames = {name: pd.concat([p.frames[name] for p in parts], ignore_index=True)
              for name in parts[0].frames}
    events = pd.concat([p.events for p in parts], ignore_index=True)
    events = events.sort_values("time", kind="stable", ignore_index=True)
    runs = pd.concat([p.runs for p in parts], ignore_index=True)
    skipped = pd.concat([p.skipped_slots for p in parts], ignore_index=True)
    return SimulationResult(frames, events, runs, skipped, rules)
