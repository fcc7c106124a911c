"""Benchmark: what one of ``advisor watch``'s writes costs against a large store.

The watch writes at least every minute, and every write compares its rows with the
store's (so that no observation is stored twice), which reads the store's backups. This
builds the store of ``bench/recommend.py`` (2,000 volumes, 90 days of hourly backups,
4.3 M Backup rows in 90 daily collections), then, in a fresh process as the watch pod
is, makes the writes of a busy hour: each of ``--writes`` writes adds one minute's
transitions (``--rows``, default 60) and supersedes the write before it, as the watch
does. Prints each write's wall time, their median, and the process's peak memory.

    python bench/watch_write.py [--volumes 2000] [--days 90] [--writes 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = r"""
import json, resource, statistics, sys, time
import pandas as pd
from advisor import schema
from advisor.store import HistoryStore

store, writes, rows = HistoryStore(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
now = pd.Timestamp.now(tz="UTC")
times, open_id = [], None
for w in range(writes):
    at = now + pd.Timedelta(minutes=w)
    records = [{"cluster": "bench", "backup_target": "default", "volume": f"vol-{i % 2000}",
                "backup": f"watch-{w}-{i}", "recurring_job": "hourly",
                "state": "InProgress", "censored": True, "backup_mode": "incremental",
                "lock_conflict": "none", "source": "watch:bench/longhorn-system",
                "requested_at": at, "started_at": at, "collected_at": at}
               for i in range(rows)]
    t = time.perf_counter()
    got = store.append({"backups": schema.from_records("backups", records)},
                       supersede=[open_id] if open_id else [],
                       meta={"watch": {"cluster": "bench", "resource_version": str(w)}})
    times.append(time.perf_counter() - t)
    open_id = got.collection_id
print(json.dumps({"times": times, "collections": len(store.collection_ids()),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    from recommend import build, write_store

    from advisor.store import HistoryStore

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volumes", type=int, default=2000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--writes", type=int, default=7)
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--keep", type=Path, help="build the store here, or reuse it if there")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    try:
        source = args.keep or tmp / "source"
        if not (source / "store.json").exists():
            t = time.perf_counter()
            frames, _ = build(args.volumes, args.days)
            write_store(source, frames, args.days)
            print(f"built the store: {len(frames['backups']):,} backups in "
                  f"{time.perf_counter() - t:.0f} s")
            del frames
        store = tmp / "store"
        shutil.copytree(source, store)  # (the writes must not change a kept store)
        before = len(HistoryStore(store).collection_ids())
        out = subprocess.run([sys.executable, "-c", CHILD, str(store), str(args.writes),
                              str(args.rows)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout)
        print("write seconds: " + ", ".join(f"{s:.2f}" for s in r["times"]))
        print(f"median {statistics.median(r['times']):.2f} s a write of {args.rows} rows; "
              f"peak {r['peak_mb']:.0f} MB; collections {before} -> {r['collections']} "
              f"after {args.writes} writes (each superseding the one before)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
