"""Benchmark: load a 100,000-Backup ``kubectl get -o json`` file into the backups frame.

Prints wall time and peak memory (max RSS) of a bare ``json.load`` of the same file and of
``advisor.sources.files.load_files``, each run in a fresh process, with medians over
``--runs`` runs, and the ratio. Goal: load <= 2x the bare parse, peak <= 1.5 GB.

    .venv/bin/python bench/ingest.py [--backups 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from advisor.sources import synthetic

CHILD = r"""
import json, resource, sys, time
path, what = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if what == "parse":
    with open(path, "rb") as f:
        doc = json.load(f)
    n = len(doc["items"])
else:
    from advisor.sources import files
    from advisor.sources.files import load_files

    files.FREEZE_AFTER_LOAD = True  # (as the advisor command loads)
    r = load_files([path])
    n = len(r.frames["backups"])
    assert not r.problems, r.problems[:3]
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "rows": n,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(path: Path, what: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), what], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backups", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "backups.json"
        t = time.perf_counter()
        items = list(synthetic.backups_for_bench(args.backups))
        with path.open("w") as f:
            json.dump(synthetic.kubectl_list(items), f, indent=4)
        del items
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.backups} Backups, {size_mb:.0f} MB, "
              f"in {time.perf_counter() - t:.1f} s")
        results = {w: [run(path, w) for _ in range(args.runs)] for w in ("parse", "load")}
    med = {w: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "peak_mb")}
           for w, rs in results.items()}
    for w in ("parse", "load"):
        walls = ", ".join(f"{r['wall_s']:.2f}" for r in results[w])
        print(f"{w:>5}: median {med[w]['wall_s']:.2f} s (runs: {walls}), "
              f"peak {med[w]['peak_mb']:.0f} MB")
    ratio = med["load"]["wall_s"] / med["parse"]["wall_s"]
    print(f"ratio load / bare parse: {ratio:.2f} (goal <= 2.0); "
          f"load peak {med['load']['peak_mb']:.0f} MB (goal <= 1500 MB)")


if __name__ == "__main__":
    main()
