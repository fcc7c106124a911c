"""Benchmark: ``advisor recommend`` and ``advisor check`` against a history store of
2,000 volumes with 90 days of hourly backups (about 4.3 million Backup rows).

The store is built from frames made with numpy (not the simulator, not JSON) and written
with :meth:`advisor.store.HistoryStore.append`: volumes of 1 to 2,000 GiB (lognormal)
in four hourly groups (98 % of them), a daily group (half) and a weekly one (a quarter);
six RecurringJobs. Each run of a job backs up its volumes in name order on
``concurrency`` lanes, so ``requested_at`` is the cron slot plus the queue; durations are
lognormal and grow with the volume (the first backup of a volume is a full one). 0.3 % of
the backups fail, the daily and weekly jobs meet the hourly job that fires at the same
minute (``create_blocked``, worded as Longhorn words it), retention deletions are
sometimes blocked (``delete_blocked``), and the backups still running at collection are
InProgress (censored).

Then ``advisor recommend --store DIR -o json`` and ``advisor check MANIFEST --store DIR
-o json`` (a 5-job RecurringJob manifest) run in fresh processes pinned to --cores CPUs.
Each command runs first with no duration fits kept in the store (it reads and fits every
Backup and keeps the fits, as `advisor collect` does after a collection unless
``--no-fit``), then --repeat times with the fits read back; prints the first run, and the
median wall time, CPU time
and peak memory (max RSS, from ``os.wait4``) of the repeated runs, and per run the CPU
time the hypervisor gave other guests (on a shared virtual machine the same run varies
by a fifth with it). Goals on 2 cores: recommend <= 60 s and <= 4 GB peak; check <= 5 s.

    .venv/bin/python bench/recommend.py [--volumes 2000] [--days 90] [--repeat 3]
                                        [--keep DIR] [--collections DAYS] [--cores 2]
                                        [--commands recommend check] [--timeout 1800]
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
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from advisor import schema
from advisor.longhorn import classify_message, lock_failure_message
from advisor.schedules import fire_times
from advisor.store import HistoryStore

T_END = pd.Timestamp("2026-03-02T00:05:00Z")  # the last collection: Monday, 00:05 UTC
START = "2026-03-02"  # the week both commands score
CLUSTER, SOURCE = "bench", "bench:recommend"
GIB = 2**30
HOURLY = ("hourly-a", "hourly-b", "hourly-c", "hourly-d")
# name, cron, retain, concurrency, duration factor (a day's or a week's changes)
JOBS = (("hourly-a", "0 * * * *", 24, 20, 1.0), ("hourly-b", "15 * * * *", 24, 20, 1.0),
        ("hourly-c", "30 * * * *", 24, 20, 1.0), ("hourly-d", "45 * * * *", 24, 20, 1.0),
        ("daily", "0 2 * * *", 7, 20, 2.5), ("weekly", "0 3 * * 0", 4, 10, 4.0))
GOALS = {"recommend": (60.0, 4096.0), "check": (5.0, None)}  # seconds, MB
MANIFEST_JOBS = (  # the proposal `advisor check` judges: name, cron, retain, concurrency, group
    ("hourly-a", "5 * * * *", 24, 20, "hourly-a"),
    ("hourly-b", "20 */2 * * *", 12, 20, "hourly-b"),
    ("daily", "30 2 * * *", 7, 20, "daily"),
    ("weekly", "30 4 * * 0", 4, 10, "weekly"),
    ("monthly", "0 5 1 * *", 3, 10, "weekly"))
OTHER_ERROR = ("proxyServer=10.42.1.17:8501 destination=10.42.1.17:10010: failed to backup "
               "snapshot: context deadline exceeded")


def _hex(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    """``n`` random lowercase hex strings of ``2 * nbytes`` ASCII digits, as uint8 rows."""
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    b = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    out = np.empty((n, 2 * nbytes), dtype=np.uint8)
    out[:, 0::2], out[:, 1::2] = digits[b >> 4], digits[b & 15]
    return out


def _strings(prefix: bytes, *parts: np.ndarray) -> np.ndarray:
    """Rows of ASCII bytes joined after ``prefix`` (parts separated by '-'), as str."""
    n = len(parts[0])
    cols = [np.frombuffer(prefix, np.uint8)[None, :].repeat(n, 0)] if prefix else []
    for i, p in enumerate(parts):
        if i:
            cols.append(np.full((n, 1), ord("-"), np.uint8))
        cols.append(p)
    rows = np.ascontiguousarray(np.concatenate(cols, axis=1))
    return rows.view(f"S{rows.shape[1]}").ravel().astype(str)


def _uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    h = _hex(rng, n, 16)
    return _strings(b"", h[:, :8], h[:, 8:12], h[:, 12:16], h[:, 16:20], h[:, 20:])


def _ts(seconds: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(seconds, unit="s", utc=True))


def _fleet(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """One row per volume: name (sorted, as runs process them), size, groups, speed."""
    names = np.sort(np.char.add("pvc-", _uuids(rng, n)))
    size_gib = np.clip(np.rint(np.exp(rng.normal(np.log(40), 1.4, n))), 1, 2000)
    hourly = np.where(rng.random(n) < 0.98, rng.integers(0, len(HOURLY), n), -1)
    return pd.DataFrame({
        "volume": names, "size_gib": size_gib,
        "actual_gib": size_gib * rng.uniform(0.2, 0.9, n),
        "hourly": hourly, "daily": (rng.random(n) < 0.5) | (hourly < 0),
        "weekly": rng.random(n) < 0.25,
        # incremental backup median, seconds: fixed work plus the changed data
        "median_s": (20 + 1.2 * size_gib**0.75) * np.exp(rng.normal(0, 0.3, n))})


def _members(fleet: pd.DataFrame, job: str) -> np.ndarray:
    if job in HOURLY:
        return np.flatnonzero(fleet["hourly"].to_numpy() == HOURLY.index(job))
    return np.flatnonzero(fleet[job].to_numpy())


def _job_rows(fleet: pd.DataFrame, job: tuple, start_s: float, end_s: float,
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every backup of one job over the history: runs x members, laid out on lanes."""
    name, cron, retain, lanes, factor = job
    m = _members(fleet, name)
    fires = fire_times(cron, pd.Timestamp(start_s - 1, unit="s", tz="UTC"),
                       pd.Timestamp(end_s, unit="s", tz="UTC")).astype(np.int64)
    runs, k = len(fires), len(m)
    dur = (fleet["median_s"].to_numpy()[m] * factor)[None, :] * np.exp(
        0.35 * rng.standard_normal((runs, k)))
    snapshot_s = rng.uniform(1, 4, (runs, k))
    deletion_s = np.where(np.arange(runs)[:, None] >= retain,
                          rng.lognormal(np.log(8), 0.5, (runs, k)), 0.0)
    busy = 1 + snapshot_s + dur + deletion_s  # a lane's time per volume
    # volume i of a run goes on lane i % lanes, after the volumes before it on that lane
    rows_per_lane = -(-k // lanes)
    pad = np.zeros((runs, rows_per_lane * lanes))
    pad[:, :k] = busy
    lane_end = pad.reshape(runs, rows_per_lane, lanes).cumsum(axis=1).reshape(runs, -1)
    queue_s = (lane_end[:, :k] - busy)
    pod_s = rng.uniform(2, 10, (runs, 1))  # the job's pod starting
    requested = np.floor(fires[:, None] + pod_s + queue_s)
    started = requested + np.ceil(snapshot_s)
    return {"vol": np.broadcast_to(m, (runs, k)).ravel(),
            "run": np.broadcast_to(np.arange(runs)[:, None], (runs, k)).ravel(),
            "requested": requested.ravel(), "started": started.ravel(),
            "dur": np.rint(dur).ravel(), "run_end": lane_end[:, :k].max(axis=1)}


def build(n_volumes: int, days: int, seed: int = 0
          ) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """The frames of the bench history (schema dtypes, ``collected_at`` at the end) and
    the longest run of each job in seconds (a run longer than its interval would make
    Longhorn skip slots, which this layout does not do)."""
    rng = np.random.default_rng(seed)
    fleet = _fleet(n_volumes, rng)
    end_s = T_END.value / 1e9
    start_s = end_s - days * 86400
    parts, longest = [], {}
    for j, job in enumerate(JOBS):
        r = _job_rows(fleet, job, start_s, end_s, rng)
        longest[job[0]] = float(r.pop("run_end").max()) if len(r["vol"]) else 0.0
        parts.append({**r, "job": np.full(len(r["vol"]), j, np.int8)})
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    keep = cat["started"] <= end_s  # backups not started at collection are not there yet
    vol, run, job = cat["vol"][keep], cat["run"][keep], cat["job"][keep]
    requested, started, dur = cat["requested"][keep], cat["started"][keep], cat["dur"][keep]
    n = len(vol)
    del cat, parts

    # the first backup of each volume is a full one and takes ten times as long
    order = np.lexsort((started, vol))
    first = np.zeros(n, bool)
    first[order[np.r_[True, vol[order][1:] != vol[order][:-1]]]] = True
    dur = np.where(first, dur * 10, np.maximum(dur, 1))
    finished = started + dur
    state = np.full(n, "Completed", dtype=object)
    message = np.full(n, None, dtype=object)
    failed = rng.random(n) < 0.003
    last_synced = np.where(failed, np.floor(started + dur * rng.uniform(0.05, 0.95, n)),
                           finished)
    state[failed], message[failed] = "Error", OTHER_ERROR
    # the daily and weekly jobs fire with hourly-a: some of their backups meet its
    # retention deletion on the lock (create_blocked, a failed backup in Longhorn <= 1.7)
    on_a = fleet["hourly"].to_numpy()[vol] == HOURLY.index("hourly-a")
    names = fleet["volume"].to_numpy()
    blocked = on_a & (job >= 4) & (rng.random(n) < 0.04) & ~failed
    state[blocked] = "Error"
    last_synced[blocked] = started[blocked] + 3
    message[blocked] = [lock_failure_message(v, "create") for v in names[vol[blocked]]]
    # a blocked retention deletion shows on the old backup being deleted
    deleting = (job < 4) & (run >= 24) & (rng.random(n) < 0.001) & ~failed & ~blocked
    state[deleting] = "Deleting"
    message[deleting] = [lock_failure_message(v, "delete") for v in names[vol[deleting]]]
    done = np.isin(state, ["Completed", "Deleting"])
    running = np.where(done, finished, last_synced) > end_s
    state[running], message[running] = "InProgress", None
    done &= ~running
    lock = {m: classify_message(m, where="backup") for m in set(message[blocked | deleting])}
    lock_conflict = np.array([lock[m].kind if m in lock else "none" for m in message],
                             dtype=object)
    lock_path = np.array([lock[m].lock_path if m in lock else None for m in message],
                         dtype=object)
    lock_matches = np.array([lock[m].path_matches if m in lock else None for m in message],
                            dtype=object)

    actual = fleet["actual_gib"].to_numpy()[vol] * GIB
    grown = actual * (1 + 0.1 * (started - start_s) / (days * 86400))
    churn = np.array([j[4] for j in JOBS])[job] * rng.uniform(0.002, 0.02, n)
    upload = np.where(first, grown, grown * churn)
    hx = _hex(rng, n, 8)
    job_names = np.array([j[0] for j in JOBS], dtype=object)
    b = pd.DataFrame({
        "cluster": CLUSTER, "backup_target": "default", "volume": names[vol],
        "backup": _strings(b"backup-", hx), "uid": _uuids(rng, n),
        "snapshot": _strings(b"snap-", hx), "recurring_job": job_names[job],
        "state": state, "requested_at": _ts(requested), "started_at": _ts(started),
        "finished_at": _ts(np.where(done, finished, np.nan)),
        "last_synced_at": _ts(np.where(running, end_s, last_synced)),
        "duration_s": np.where(done, dur, np.nan), "censored": ~done,
        "progress": np.where(done, 100, rng.integers(0, 100, n)),
        "size_bytes": grown.astype(np.int64),
        "volume_size_bytes": (fleet["size_gib"].to_numpy()[vol] * GIB).astype(np.int64),
        "new_upload_bytes": upload.astype(np.int64), "reupload_bytes": 0,
        "backup_mode": np.where(first, "full", "incremental").astype(object),
        "lock_conflict": lock_conflict, "lock_path": lock_path,
        "lock_path_matches": lock_matches, "message": message,
        "source": SOURCE, "collected_at": T_END})
    backups = schema.coerce("backups", b)
    del b
    return {"backups": backups, **_other_frames(fleet, backups, rng)}, longest


def _other_frames(fleet: pd.DataFrame, backups: pd.DataFrame, rng: np.random.Generator
                  ) -> dict[str, pd.DataFrame]:
    """jobs, volumes, backup_volumes and settings of the bench cluster."""
    runs = backups.groupby("recurring_job", observed=True)["volume"].size()
    members = {j[0]: len(_members(fleet, j[0])) for j in JOBS}
    common = {"cluster": CLUSTER, "source": SOURCE, "collected_at": T_END}
    jobs = schema.from_records("jobs", [
        {**common, "recurring_job": name, "task": "backup", "cron": cron, "retain": retain,
         "concurrency": lanes, "groups": name, "labels": "{}", "parameters": "{}",
         "execution_count": int(runs.get(name, 0) // max(members[name], 1))}
        for name, cron, retain, lanes, _ in JOBS])
    last = backups.loc[backups["state"] == "Completed"].groupby(
        "volume", observed=True)[["backup", "started_at"]].last()
    hourly = fleet["hourly"].to_numpy()
    groups = [",".join(sorted(g for g in gs if g)) for gs in zip(
        np.where(hourly >= 0, np.array(HOURLY, dtype=object)[hourly], ""),
        np.where(fleet["daily"], "daily", ""), np.where(fleet["weekly"], "weekly", ""),
        strict=True)]
    v = fleet["volume"]
    volumes = schema.coerce("volumes", pd.DataFrame({
        **common, "volume": v, "size_bytes": (fleet["size_gib"] * GIB).astype(np.int64),
        "actual_size_bytes": (fleet["actual_gib"] * GIB).astype(np.int64),
        "standby": False, "restore_required": False, "state": "attached",
        "robustness": "healthy", "recurring_jobs": "", "recurring_job_groups": groups,
        "backup_target": "default", "last_backup": v.map(last["backup"]),
        "last_backup_at": v.map(last["started_at"]), "lock_conflict": "none"}))
    backup_volumes = schema.coerce("backup_volumes", pd.DataFrame({
        **common, "backup_target": "default", "backup_volume": v, "volume": v,
        "size_bytes": (fleet["actual_gib"] * GIB * rng.uniform(1.1, 1.6, len(v))
                       ).astype(np.int64),
        "last_backup": v.map(last["backup"]), "last_backup_at": v.map(last["started_at"])}))
    settings = schema.from_records("settings", [
        {**common, "setting": "backupstore-poll-interval", "value": "300"},
        {**common, "setting": "failed-backup-ttl", "value": "1440"}])
    return {"jobs": jobs, "volumes": volumes, "backup_volumes": backup_volumes,
            "settings": settings}


def write_store(path: Path, frames: dict[str, pd.DataFrame], collections: int) -> None:
    """Append ``frames`` as ``collections`` collections, one at the end of each equal slice
    of the history, each holding the backups that reached their final state in its slice:
    what a store collected that often keeps, since it writes a row once (a backup still
    running at a collection would add one more row, left out here)."""
    hs = HistoryStore(path)
    b = frames["backups"]
    seen = b["finished_at"].fillna(b["last_synced_at"]).fillna(b["collected_at"])
    first = b["requested_at"].min().floor("D") + (T_END - T_END.floor("D"))
    span = (T_END - first) / collections
    slice_no = np.clip(np.ceil((seen - first) / span).to_numpy() - 1, 0, collections - 1)
    for c in range(collections):
        at = T_END - span * (collections - 1 - c)
        part = b[slice_no == c].assign(collected_at=at)
        rest = {k: f.assign(collected_at=at) for k, f in frames.items() if k != "backups"}
        hs.append({"backups": part, **rest})


def write_manifest(path: Path) -> None:
    """The 5-job proposal (RecurringJob YAML) that ``advisor check`` judges."""
    docs = [f"apiVersion: longhorn.io/v1beta2\nkind: RecurringJob\n"
            f"metadata: {{name: {name}, namespace: longhorn-system}}\n"
            f"spec: {{name: {name}, task: backup, cron: \"{cron}\", retain: {retain}, "
            f"concurrency: {lanes}, groups: [{group}], labels: {{}}}}\n"
            for name, cron, retain, lanes, group in MANIFEST_JOBS]
    path.write_text("---\n".join(docs))


def _steal_s() -> float:
    """CPU time the hypervisor gave other guests so far (``steal`` in /proc/stat), in
    CPU-seconds; 0 where the kernel does not say."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run(cmd: list[str], cores: int, out: Path, timeout_s: float) -> dict:
    """Run ``cmd`` in a fresh process on ``cores`` CPUs: wall and CPU s, peak MB, output,
    and the CPU time stolen from this machine meanwhile (a virtual machine's neighbours
    slow it down). A run longer than ``timeout_s`` is killed (``timed_out``)."""
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    env = {**os.environ, "NUMBA_NUM_THREADS": str(len(cpus))}
    stolen = _steal_s()
    with open(out, "w") as so, open(out.with_suffix(".err"), "w") as se:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=so, stderr=se, env=env,
                             preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        timer = threading.Timer(timeout_s, p.kill)
        timer.start()
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be a running max)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"code": p.returncode, "timed_out": wall >= timeout_s, "wall_s": wall,
            "cpu_s": ru.ru_utime + ru.ru_stime, "steal_s": _steal_s() - stolen,
            "peak_mb": ru.ru_maxrss / 1024, "stdout": out.read_text(),
            "stderr": out.with_suffix(".err").read_text()}


def report(what: str, runs: list[dict], full_size: bool) -> None:
    """One command's medians, and the goal's verdict (judged on the full-size store
    only: the goals are for 2,000 volumes and 90 days)."""
    med = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "peak_mb")}
    walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs)
    goal_s, goal_mb = GOALS[what]
    verdict = f"goal <= {goal_s:g} s" + (f" and <= {goal_mb:.0f} MB" if goal_mb else "")
    ok = (med["wall_s"] <= goal_s and (goal_mb is None or med["peak_mb"] <= goal_mb)
          and not any(r["timed_out"] for r in runs))
    if runs[-1]["timed_out"]:
        walls += " (the last killed at --timeout: a lower bound)"
    print(f"{what:>9}: median {med['wall_s']:.1f} s wall (runs: {walls}), "
          f"{med['cpu_s']:.1f} s CPU, peak {med['peak_mb']:.0f} MB; {verdict}: "
          f"{('met' if ok else 'MISSED') if full_size else 'not judged (a smaller store)'}")


def _arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volumes", type=int, default=2000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--collections", type=int,
                    help="collections the history is written as, one per equal slice of "
                         "time (default: one a day, as a daily `advisor collect` leaves)")
    ap.add_argument("--cores", type=int, default=2, help="CPUs the commands may use")
    ap.add_argument("--keep", type=Path, help="build the store here, or reuse it if there")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--commands", nargs="+", choices=("recommend", "check"),
                    default=["recommend", "check"], help="which commands to time")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds after which a run is killed (and not repeated)")
    return ap.parse_args()


def _make_store(store: Path, args: argparse.Namespace) -> None:
    """Build the history store at ``store``, or say which kept one is reused."""
    if args.keep and (store / "store.json").exists():
        print(f"reusing the store {store} ({HistoryStore(store).observations()})")
        return
    t = time.perf_counter()
    frames, longest = build(args.volumes, args.days, args.seed)
    made = time.perf_counter() - t
    b = frames["backups"]
    print(f"built {len(b):,} backups ({b['state'].value_counts().to_dict()}; "
          f"{(b['lock_conflict'] != 'none').sum():,} lock conflicts) of "
          f"{len(frames['volumes']):,} volumes, {len(frames['jobs'])} jobs, "
          f"{args.days} days, in {made:.1f} s")
    print("longest run per job, minutes: " + ", ".join(
        f"{k} {v / 60:.0f}" for k, v in longest.items()))
    t = time.perf_counter()
    collections = args.collections or args.days
    write_store(store, frames, collections)
    del frames, b
    size_mb = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 1e6
    print(f"wrote the store ({collections} collection(s), {size_mb:.0f} MB) "
          f"in {time.perf_counter() - t:.1f} s: {store}")


def _time(what: str, cmd: list[str], store: Path, tmp: Path, args: argparse.Namespace
          ) -> list[dict]:
    """The first run with no fits kept, then ``--repeat`` runs: each run's figures."""
    print(f"$ {' '.join(cmd)}", flush=True)
    # with no fits kept (a collection written without `advisor collect`'s fit, or
    # `collect --no-fit`) the first run fits the durations and keeps them; the runs after
    # it read them back, as after a `collect` (the goals: on those)
    shutil.rmtree(store / "derived", ignore_errors=True)
    r = run(cmd, args.cores, tmp / f"{what}-first.json", args.timeout)
    print(f"  first run with no fits kept (fits the history, keeps the fits): "
          f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak "
          f"{r['peak_mb']:.0f} MB (exit {r['code']})", flush=True)
    runs = []
    for i in range(args.repeat):
        r = run(cmd, args.cores, tmp / f"{what}-{i}.json", args.timeout)
        ok = r["code"] == 0 or (what == "check" and r["code"] == 1)  # 1: risky
        if r["timed_out"]:
            print(f"  run {i + 1}: killed after {r['wall_s']:.0f} s (--timeout), "
                  f"{r['cpu_s']:.0f} s CPU, peak {r['peak_mb']:.0f} MB so far")
            runs.append(r)
            break
        if not ok:
            sys.exit(f"{what} failed (exit {r['code']}):\n{r['stderr'][-3000:]}")
        runs.append(r)
        print(f"  run {i + 1}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, "
              f"peak {r['peak_mb']:.0f} MB; {r['steal_s']:.1f} CPU-s stolen by the "
              "hypervisor meanwhile", flush=True)
    if not runs[-1]["timed_out"]:
        out = json.loads(runs[0]["stdout"])
        if what == "recommend":
            for rec in out["recommendations"]:
                print(f"  {rec}")
            print(f"  {len(out['volumes'])} volumes scored")
        else:
            kinds = pd.Series([f["kind"] for f in out["findings"]]).value_counts()
            print(f"  verdict {out['verdict']}; findings {kinds.to_dict()}")
    return runs


def main() -> None:
    args = _arguments()
    tmp = Path(tempfile.mkdtemp(prefix="bench-recommend-"))
    try:
        store = args.keep or tmp / "store"
        _make_store(store, args)
        manifest = tmp / "proposed.yaml"
        write_manifest(manifest)
        exe = Path(sys.executable).with_name("advisor")
        advisor = [str(exe)] if exe.exists() else [sys.executable, "-m", "advisor"]
        commands = {
            "recommend": [*advisor, "recommend", "--store", str(store), "--start", START,
                          "-o", "json"],
            "check": [*advisor, "check", str(manifest), "--store", str(store), "--start",
                      START, "-o", "json"]}
        results = {what: _time(what, commands[what], store, tmp, args)
                   for what in args.commands}
        repo = Path(__file__).resolve().parents[1]
        head = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"],
                              capture_output=True, text=True).stdout.strip()
        load = os.getloadavg()[0]
        print(f"advisor at {head or 'unknown commit'}, on {os.cpu_count()} CPUs (commands "
              f"pinned to {args.cores}), load average {load:.1f}: other processes on the "
              "machine count in the wall times")
        for what, runs in results.items():
            report(what, runs, args.volumes >= 2000 and args.days >= 90)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
