"""The lock risk of proposed jobs (``advisor check``'s model): rare jobs scored around
their fire times agree with whole weeks of simulation; the gate stops drawing where the
verdict is known."""

from __future__ import annotations

import pandas as pd

from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.proposal import (
    FIRST_DRAWS,
    POOL_RUNS,
    WORST_DRAWS,
    _windows,
    assess_proposal,
    merge_jobs,
)
from advisor.model.risk import Draws, assess_volume, default_window, plans_from_fleet

GIB = 2**30
D = Duration.parse
START = "2026-03-02"  # a Monday


def fleet(backup: str = "20m", n: int = 4, lanes: int = 2) -> Fleet:
    vols = tuple(VolumeSpec(f"v{i}", 50 * GIB, D(backup), D("3m"), groups=("g",))
                 for i in range(n))
    return Fleet(vols, (JobSpec("hourly", "0 * * * *", retain=24, concurrency=lanes,
                                groups=("g",)),))


def test_a_weekly_job_is_scored_around_its_run_and_agrees_with_a_whole_week():
    weekly = JobSpec("weekly", "55 2 * * 0", retain=4, concurrency=2, groups=("g",))
    f = fleet()
    out = assess_proposal(f, [weekly], start=START, version="1.10", target=0.01)
    r = out["weekly"]
    assert r.rare and len(r.windows) == 1
    (t0, t1), = r.windows
    assert t0 == pd.Timestamp("2026-03-08T02:54Z") and t1 - t0 >= pd.Timedelta(days=1)
    assert set(r.p_conflict_per_run) == {"v0", "v1", "v2", "v3"}
    # the same figure from a whole week of draws, per volume, within Monte Carlo error
    plans = {p.volume: p for p in plans_from_fleet(merge_jobs(f, [weekly]))}
    w0, w1 = default_window(START)
    for v in ("v0", "v3"):
        whole = assess_volume(plans[v], w0, w1, Draws(seed=11, min_draws=400, max_draws=400),
                              version="1.10").p_conflict_per_run_by_job["weekly"]
        around = r.p_conflict_per_run[v]
        assert abs(whole.mean - around.mean) <= 3 * (whole.se ** 2 + around.se ** 2) ** 0.5
    # 5 minutes before the hourly run of 20-minute backups: its retention deletions meet
    # the hourly backups; the gate reports its per-run figures and its runs a week
    # expected to meet a conflict
    worst = r.worst()
    assert worst is not None and worst[1].mean > 0.3
    assert r.runs_per_week == 1.0
    assert abs(r.expected_per_week - sum(e.mean for e in r.p_conflict_per_run.values())) \
        < 1e-9


def test_jobs_that_fire_often_or_close_together_are_scored_over_whole_weeks():
    t0, t1 = default_window(START)
    assert _windows(JobSpec("d", "0 2 * * *"), t0, t1, 86400.0, None) is None
    assert _windows(JobSpec("h", "0 * * * *"), t0, t1, 86400.0, None) is None
    # twice a week, a day apart: the second run falls in the first one's horizon
    assert _windows(JobSpec("t", "0 2 * * 2,3"), t0, t1, 86400.0, None) is None
    # twice a week, days apart: a window around each
    two = _windows(JobSpec("t", "0 2 * * 1,4"), t0, t1, 86400.0, None)
    assert [w[0].day_name() for w in two] == ["Monday", "Thursday"]


def test_a_safe_job_gets_the_draws_its_verdict_needs_and_a_risky_one_does_not():
    f = fleet(backup="2m")
    safe = JobSpec("weekly", "30 3 * * 0", retain=4, concurrency=2, groups=("g",))
    r = assess_proposal(f, [safe], start=START, version="1.10", target=0.01)["weekly"]
    # nothing meets a 2-minute backup 30 minutes away: each volume is drawn until its
    # figure is clearly under 1 % (hundreds of runs), never left at the first pass
    for v, p in r.p_conflict_per_run.items():
        assert p.mean + 2 * p.se <= 0.01, v
        assert r.draws[v] > FIRST_DRAWS
    f = fleet(backup="20m", n=8, lanes=8)  # (an hourly run of 20 minutes)
    risky = JobSpec("weekly", "55 2 * * 0", retain=4, concurrency=8, groups=("g",))
    r = assess_proposal(f, [risky], start=START, version="1.10", target=0.01)["weekly"]
    # just before the hourly job: clearly over; only its likeliest volumes are drawn
    # again (fresh draws), and the worst is one of them
    assert r.worst()[1].mean - 2 * r.worst()[1].se > 0.01
    assert r.worst()[0] in r.rescored and len(r.rescored) <= 4
    # its standard error counts the run pool's realisations, which every draw reuses
    p = r.worst()[1]
    assert p.se >= (p.mean * (1 - p.mean) / POOL_RUNS) ** 0.5
    assert sorted(set(r.draws.values())) == [FIRST_DRAWS, WORST_DRAWS]
