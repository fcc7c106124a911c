"""Benchmark: expand a year of fire times with advisor.schedules.fire_times.

Prints the median wall time over --runs runs for a year of ``*/5 * * * *`` (about 105,000
times) in UTC and in a zone with daylight saving, and for ``0 * * * *``; the goal is well
under 100 ms for the UTC case. Also times robfig's Next iterated one call at a time, the
naive way, for comparison.

    .venv/bin/python bench/cron_expand.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from advisor import cron
from advisor.schedules import fire_times

START, END = "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"


def median_s(fn, runs: int) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        n = len(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times), n


def iterated(expr: str, tz: str) -> list[int]:
    s, z = cron.parse(expr), cron.zone(tz)
    t = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    out = []
    while (t := s.next_unix(t, z)) is not None and t < end:
        out.append(t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    for expr, tz in (("*/5 * * * *", "UTC"), ("*/5 * * * *", "Europe/Berlin"),
                     ("0 * * * *", "UTC")):
        s = cron.parse(expr)
        med, n = median_s(lambda s=s, tz=tz: fire_times(s, START, END, tz), args.runs)
        print(f"fire_times {expr!r:15} {tz:14} {n:7d} times: median {med * 1000:8.1f} ms")
    med, n = median_s(lambda: iterated("*/5 * * * *", "UTC"), 1)
    print(f"Next one call at a time, '*/5 * * * *' UTC, {n} times: {med * 1000:.0f} ms")


if __name__ == "__main__":
    main()
