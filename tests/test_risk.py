"""Per-volume risk: plans from a fleet, steady-state counts, adaptive draws, and the
predictions against the simulator's long-run rates."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from advisor.advice.search import fleet_scorer
from advisor.model.fastpath import RunPool, score_volume
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.risk import (
    Draws,
    assess,
    assess_fleet,
    assess_volume,
    default_window,
    learn_waits,
    plans_from_fleet,
)
from advisor.model.simulate import simulate
from advisor.sample import sample_fleet, simulate_sample

GIB = 2**30
D = Duration.parse


def hourly_and_daily(backup: Duration, daily: Duration, deletion: Duration) -> Fleet:
    v = VolumeSpec("v", 100 * GIB, backup, deletion, groups=("g",),
                   job_backup_durations=(("daily", daily),))
    return Fleet((v,), (JobSpec("hourly", "0 * * * *", retain=24, groups=("g",)),
                        JobSpec("daily", "0 0 * * *", retain=7, groups=("g",))))


def test_a_kept_pool_evicted_while_new_ones_are_kept_is_still_used(monkeypatch):
    from advisor.model import risk

    vols = tuple(VolumeSpec(f"v{i}", GIB, D("10m"), D("1m"), groups=("g",)) for i in range(4))
    jobs = tuple(JobSpec(f"j{k}", f"{k} * * * *", retain=2, concurrency=2, groups=("g",))
                 for k in range(3))
    fleet = Fleet(vols, jobs[2:])
    monkeypatch.setattr(risk, "_POOLS", type(risk._POOLS)())
    monkeypatch.setattr(risk, "_POOLS_KEPT", 1)
    kept = plans_from_fleet(fleet, pool_runs=16)[0].queues["j2"][0]
    # j2's pool is kept; j0 and j1, before it in order, are new, and keeping them
    # evicts j2's (the cache holds one): j2's must be the one found, not looked up after
    plans = plans_from_fleet(replace(fleet, jobs=jobs), pool_runs=16)
    assert plans[0].queues["j2"][0] is kept and len(risk._POOLS) == 1


def test_plans_carry_queues_and_dr_restores():
    vols = tuple(VolumeSpec(f"v{i}", GIB, D("10m"), D("1m"), groups=("g",)) for i in range(5))
    dr = VolumeSpec("dr", GIB, D("10m"), D("1m"), groups=("none",), standby=True,
                    restore_of="v3", restore_duration=D("2m"))
    fleet = Fleet((*vols, dr), (JobSpec("h", "0 * * * *", retain=2, concurrency=2,
                                        groups=("g",)),), poll_interval_s=120.0)
    plans = {p.volume: p for p in plans_from_fleet(fleet)}
    assert set(plans) == {"v0", "v1", "v2", "v3", "v4"}  # the DR volume runs no job
    pool, at = plans["v3"].queues["h"]
    # two lanes of 10-minute backups: v2 and v3 start at 10 min, v4 at 20; 30 min in all
    assert at == 3 and (pool.start[:, 3] == 600).all() and (pool.start[:, 4] == 1200).all()
    assert (pool.span == 1800).all()
    assert plans["v3"].restore == (120.0, D("2m")) and plans["v1"].restore is None
    # a pool does not depend on its job's cron: every interval tried shares one
    half_hourly = replace(fleet, jobs=(replace(fleet.jobs[0], cron="*/30 * * * *"),))
    assert plans_from_fleet(half_hourly)[3].queues["h"][0] is pool
    slower = replace(fleet, volumes=(replace(vols[0], backup_duration=D("11m")),
                                     *fleet.volumes[1:]))
    assert plans_from_fleet(slower)[3].queues["h"][0] is not pool


def test_steady_state_counts_with_fixed_durations():
    # in steady state every hourly completion deletes one backup; the 00:10 deletion
    # meets the daily backup (00:00-00:20) every day: 7 a week, with no spread at all
    fleet = hourly_and_daily(D("10m"), D("20m"), D("1m"))
    risk = assess(plans_from_fleet(fleet), start="2026-01-05", version="1.8")
    v = risk.for_volume("v")
    assert v.expected_per_week["delete_blocked"].mean == 7.0
    assert v.expected_per_week["delete_blocked"].se == 0.0
    assert v.draws == 500  # the precision was met by the first batch
    assert v.p_conflict_per_run.mean == pytest.approx(7 / (168 + 7))
    assert v.skipped_per_week["hourly"].mean == 0.0
    assert v.effective_interval_s["hourly"].mean == pytest.approx(3600.0)
    row = risk.table.iloc[0]
    assert row["volume"] == "v" and row["expected_conflicts_per_week"] == 7.0


def test_draws_adapt_to_the_precision():
    fleet = hourly_and_daily(Duration(600, 2400, "lognormal"),
                             Duration(1200, 3600, "lognormal"),
                             Duration(300, 1200, "lognormal"))
    plan = plans_from_fleet(fleet)[0]
    t0, t1 = default_window("2026-01-05")
    coarse = assess_volume(plan, t0, t1, Draws(precision=0.05, min_draws=200))
    fine = assess_volume(plan, t0, t1, Draws(precision=0.0005, min_draws=200, max_draws=3200))
    assert coarse.draws == 200 and coarse.p_conflict_per_run.se <= 0.05
    assert fine.draws > 200
    assert fine.p_conflict_per_run.se <= 0.0005 or fine.draws == 3200
    assert abs(fine.p_conflict_per_run.mean - coarse.p_conflict_per_run.mean) < \
        4 * coarse.p_conflict_per_run.se + 4 * fine.p_conflict_per_run.se


def test_draws_adapt_to_the_weekly_precision_too():
    # a retention deletion outlasts the hour (and meets the next backup) in about one
    # run in 250: about half the weeks have one. The per-run probability is precise at
    # once (168 runs a draw), the per-week one is not.
    v = VolumeSpec("v", GIB, D("5m"), Duration(60, 720, "lognormal"), groups=("g",))
    fleet = Fleet((v,), (JobSpec("hourly", "0 * * * *", retain=24, groups=("g",)),))
    plan = plans_from_fleet(fleet)[0]
    t0, t1 = default_window("2026-01-05")
    run_only = assess_volume(plan, t0, t1, Draws(precision=0.01, min_draws=100))
    assert run_only.draws == 100
    week = run_only.p_conflict_per_week
    assert 0.2 < week.mean < 0.8 and week.se > 0.025  # (else the test shows nothing)
    both = assess_volume(plan, t0, t1, Draws(precision=0.01, min_draws=100,
                                               week_precision=0.025))
    assert both.draws > 100 and both.p_conflict_per_week.se <= 0.025


def test_default_window_starts_on_a_monday():
    t0, t1 = default_window("2026-11-28T17:00:00Z")  # a Saturday
    assert t0 == pd.Timestamp("2026-11-30T00:00:00Z") and t1 - t0 == pd.Timedelta(weeks=1)
    assert default_window("2026-11-30")[0] == pd.Timestamp("2026-11-30T00:00:00Z")


def test_predictions_match_the_simulators_long_run_rates():
    # five volumes of an hourly group (concurrency 2) and a daily job on the same group:
    # the simulator over six weeks (the first left out: retention is not reached yet)
    # against the risk model's one-week predictions, per volume and kind
    sizes = (1, 2, 3, 4, 5)
    vols = tuple(VolumeSpec(f"v{i}", s * 100 * GIB, Duration(300 * s, 700 * s, "lognormal"),
                            Duration(60 * s, 200 * s, "lognormal"), groups=("g",))
                 for i, s in enumerate(sizes))
    fleet = Fleet(vols, (JobSpec("hourly", "0 * * * *", retain=6, concurrency=2,
                                 groups=("g",)),
                         JobSpec("daily", "0 0 * * *", retain=2, groups=("g",))))
    sim = simulate(fleet, "2026-01-05", "2026-02-16", version="1.8", seed=3)
    ev = sim.events[sim.events["time"] >= pd.Timestamp("2026-01-12T00:00:00Z")]
    risk = assess(plans_from_fleet(fleet), Draws(precision=0.001, max_draws=4000),
                  start="2026-02-16", version="1.8")
    for v in risk.volumes:
        e = ev[ev["volume"] == v.volume]
        observed = e.loc[(e["operation"] == "deletion") & (e["event"] == "lock_conflict"),
                         "backup"].nunique() / 5
        predicted = v.expected_per_week["delete_blocked"]
        # five weeks of one simulated history: its own Poisson error dominates
        tolerance = 3 * np.sqrt(max(predicted.mean, 0.2) / 5) + 3 * predicted.se
        assert abs(observed - predicted.mean) <= tolerance, (v.volume, observed, predicted)
    assert sum(v.expected_per_week["delete_blocked"].mean for v in risk.volumes) > 1


def test_run_pool_waits_hold_the_lane_but_not_the_volumes_own_view():
    durations = [D("10m")] * 4
    plain = RunPool(durations, 2, runs=64, seed=1)
    assert (plain.span == 20 * 60).all()
    # volume 0 always waits 5 more minutes behind a deletion: volume 2 starts later and
    # the run is longer; volume 0 sees the run without its own wait (the kernel draws it)
    held = RunPool(durations, 2, runs=64, seed=1, waits=[(1.0, D("5m")), None, None, None])
    assert (held.own == plain.own).all()
    assert (held.start[:, 2] == 10 * 60).all() and (held.start[:, 3] == 15 * 60).all()
    assert (held.span == 25 * 60).all()
    assert (held.span_for(0) == 20 * 60).all() and held.span_for(1) is held.span
    # a wait that never happens changes nothing
    never = RunPool(durations, 2, runs=64, seed=1, waits=[(0.0, D("5m"))] * 4)
    assert (never.span == plain.span).all() and (never.start == plain.start).all()
    with pytest.raises(ValueError, match="waits"):
        RunPool(durations, 2, waits=[None])


def test_a_doubted_median_holds_for_a_whole_stratum_of_runs_and_a_deletions_for_all():
    from advisor.model.runpool import STRATA, shared_z

    z = shared_z(STRATA)  # the strata's normal quantiles, in order
    assert np.allclose(z, -z[::-1]) and (np.diff(z) > 0).all()
    # no spread within a run's duration: what varies is the median's doubt alone
    doubted = [Duration(600, 600, "lognormal", median_sd=0.5)] * 3
    pool = RunPool(doubted, 1, runs=64, seed=3,
                   waits=[(1.0, Duration(60, 60, "lognormal", median_sd=0.7))] * 3)
    assert pool.strata == STRATA
    runs = np.arange(64)
    for i in range(3):  # each volume: one factor per stratum, every quantile once
        per = {k: np.unique(pool.own[runs % STRATA == k, i]) for k in range(STRATA)}
        assert all(len(v) == 1 for v in per.values())
        assert np.allclose(np.sort([v[0] for v in per.values()]), 600 * np.exp(0.5 * z))
    # independent between volumes: their strata take the quantiles in other orders
    assert not np.allclose(pool.own[:STRATA, 0], pool.own[:STRATA, 1])
    # a wait (a deletion) is doubted for all at once: the same factor in a run
    second = pool.start[:, 1] - pool.own[:, 0]  # volume 1 starts after 0's backup + wait
    assert np.allclose(second, 60 * np.exp(0.7 * z[runs % STRATA]))
    # nothing in doubt: no strata, the pool as it was
    plain = RunPool([D("10m")] * 3, 1, runs=64, seed=3)
    assert plain.strata == 1


def test_a_draw_takes_its_pooled_runs_and_its_deletion_doubt_from_its_stratum():
    from advisor.model import fastpath
    from advisor.model.runpool import STRATA, shared_z

    job = JobSpec("hourly", "0 * * * *", retain=2, concurrency=1)
    doubted = Duration(600, 600, "lognormal", median_sd=0.5)
    pool = RunPool([doubted] * 2, 1, runs=64, seed=3)
    deletion = Duration(60, 60, "lognormal", median_sd=0.7)
    t0, t1 = pd.Timestamp("2026-01-05T00:00:00Z"), pd.Timestamp("2026-01-06T00:00:00Z")
    options = {"queues": {"hourly": (pool, 1)}, "seed": 5}
    kernel = fastpath._KernelInputs.build([(job, doubted)], t0, t1, "1.8", options)
    blocks = list(fastpath._blocks(kernel, [(job, doubted)], deletion, options, 40, 16))
    assert [b[0] for b in blocks] == [0, 16, 32]
    for lo, backup, _, deletions, _ in blocks:
        for j in range(backup.shape[1]):
            k = (lo + j) % STRATA
            # every run of the draw from its stratum: one backup duration throughout
            assert np.allclose(backup[:, j], pool.own[k, 1])
            assert np.allclose(deletions[:, j], 60 * np.exp(0.7 * shared_z(STRATA)[k]))


@pytest.fixture(scope="module")
def sample_truth():
    return simulate_sample()


def test_feedback_brings_the_sample_hourly_runs_to_the_simulators(sample_truth):
    # The sample's hourly job: 40 volumes, concurrency 10, pvc-app-02's backups (about an
    # hour) wait behind its own deletions in most runs. Without feedback the other
    # volumes' runs look shorter than they are and too few fire times are skipped.
    fleet, result = sample_truth
    weeks = (result.skipped_slots["slot"].max() - result.skipped_slots["slot"].min()
             ) / pd.Timedelta(weeks=1)
    observed = (result.skipped_slots["recurring_job"] == "hourly").sum() / weeks
    start, want = "2026-11-23", ["pvc-app-02", "pvc-app-10"]
    waits = learn_waits(fleet, start=start, version="1.8")
    assert waits["pvc-app-02"][0] > 0.5
    assert waits.get("pvc-app-10", (0.0,))[0] < 0.05
    with_fb = assess_fleet(fleet, start=start, version="1.8", volumes=want, waits=waits)
    without = assess([p for p in plans_from_fleet(fleet) if p.volume in want],
                     start=start, version="1.8")
    for a in with_fb.volumes:
        assert a.skipped_per_week["hourly"].mean == pytest.approx(observed, rel=0.1)
    # pvc-app-02's own waits were always drawn; the other volumes' runs needed them
    plain = without.for_volume("pvc-app-10").skipped_per_week["hourly"].mean
    assert plain < 0.85 * observed
    ev = result.events[result.events["volume"] == "pvc-app-02"]
    pending = (ev["event"] == "pending").sum() / weeks
    got = with_fb.for_volume("pvc-app-02").expected_per_week["pending_behind_deletion"].mean
    assert got == pytest.approx(pending, rel=0.1)
    # Longhorn <= 1.7 fails such a backup at once: no lane is held
    assert learn_waits(fleet, start=start, version="1.7") == {}


def test_fleet_scorer_stops_at_the_first_volume_over_the_target():
    # ten quick volumes and two whose backups take most of an hour, on one hourly job
    quick = [VolumeSpec(f"v{i:02}", GIB, D("1m"), D("20s"), groups=("g",)) for i in range(10)]
    slow = [VolumeSpec(f"v{i}", 500 * GIB, D({"median": "40m", "p95": "70m"}),
                       D({"median": "8m", "p95": "15m"}), groups=("g",)) for i in (10, 11)]
    job = JobSpec("h", "0 * * * *", retain=3, concurrency=12, groups=("g",))
    fleet = Fleet((*quick, *slow), (job,))
    target, start = 0.01, "2026-01-05"
    score = fleet_scorer(fleet, start=start, focus="h", waits={}, target=target)
    now = score([job])  # the jobs as they are: every volume, so the worst is known
    assert len(now) == 12 and now["v10"].upper > target and now["v00"].upper <= target
    faster = score([JobSpec("h", "*/30 * * * *", retain=3, concurrency=12, groups=("g",))])
    # the slow volumes go first and break it: the quick ones are never scored
    assert 0 < len(faster) < 12 and any(o.upper > target for o in faster.values())
    assert not {f"v{i:02}" for i in range(4, 10)} & set(faster)
    slower = score([JobSpec("h", "0 0 * * *", retain=3, concurrency=12, groups=("g",))])
    assert len(slower) == 12 and all(o.upper <= target for o in slower.values())
    # the current jobs' figures come from an assessment when there is one: a decided
    # volume keeps its figures exactly, an undecided one is scored again
    current = assess_fleet(fleet, start=start, waits={})
    reuse = fleet_scorer(fleet, start=start, focus="h", waits={}, target=target,
                         current=current)([job])
    assert len(reuse) == 12
    for v in ("v00", "v10"):
        e = current.for_volume(v).p_conflict_per_run_by_job["h"]
        assert (reuse[v].p_conflict_per_run, reuse[v].p_conflict_per_run_se) == (e.mean, e.se)
    assert reuse["v00"].p_conflict_per_run_se != now["v00"].p_conflict_per_run_se


def test_a_warm_up_puts_late_runs_where_they_would_be_at_the_window_start():
    # The sample's 40-volume hourly run outlasts its hour, so at any hour it has usually
    # not ended: its next run starts late. Started cold at Monday 00:00, every draw's
    # first hourly run is on time and meets the daily job's run there (both reach
    # pvc-app-05 first). With the warm-up the week's start no longer matters.
    fleet = sample_fleet()
    plan = {p.volume: p for p in plans_from_fleet(fleet)}["pvc-app-05"]
    monday = pd.Timestamp("2027-01-04T00:00:00Z")

    def blocked(start, warm=True):
        if warm:
            r = assess_volume(plan, start, start + pd.Timedelta(weeks=1),
                              Draws(min_draws=1000, max_draws=1000), version="1.8")
            return r.expected_per_week["delete_blocked"]
        s = score_volume(plan.jobs, plan.deletion, start, start + pd.Timedelta(weeks=1),
                         draws=1000, version="1.8", queues=plan.queues,
                         kept={j.name: j.retain for j, _ in plan.jobs})
        return s.expected_per_week("delete_blocked")

    at_midnight, at_twenty_past = blocked(monday), blocked(monday + pd.Timedelta(minutes=20))
    assert abs(at_midnight.mean - at_twenty_past.mean) < \
        4 * (at_midnight.se ** 2 + at_twenty_past.se ** 2) ** 0.5
    assert blocked(monday, warm=False).mean > 2 * at_midnight.mean  # the cold start


def test_a_target_is_decided_on_the_focus_jobs_own_figure():
    # a weekly and a monthly job on a volume whose short operations never meet: six runs
    # a draw make the volume's overall per-run figure precise long before the monthly
    # job's own (one run a draw) is; the monthly job must still be shown under 1 %
    v = VolumeSpec("v", GIB, D("2m"), D("20s"), groups=("g",))
    fleet = Fleet((v,), (JobSpec("weekly", "0 3 * * 0", retain=4, groups=("g",)),
                         JobSpec("monthly", "0 5 1 * *", retain=3, groups=("g",))))
    plan = plans_from_fleet(fleet)[0]
    t0, t1 = default_window("2027-01-04", weeks=5)
    r = assess_volume(plan, t0, t1, Draws(min_draws=64, target=0.01, focus="monthly"))
    monthly = r.p_conflict_per_run_by_job["monthly"]
    assert monthly.mean == 0.0 and monthly.mean + 2 * monthly.se <= 0.01
    assert r.draws > 256  # (the overall figure alone would have stopped at 256)


def test_map_volumes_forks_and_keeps_order_and_errors():
    from advisor.model.executor import FORK_CHUNK, map_volumes

    base = 1000  # (a closure: forked workers inherit it, nothing is pickled)
    items = list(range(5 * FORK_CHUNK))
    pids = map_volumes(lambda i: (base + i, os.getpid()), items)
    assert [v for v, _ in pids] == [base + i for i in items]
    workers = {p for _, p in pids}
    if len(os.sched_getaffinity(0)) > 1:  # two cores: the work left this process
        assert os.getpid() not in workers
    else:  # one core: no process is worth starting
        assert workers == {os.getpid()}

    def bad(i: int) -> int:
        if i == 70:
            raise ValueError("volume 70")
        return i

    with pytest.raises(ValueError, match="volume 70"):
        map_volumes(bad, items)


def test_map_each_forks_one_item_per_task_and_tells_each_in_order():
    from advisor.model.executor import map_each

    told: list[int] = []
    out = map_each(lambda i: (i * i, os.getpid()), list(range(7)), told=told.append)
    assert [v for v, _ in out] == [i * i for i in range(7)] and told == list(range(7))
    workers = {p for _, p in out}
    if len(os.sched_getaffinity(0)) > 1:  # (charts: each in a forked worker)
        assert os.getpid() not in workers
    else:
        assert workers == {os.getpid()}
    told.clear()  # three items: not worth two processes
    assert [p for _, p in map_each(lambda i: (i, os.getpid()), [1, 2, 3], told.append)] \
        == [os.getpid()] * 3 and told == [0, 1, 2]
