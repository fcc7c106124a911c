"""Benchmark: fit_durations on a synthetic fleet of 2,000 volumes x 2,000 backups.

Twenty hourly RecurringJobs of 100 volumes each (concurrency 10); lognormal durations
that grow with the volume; 2 % of the volumes end with a backup in progress and 1 % of
backups fail (censored); 50 extra volumes have 3 backups (fleet prior). Prints the wall
time of ``fit_durations`` (median of --runs). The goal is well under 10 s on 2 cores.

    .venv/bin/python bench/durations.py [--volumes 2000] [--backups 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from advisor import schema
from advisor.model.durations import fit_durations

T0 = pd.Timestamp("2026-01-05T00:00:00Z")
GIB = 2**30


def fleet(n_volumes: int, n_backups: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The frames of a synthetic fleet (schema dtypes)."""
    rng = np.random.default_rng(seed)
    sparse = 50
    names = np.array([f"pvc-{i:05d}" for i in range(n_volumes + sparse)], dtype=object)
    size = np.exp(rng.uniform(np.log(GIB), np.log(2000 * GIB), len(names)))
    median = 30 + 0.03 * size / GIB * 60 / 60  # seconds
    per = np.r_[np.full(n_volumes, n_backups), np.full(sparse, 3)]
    v = np.repeat(np.arange(len(names)), per)
    k = np.concatenate([np.arange(p) for p in per])  # the run (hour) of each backup
    job = v % 20
    slot = T0.value // 10**9 + k * 3600
    created = slot + ((v // 20) % 100 // 10) * 120  # ten at a time, two minutes apart
    dur = median[v] * np.exp(0.4 * rng.standard_normal(len(v)))
    failed = rng.random(len(v)) < 0.01
    last = np.r_[np.diff(v) != 0, True]
    running = last & (rng.random(len(v)) < 0.02)
    state = np.where(running, "InProgress", np.where(failed, "Error", "Completed"))
    collected = T0 + pd.Timedelta(hours=int(k.max()) + 2)
    ended = state == "Completed"

    def ts(x: np.ndarray) -> pd.Series:
        return pd.Series(pd.to_datetime(x, unit="s", utc=True))

    n = len(v)
    b = pd.DataFrame({
        "cluster": pd.array(["bench"] * n, dtype="string"),
        "backup_target": pd.array(["default"] * n, dtype="string"),
        "volume": pd.array(names[v], dtype="string"),
        "backup": pd.array([f"backup-{i:012x}" for i in range(n)], dtype="string"),
        "recurring_job": pd.array(np.array([f"job-{j:02d}" for j in range(20)],
                                           dtype=object)[job], dtype="string"),
        "state": pd.array(state.astype(object), dtype="string"),
        "requested_at": ts(created), "started_at": ts(created),
        "finished_at": ts(np.where(ended, created + dur, np.nan)),
        "last_synced_at": ts(np.where(failed, created + dur / 3, created)),
        "size_bytes": pd.array((size[v] / 3).astype(np.int64), dtype="Int64"),
        "new_upload_bytes": pd.array((size[v] / 50).astype(np.int64), dtype="Int64"),
        "backup_mode": pd.array(["incremental"] * n, dtype="string"),
        "collected_at": ts(np.full(n, collected.value / 1e9)),
    })
    backups = schema.coerce("backups", b)
    volumes = schema.from_records("volumes", [
        {"cluster": "bench", "volume": nm, "size_bytes": int(s), "actual_size_bytes":
         int(s / 2), "state": "attached", "robustness": "healthy", "recurring_jobs": "",
         "recurring_job_groups": "", "backup_target": "default", "lock_conflict": "none",
         "source": "bench", "collected_at": collected} for nm, s in zip(names, size,
                                                                       strict=True)])
    jobs = schema.from_records("jobs", [
        {"cluster": "bench", "recurring_job": f"job-{j:02d}", "task": "backup",
         "cron": "0 * * * *", "retain": 24, "concurrency": 10, "source": "bench",
         "collected_at": collected} for j in range(20)])
    return {"backups": backups, "volumes": volumes, "jobs": jobs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volumes", type=int, default=2000)
    ap.add_argument("--backups", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    t = time.perf_counter()
    frames = fleet(args.volumes, args.backups)
    print(f"built {len(frames['backups']):,} backups of {len(frames['volumes']):,} volumes "
          f"in {time.perf_counter() - t:.1f} s")
    times, cpu = [], []
    for _ in range(args.runs):
        t, c = time.perf_counter(), time.process_time()
        fits = fit_durations(frames["backups"], frames["volumes"], jobs=frames["jobs"])
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(fits)
    # CPU time too: on a shared machine the wall time also counts other processes
    print(f"fit_durations: median {statistics.median(times):.2f} s wall, "
          f"{statistics.median(cpu):.2f} s CPU over {args.runs} runs "
          f"(min {min(times):.2f} s wall)")


if __name__ == "__main__":
    main()
