"""Benchmark: score one volume's week under 10,000 duration draws with
advisor.model.fastpath.score_volume.

An hourly job (retain 24) and a daily job at 00:00 (retain 7) cover the volume, with
lognormal backup and deletion durations; prints the median wall time over --runs runs
(after one call that compiles or loads the kernel) for Longhorn 1.7 and 1.10 rules, on
the default threads (both cores) and on one. The goal is at most 0.2 s on a 2-core
machine.

    .venv/bin/python bench/fastpath.py [--runs 5] [--draws 10000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from advisor.model.fastpath import score_volume
from advisor.model.fleet import Duration, JobSpec

START, END = "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"
JOBS = [
    (JobSpec("hourly", "0 * * * *", retain=24), Duration(300, 900, "lognormal")),
    (JobSpec("daily", "0 0 * * *", retain=7), Duration(1200, 3600, "lognormal")),
]
DELETION = Duration(120, 600, "lognormal")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--draws", type=int, default=10_000)
    args = ap.parse_args()
    t = time.perf_counter()
    score_volume(JOBS, DELETION, START, END, draws=1)
    print(f"first call (compiles the kernel, or loads it from the cache): "
          f"{time.perf_counter() - t:.2f} s")
    for version in ("1.7", "1.10"):
        for threads in (None, 1):
            times, score = [], None
            for run in range(args.runs):
                t = time.perf_counter()
                score = score_volume(JOBS, DELETION, START, END, draws=args.draws,
                                     version=version, seed=run, threads=threads)
                times.append(time.perf_counter() - t)
            print(f"Longhorn {version:5} {args.draws} draws of a week, "
                  f"{'1 thread ' if threads else 'default  '}: median "
                  f"{statistics.median(times):.3f} s over {args.runs} runs")
        print(f"  {score!r}")


if __name__ == "__main__":
    main()
