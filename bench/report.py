"""Benchmark: ``advisor report`` against the history store of ``bench/recommend.py``
(2,000 volumes, 90 days of hourly backups, about 4.3 million Backup rows in 90 daily
collections).

Times ``advisor report --store DIR --out OUT --format html,md,json,csv --quiet`` (the
20 riskiest volumes get detailed charts) in fresh processes pinned to --cores CPUs,
measured as ``bench/recommend.py`` measures (wall time, CPU time and peak memory from
``os.wait4``; CPU time stolen by the hypervisor meanwhile). A first run with no duration
fits kept in the store fits the history and keeps the fits, as ``advisor collect`` does
after a collection (shown apart); then --repeat runs read them back, and their median is
judged. Goal on 2 cores: <= 90 s.

Then one more run, in-process in a fresh pinned child, times the stages the command goes
through (the same library calls): reading the store and its fits, the model
(``build_report``), the charts (``render_charts``) and writing the four formats, so that
a slow report says where its time goes.

    .venv/bin/python bench/report.py [--volumes 2000] [--days 90] [--repeat 3]
                                     [--keep DIR] [--cores 2] [--timeout 900]
                                     [--no-stages]

Building the store takes 10 to 20 minutes: keep it (``--keep /tmp/bench-report-store``)
to reuse it on the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

GOAL_S = 90.0
FORMATS = "html,md,json,csv"

# The stages of `advisor report --store` (advisor/cli/report.py's report), timed one by
# one in a fresh process: the same calls (the store read with the Backup columns the
# report needs), without the CLI's messages.
CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from advisor.inputs import model_inputs
from advisor.advice.settings import iso_week
from advisor.report.build import REPORT_BACKUP_COLUMNS, build_report
from advisor.report.render import load_previous, render_charts, write_report
from advisor.store import HistoryStore
store, out, formats = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
times = {"imports": time.perf_counter() - t0}
mark = [None, time.perf_counter()]
def stage(name):
    # build_report announces its stages (the CLI's progress bar): time each one
    now = time.perf_counter()
    if mark[0] is not None:
        times[mark[0]] = now - mark[1]
    mark[:] = [name, now]
stage("read the store and its fits")
inputs = model_inputs(HistoryStore(store), backup_columns=REPORT_BACKUP_COLUMNS)
frames, fits = inputs.frames, inputs.fits
stage("model: the week")
label = iso_week(None, frames["backups"]["collected_at"].max())[0]
report = build_report(frames, fits, previous=load_previous(out, label),
                      progress=lambda name: stage("model: " + name))
stage("charts (render_charts)")
charts = render_charts(report)
stage("write html, md, json, csv")
write_report(report, out, formats, charts=charts)
stage(None)
print(json.dumps({"times": times, "charts": len(charts), "volumes": len(report.volumes),
                  "detailed": len(report.detailed), "fits_reused": inputs.reused,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _outputs(out: Path) -> str:
    """What a run wrote, in brief: the files by kind and their size."""
    files = [p for p in out.rglob("*") if p.is_file()]
    kinds: dict[str, list[int]] = {}
    for p in files:
        kinds.setdefault(p.suffix, []).append(p.stat().st_size)
    return ", ".join(f"{len(s)} {k[1:]} ({sum(s) / 1e6:.1f} MB)" for k, s in sorted(kinds.items()))


def _arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volumes", type=int, default=2000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2, help="CPUs the command may use")
    ap.add_argument("--keep", type=Path, help="build the store here, or reuse it if there")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds after which a run is killed (and not repeated)")
    ap.add_argument("--no-stages", action="store_true",
                    help="skip the run that times the stages one by one")
    return ap.parse_args()


def _make_store(store: Path, args: argparse.Namespace) -> None:
    from recommend import build, write_store

    from advisor.store import HistoryStore

    if (store / "store.json").exists():
        print(f"reusing the store {store}")
    else:
        t = time.perf_counter()
        frames, _ = build(args.volumes, args.days, args.seed)
        write_store(store, frames, args.days)
        print(f"built the store {store}: {len(frames['backups']):,} backups of "
              f"{len(frames['volumes']):,} volumes in {time.perf_counter() - t:.0f} s")
        del frames
    print(f"{HistoryStore(store).observations()}", flush=True)


def _time_runs(store: Path, tmp: Path, args: argparse.Namespace) -> list[dict]:
    """The first run with no fits kept, then ``--repeat`` runs: each run's figures."""
    from recommend import run

    exe = Path(sys.executable).with_name("advisor")
    advisor = [str(exe)] if exe.exists() else [sys.executable, "-m", "advisor"]

    def report_run(name: str) -> dict:
        out = tmp / name
        shutil.rmtree(out, ignore_errors=True)  # no earlier report to compare with
        cmd = [*advisor, "report", "--store", str(store), "--out", str(out),
               "--format", FORMATS, "--quiet"]
        r = run(cmd, args.cores, tmp / f"{name}.stdout", args.timeout)
        if r["code"] != 0 and not r["timed_out"]:
            sys.exit(f"advisor report failed (exit {r['code']}):\n{r['stderr'][-3000:]}")
        r["outputs"] = _outputs(out)
        return r

    print(f"$ {' '.join(advisor)} report --store {store} --out OUT --format {FORMATS} "
          "--quiet", flush=True)
    # the first run after a collection written without fits fits every Backup and
    # keeps the fits (what `advisor collect` does unless --no-fit); shown apart
    shutil.rmtree(store / "derived", ignore_errors=True)
    r = report_run("first")
    print(f"  first run with no fits kept (fits the history, keeps the fits): "
          f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak {r['peak_mb']:.0f} MB",
          flush=True)
    print(f"  wrote {r['outputs']}; {r['stdout'].splitlines()[0] if r['stdout'] else ''}")
    runs = []
    for i in range(args.repeat):
        r = report_run(f"run-{i}")
        runs.append(r)
        if r["timed_out"]:
            print(f"  run {i + 1}: killed after {r['wall_s']:.0f} s (--timeout)")
            break
        print(f"  run {i + 1}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak "
              f"{r['peak_mb']:.0f} MB; {r['steal_s']:.1f} CPU-s stolen by the "
              "hypervisor meanwhile", flush=True)
    return runs


