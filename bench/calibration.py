"""Calibration of the risk model against ground truth (issue 5's validation).

For each of --fleets random fleets: simulate 12 weeks with the full simulator; fit the
duration models on the first 8 weeks' Backup records only (as a user's history would
be), rebuild the fleet from that history, predict the next 4 weeks with the fast path,
and compare with what the simulator did in those 4 weeks, volume by volume:

- coverage: the share of volumes whose observed number of lock conflicts (all kinds)
  lies inside the central 95 % interval of the predicted number (the per-draw
  distribution of the fast path's counts over the same 4 weeks); goal >= 90 %;
- reliability: predicted P(at least one conflict in a week) against the observed share
  of volume-weeks with one, by bins of the prediction, and the Brier score;
- recovery points: per figure (completed backups and lost ones a week, the gaps' p50,
  p95 and maximum, backups held Pending and their p95 wait, deferred cleanups) the share
  of volumes whose value in the simulator's event log (the ground truth, read on its
  own: ``completed``, ``pending``/``pending_released`` and blocked deletions) lies in
  the predicted range (the central 95 % of the draws, :mod:`advisor.model.recovery`);
  goal >= 90 % each. ``--sample`` does the same for the bundled sample's scored week
  against its own event log (``advisor sample --out DIR`` writes it).

The predictive interval carries the uncertainty of each duration's median (a fitted
median's standard error; the deletion prior's factor-of-2 doubt: the history holds no
deletion times). ``--no-median-uncertainty`` drops it, to show what it is worth.

    .venv/bin/python bench/calibration.py [--fleets 20] [--seed 1] [--no-median-uncertainty]
                                          [--sample]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

from advisor.inputs import fleet_from_history
from advisor.model.durations import fit_durations
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.recovery_observed import FIGURES, recovery_table
from advisor.model.risk import FLEET_DRAWS, assess_fleet
from advisor.model.simulate import simulate

START = pd.Timestamp("2026-01-05T00:00:00Z")  # a Monday
CUTOFF = START + pd.Timedelta(weeks=8)
END = CUTOFF + pd.Timedelta(weeks=4)
GIB = 2**30
EPOCH = pd.Timestamp(0, tz="UTC")
VERSION = "1.8"


def random_fleet(rng: np.random.Generator) -> Fleet:
    """5-12 volumes in 1-2 groups, 2-3 backup jobs with common mistakes and not."""
    n = int(rng.integers(5, 13))
    vols = []
    for i in range(n):
        size = float(np.exp(rng.uniform(np.log(5), np.log(1500))))
        med = 30 + 0.04 * size * 60 * rng.uniform(0.7, 1.3)
        dele = 20 + 0.4 * size * rng.uniform(0.5, 1.5)
        vols.append(VolumeSpec(f"v{i:02d}", int(size * GIB),
                               Duration(med, med * rng.uniform(1.3, 2.5), "lognormal"),
                               Duration(dele, dele * 2.5, "lognormal"),
                               groups=("a",) if i % 3 else ("a", "b")))
    minute = int(rng.choice([0, 0, 15, 30]))
    jobs = [JobSpec("frequent", str(rng.choice([f"{minute} * * * *",
                                                f"{minute} */2 * * *",
                                                f"{minute} */4 * * *"])),
                    retain=int(rng.integers(4, 25)), concurrency=int(rng.integers(2, 6)),
                    groups=("a",)),
            JobSpec("daily", f"{int(rng.choice([0, 0, 20]))} {int(rng.choice([0, 1]))} * * *",
                    retain=int(rng.integers(3, 8)), concurrency=int(rng.integers(2, 11)),
                    groups=("a",))]
    if rng.random() < 0.5:
        jobs.append(JobSpec("weekly", "0 0 * * 0", retain=4, concurrency=4, groups=("b",)))
    return Fleet(tuple(vols), tuple(jobs))


def observed(events: pd.DataFrame, volume: str) -> tuple[int, np.ndarray]:
    """Conflicts of ``volume`` in the 4 weeks after the cutoff (the fast path's
    definitions), and whether each of the 4 weeks had one."""
    e = events[(events["volume"] == volume) & (events["time"] >= CUTOFF)]
    week = ((e["time"] - CUTOFF) // pd.Timedelta(weeks=1)).astype(int)
    blocked = e[(e["operation"] == "deletion") & (e["event"] == "lock_conflict")]
    first = blocked.drop_duplicates("backup")
    other = e[(e["conflict"].isin(["create_blocked", "restore_blocked"]))
              | (e["event"] == "pending")]
    weeks = np.zeros(4, bool)
    for w in (week[first.index], week[other.index]):
        weeks[w.to_numpy()[w.to_numpy() < 4]] = True
    return len(first) + len(other), weeks


def truth_recovery(events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
                   ) -> pd.DataFrame:
    """Per volume, the recovery figures of ``start`` - ``end`` read from an event log (the
    simulator's ground truth), per week: completions and their gaps (the one before the
    window included; the open end counts in the maximum), backups held Pending and
    their waits, deletions blocked at least once."""
    weeks = (end - start) / pd.Timedelta(weeks=1)
    e = events[events["volume"].notna() & (events["volume"] != "")]
    rows = []
    for v, g in e.groupby("volume"):
        done = g.loc[(g["operation"] == "backup") & (g["event"] == "completed"), "time"]
        t = np.sort((done[done < end] - EPOCH).dt.total_seconds().to_numpy())
        s0, s1 = start.value / 1e9, end.value / 1e9
        gaps = np.diff(t)[t[1:] >= s0] if len(t) > 1 else np.zeros(0)
        tail = s1 - t[-1] if len(t) else np.nan
        pend = g[g["event"].isin(["pending", "pending_released"])].sort_values("time")
        held = pend[pend["event"] == "pending"].set_index("backup")["time"]
        freed = pend[pend["event"] == "pending_released"].set_index("backup")["time"]
        both = held.index.intersection(freed.index)
        waits = ((freed[both] - held[both]).dt.total_seconds())[held[both] >= start]
        waits = waits[held[both][waits.index] < end]
        blocked = g[(g["operation"] == "deletion") & (g["event"] == "lock_conflict")
                    & (g["time"] >= start) & (g["time"] < end)].drop_duplicates("backup")
        rows.append({"cluster": "", "volume": v, "points": (t >= s0).sum() / weeks,
                     "gap_p50": np.quantile(gaps, 0.5) if len(gaps) else np.nan,
                     "gap_p95": np.quantile(gaps, 0.95) if len(gaps) else np.nan,
                     "gap_max": np.nanmax([gaps.max() if len(gaps) else np.nan, tail]),
                     "failed": 0, "waited": len(waits) / weeks,
                     "wait_p50": waits.quantile(0.5) if len(waits) else np.nan,
                     "wait_p95": waits.quantile(0.95) if len(waits) else np.nan,
                     "deferred": len(blocked) / weeks, "deferred_bytes": 0.0,
                     "restore_blocked": np.nan})
    return pd.DataFrame(rows)


def recovery_coverage(risk, events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
                      ) -> pd.DataFrame:
    """Per volume and figure: the truth's value, the predicted range, and whether it is
    inside."""
    t = recovery_table(risk, truth_recovery(events, start, end))
    rows = []
    for r in t.itertuples():
        for f in FIGURES:
            obs, lo, hi = (getattr(r, f"{f}_{k}") for k in ("observed", "lo", "hi"))
            if np.isnan(obs) or np.isnan(lo):
                continue
            rows.append({"volume": r.volume, "figure": f, "truth": obs, "lo": lo, "hi": hi,
                         "inside": lo - 1e-9 <= obs <= hi + 1e-9})
    return pd.DataFrame(rows)


def print_recovery(cov: pd.DataFrame, what: str) -> None:
    """The coverage of each recovery figure, and the largest misses."""
    if cov.empty:
        print(f"{what}: no recovery figure to compare")
        return
    table = cov.groupby("figure", sort=False).agg(volumes=("inside", "size"),
                                                  covered=("inside", "mean"))
    print(f"{what}: recovery points in the predicted range (goal >= 90 % each)")
    print(table.to_string(float_format=lambda x: f"{x:.1%}"))
    miss = cov[~cov["inside"]]
    if len(miss):
        print(miss.head(8).to_string(index=False, float_format=lambda x: f"{x:.4g}"))


def sample_recovery() -> None:
    """The bundled sample's scored week against its ground-truth event log."""
    from advisor.advice.analyse import analyse
    from advisor.api import load_history
    from advisor.sample.fleet import simulate_sample

    history = load_history(sample=True)
    a = analyse(history.frames, history.fits, advise=False)
    _, result = simulate_sample()
    print_recovery(recovery_coverage(a.assessment, result.events, a.window.start,
                                     a.window.end), f"sample, week {a.window.label}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleets", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-median-uncertainty", action="store_true",
                    help="take every fitted or prior median as exact")
    ap.add_argument("--sample", action="store_true",
                    help="also the bundled sample's week against its event log")
    args = ap.parse_args()
    if args.sample:
        sample_recovery()
    rng = np.random.default_rng(args.seed)
    rows, t_all, covered = [], time.perf_counter(), []
    for k in range(args.fleets):
        fleet = random_fleet(rng)
        history = simulate(fleet, START, CUTOFF, version=VERSION, seed=k)
        truth = simulate(fleet, START, END, version=VERSION, seed=k)
        frames = {name: df.assign(cluster="c") for name, df in history.frames.items()}
        fits = fit_durations(frames["backups"], frames["volumes"],
                             frames.get("backup_volumes"), jobs=frames.get("jobs"))
        rebuilt, _ = fleet_from_history(frames, fits)
        if args.no_median_uncertainty:
            exact = [dataclasses.replace(
                v, backup_duration=dataclasses.replace(v.backup_duration, median_sd=0.0),
                deletion_duration=dataclasses.replace(v.deletion_duration, median_sd=0.0))
                for v in rebuilt.volumes]
            rebuilt = dataclasses.replace(rebuilt, volumes=tuple(exact))
        draws = dataclasses.replace(FLEET_DRAWS, seed=k, precision=0.002, min_draws=1000,
                                    max_draws=4000)
        risk = assess_fleet(rebuilt, draws, start=CUTOFF, weeks=4, version=VERSION)
        covered.append(recovery_coverage(risk, truth.events, CUTOFF, END).assign(fleet=k))
        for v in risk.volumes:
            per_draw = v.score.counts("conflicts")
            lo, hi = np.quantile(per_draw, [0.025, 0.975])
            count, weeks = observed(truth.events, v.volume)
            p_week = v.p_conflict_per_week.mean
            rows.append({"fleet": k, "volume": v.volume, "observed": count,
                         "predicted_mean": float(per_draw.mean()), "lo": lo, "hi": hi,
                         "inside": lo <= count <= hi, "p_week": p_week,
                         "weeks_with_conflict": int(weeks.sum())})
    df = pd.DataFrame(rows)
    inside = df["inside"].mean()
    print(f"{args.fleets} fleets, {len(df)} volumes, Longhorn {VERSION}, median "
          f"uncertainty {'off' if args.no_median_uncertainty else 'on'}; "
          f"{time.perf_counter() - t_all:.0f} s")
    print(f"coverage: observed conflicts inside the 95 % predictive interval for "
          f"{inside:.1%} of volumes (goal >= 90 %)")
    # reliability of P(a week has a conflict), over volume-weeks
    p = np.repeat(df["p_week"].to_numpy(), 4)
    o = np.concatenate([[1] * w + [0] * (4 - w) for w in df["weeks_with_conflict"]])
    brier = float(np.mean((p - o) ** 2))
    bins = pd.cut(p, [0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0], include_lowest=True)
    table = pd.DataFrame({"p": p, "o": o, "bin": bins}).groupby("bin", observed=True).agg(
        volume_weeks=("p", "size"), predicted=("p", "mean"), observed=("o", "mean"))
    print("reliability of P(conflict in a week):")
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"Brier score: {brier:.4f} (always predicting the base rate "
          f"{o.mean():.3f}: {np.mean((o.mean() - o) ** 2):.4f})")
    print_recovery(pd.concat(covered, ignore_index=True), f"{args.fleets} fleets, 4 weeks")
    worst = df.assign(gap=df["observed"] - df["predicted_mean"]).sort_values(
        "gap", key=abs, ascending=False).head(5)
    print("largest misses:")
    print(worst[["fleet", "volume", "observed", "predicted_mean", "lo", "hi"]].to_string(
        index=False, float_format=lambda x: f"{x:.1f}"))


if __name__ == "__main__":
    main()
