"""Benchmark: the event simulator on 2,000 volumes x 4 weeks of hourly backup jobs.

20 hourly jobs (each on a group of 100 volumes, concurrency 10, retain 24), lognormal
backup (median 3 min, p95 8 min) and deletion (median 20 s, p95 60 s) durations. Prints
the median wall time over --runs runs and the counts simulated. Goal: <= 30 s on 2 cores.

    .venv/bin/python bench/simulate.py [--volumes 2000] [--weeks 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.simulate import simulate


def fleet(volumes: int) -> Fleet:
    backup, deletion = Duration(180, 480, "lognormal"), Duration(20, 60, "lognormal")
    groups = max(1, volumes // 100)
    vols = tuple(VolumeSpec(f"pvc-{i:05d}", 50 * 2**30, backup, deletion,
                            groups=(f"g{i % groups:02d}",)) for i in range(volumes))
    jobs = tuple(JobSpec(f"hourly-{g:02d}", f"{(g * 3) % 60} * * * *", retain=24,
                         concurrency=10, groups=(f"g{g:02d}",)) for g in range(groups))
    return Fleet(vols, jobs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volumes", type=int, default=2000)
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    f = fleet(args.volumes)
    end = f"2026-01-{5 + 7 * args.weeks:02d}T00:00:00Z" if args.weeks <= 3 else None
    end = end or str(__import__("pandas").Timestamp("2026-01-05T00:00:00Z")
                     + __import__("pandas").Timedelta(weeks=args.weeks))
    times = []
    for seed in range(args.runs):
        t = time.perf_counter()
        r = simulate(f, "2026-01-05T00:00:00Z", end, seed=seed)
        times.append(time.perf_counter() - t)
    b = r.frames["backups"]
    print(f"{args.volumes} volumes x {args.weeks} weeks: {len(b)} backups, "
          f"{len(r.events)} events; median {statistics.median(times):.1f} s "
          f"(runs: {', '.join(f'{x:.1f}' for x in times)}); goal <= 30 s")


if __name__ == "__main__":
    main()