def _time_stages(store: Path, tmp: Path, args: argparse.Namespace) -> None:
    from recommend import run

    out = tmp / "stages"
    r = run([sys.executable, "-c", CHILD, str(store), str(out), FORMATS],
            args.cores, tmp / "stages.stdout", args.timeout)
    if r["code"] != 0:
        sys.exit(f"the stage run failed (exit {r['code']}):\n{r['stderr'][-3000:]}")
    st = json.loads(r["stdout"])
    total = sum(st["times"].values())
    print(f"stages (one in-process run, {r['wall_s']:.1f} s wall, peak "
          f"{st['peak_mb']:.0f} MB; {st['volumes']} volumes, {st['detailed']} "
          f"detailed, {st['charts']} charts; fits read back: {st['fits_reused']}):")
    for name, s in st["times"].items():
        print(f"  {name:<46} {s:6.1f} s  {100 * s / total:3.0f} %")


def _summary(runs: list[dict], args: argparse.Namespace) -> None:
    repo = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"],
                          capture_output=True, text=True).stdout.strip()
    print(f"advisor at {head or 'unknown commit'}, on {os.cpu_count()} CPUs (pinned to "
          f"{args.cores}), load average {os.getloadavg()[0]:.1f}: other processes on "
          "the machine count in the wall times")
    med = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "peak_mb")}
    ok = med["wall_s"] <= GOAL_S and not any(r["timed_out"] for r in runs)
    full = args.volumes >= 2000 and args.days >= 90
    walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs)
    print(f"report: median {med['wall_s']:.1f} s wall (runs: {walls}), "
          f"{med['cpu_s']:.1f} s CPU, "
          f"peak {med['peak_mb']:.0f} MB; goal <= {GOAL_S:g} s on {args.cores} cores: "
          f"{('met' if ok else 'MISSED') if full else 'not judged (a smaller store)'}")


def main() -> None:
    args = _arguments()
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        store = args.keep or tmp / "store"
        _make_store(store, args)
        runs = _time_runs(store, tmp, args)
        if not args.no_stages:
            _time_stages(store, tmp, args)
        _summary(runs, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
