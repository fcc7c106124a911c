"""Recovery points: the fast path's per-draw gaps and waits, the history's, and the
table that compares them (advisor.model.recovery, advisor.model.recovery_observed)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.model.fastpath import score_volume
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.recovery import _quantiles, intended_gaps
from advisor.model.recovery_observed import observed_recovery, recovery_table
from advisor.model.risk import Draws, assess_fleet
from advisor.model.simulate import simulate

START, END = "2026-01-05", "2026-01-12"  # a Monday, a week
HOUR, WEEK = 3600.0, 7 * 86400.0
GIB = 2**30


def score(jobs, deletion=Duration(10, None, "fixed"), **kw):
    return score_volume(jobs, deletion, START, END, draws=kw.pop("draws", 20), version="1.8",
                        warmup_s=6 * HOUR, recovery=True,
                        kept={j.name: j.retain for j, _ in jobs}, **kw)


def test_an_hourly_job_that_keeps_its_promise_has_every_point_an_hour_apart():
    """10-minute backups every hour, nothing in the way: 168 completions a week, each an
    hour after the last (the week's open end, 50 min, is shorter), none lost or
    delayed, in every draw."""
    r = score([(JobSpec("hourly", "0 * * * *", retain=3), Duration(600, None, "fixed"))]
              ).recovery
    s = r.summary()
    assert (r.intended_s, r.intended_max_s, r.intended_points) == (HOUR, HOUR, 168)
    assert s["points"] == s["points_lo"] == s["points_hi"] == 168
    assert s["lost"] == s["lost_hi"] == 0 and s["waited_hi"] == 0
    for k in ("gap_p50", "gap_p95", "gap_max"):
        assert s[k] == s[f"{k}_lo"] == s[f"{k}_hi"] == HOUR
    assert math.isnan(s["wait_p95"])


def test_a_backup_longer_than_the_interval_loses_points_and_stretches_the_gap():
    """A 70-minute backup every hour under Forbid: each run ends after the next slot,
    which starts late at once, so completions come every 70 minutes and 10 s (the late
    backup is created as its predecessor's retention deletion starts, and waits its
    10 s Pending, >= 1.8): 143 or 144 a week of the 168 promised, the rest lost."""
    r = score([(JobSpec("hourly", "0 * * * *", retain=3), Duration(4200, None, "fixed"))]
              ).recovery
    s = r.summary()
    assert s["gap_p50"] == s["gap_p95"] == s["gap_max"] == 4210
    assert s["points"] in (143, 144) and s["lost"] == 168 - s["points"]
    assert s["waited"] == s["points"] and s["wait_p50"] == s["wait_p95"] == 10


def test_a_weekly_jobs_gap_reaches_back_before_the_window():
    """A weekly job completes once in the window; its gap runs from the last fire time
    before the window plus that backup's duration: exactly a week for fixed durations."""
    r = score([(JobSpec("weekly", "0 3 * * 0", retain=4), Duration(900, None, "fixed"))]
              ).recovery
    s = r.summary()
    assert s["points"] == 1 and s["lost"] == 0
    assert s["gap_p50"] == s["gap_max"] == WEEK and r.intended_s == WEEK


def test_backups_held_pending_behind_a_deletion_are_counted_with_their_waits():
    """From 1.8 a backup created while its volume's deletion runs waits Pending: a
    3-minute backup every 5 minutes, each completion deleting one backup for 4 minutes.
    The first wait makes the run outlast the next slot, whose late start then comes as
    the retention deletion starts: from then on every backup waits the whole 4 minutes
    and one completes every 7 (2 of every 7 slots' points lost; 1,440 waits a week)."""
    r = score([(JobSpec("often", "*/5 * * * *", retain=1), Duration(180, None, "fixed"))],
              deletion=Duration(240, None, "fixed")).recovery
    s = r.summary()
    assert s["wait_p50"] == s["wait_p95"] == 240 and s["gap_p50"] == 420
    assert s["points"] == pytest.approx(WEEK / 420, abs=1)
    assert s["waited"] == pytest.approx(s["points"], abs=1)
    assert s["lost"] == pytest.approx(WEEK / 300 - WEEK / 420, abs=1)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["0 * * * *", "*/20 * * * *", "30 */2 * * *"]),
       st.floats(60, 9000), st.floats(5, 3000), st.integers(0, 2**16))
def test_asking_for_recovery_points_changes_no_other_figure(cron, backup, deletion, seed):
    """The kernel draws nothing more for recovery points: every count is the same with
    and without them."""
    jobs = [(JobSpec("j", cron, retain=2), Duration(backup, backup * 2, "lognormal")),
            (JobSpec("daily", "0 0 * * *", retain=2), Duration(backup, backup * 2,
                                                                "lognormal"))]
    dele = Duration(deletion, deletion * 3, "lognormal")
    args = dict(draws=30, version="1.8", warmup_s=6 * HOUR, seed=seed,
                kept={"j": 2, "daily": 2})
    a = score_volume(jobs, dele, START, END, recovery=True, **args)
    b = score_volume(jobs, dele, START, END, **args)
    assert b.recovery is None and a.recovery.draws == 30
    for k in ("delete_blocked", "create_blocked", "pending_behind_deletion",
              "restore_blocked", "conflicted_runs"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    for k in ("skipped_slots", "late_starts", "runs"):
        assert all(np.array_equal(getattr(a, k)[j], getattr(b, k)[j]) for j in ("j", "daily"))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.floats(0, 1e6)), min_size=0, max_size=9),
                min_size=1, max_size=6))
def test_row_quantiles_are_numpys(rows):
    """The per-draw median and 95th percentile over a row's finite values are
    ``np.nanquantile``'s (NaN for a row with none)."""
    width = max(len(r) for r in rows)
    x = np.array([[np.nan if v is None else v for v in r] + [np.nan] * (width - len(r))
                  for r in rows], dtype=float).reshape(len(rows), width)
    p50, p95 = _quantiles(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (all-NaN rows)
        want = np.nanquantile(x, [0.5, 0.95], axis=1) if width else np.full((2, len(rows)),
                                                                             np.nan)
    np.testing.assert_allclose(p50, want[0], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(p95, want[1], rtol=1e-12, equal_nan=True)


def test_intended_gaps_merge_every_jobs_fire_times():
    """An hourly and a daily job at the same minute fire 24 times a day together: the
    intended gap stays an hour; a daily at :30 halves one gap a day."""
    t0 = pd.Timestamp(START, tz="UTC").value / 1e9
    hours = t0 + HOUR * np.arange(168)
    assert intended_gaps(np.concatenate([hours, t0 + 86400 * np.arange(7)]), t0,
                         t0 + WEEK) == (HOUR, HOUR)
    med, longest = intended_gaps(np.concatenate([hours, t0 + 1800 + 86400 * np.arange(7)]),
                                 t0, t0 + WEEK)
    assert (med, longest) == (HOUR, HOUR)
    assert intended_gaps(np.array([]), t0, t0 + WEEK) == (pytest.approx(np.nan,
                                                                        nan_ok=True),) * 2


def _backup(volume, name, asked, started, finished, state="Completed", conflict="none",
            deletion=None, uploaded=None):
    t = pd.Timestamp
    return {"cluster": "c", "volume": volume, "backup": name, "state": state,
            "requested_at": t(asked, tz="UTC"), "started_at": t(started, tz="UTC"),
            "finished_at": None if finished is None else t(finished, tz="UTC"),
            "deletion_requested_at": None if deletion is None else t(deletion, tz="UTC"),
            "new_upload_bytes": uploaded, "lock_conflict": conflict}


def test_observed_recovery_reads_a_weeks_gaps_failures_waits_and_deferrals():
    """By hand: v1 completes on Sunday before the week, then Monday 01:00 and Wednesday
    01:00, one backup fails; a backup waited 5 minutes behind a deletion; a deletion in
    the week met a backup (deferred, 2 GiB uploaded). Gaps: 1 d, 2 d; the longest is the
    open end, Wednesday 01:00 to the week's end (4 d 23 h). v2's only backup is older:
    no point, no gap but the open one."""
    rows = [
        _backup("v1", "b0", "2026-01-04T01:00", "2026-01-04T01:00", "2026-01-04T01:00"),
        _backup("v1", "b1", "2026-01-05T00:55", "2026-01-05T01:00", "2026-01-05T01:00",
                conflict="pending_behind_deletion"),
        _backup("v1", "b2", "2026-01-06T01:00", "2026-01-06T01:00", None, state="Error",
                conflict="create_blocked"),
        _backup("v1", "b3", "2026-01-07T01:00", "2026-01-07T01:00", "2026-01-07T01:00",
                deletion="2026-01-08T00:00", conflict="delete_blocked", uploaded=2 * GIB),
        _backup("v2", "c0", "2025-12-01T01:00", "2025-12-01T01:00", "2025-12-01T02:00")]
    b = pd.DataFrame(rows)
    o = observed_recovery(b, pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC"))
    v1 = o.set_index("volume").loc["v1"]
    assert v1["points"] == 2 and v1["failed"] == 1
    assert v1["gap_p50"] == 1.5 * 86400 and v1["gap_max"] == 4 * 86400 + 23 * HOUR
    assert v1["waited"] == 1 and v1["wait_p50"] == v1["wait_p95"] == 300
    assert v1["deferred"] == 1 and v1["deferred_bytes"] == 2 * GIB
    assert math.isnan(v1["restore_blocked"])  # (no message in the history shows one)
    v2 = o.set_index("volume").loc["v2"]
    assert v2["points"] == 0 and math.isnan(v2["gap_p50"])
    assert v2["gap_max"] == (pd.Timestamp(END, tz="UTC")
                             - pd.Timestamp("2025-12-01T02:00", tz="UTC")).total_seconds()


def test_the_predicted_ranges_cover_what_the_simulator_does():
    """The full simulator's weeks, read as a history, fall inside the fast path's
    predicted ranges for a volume whose runs skip and wait (a slow hourly backup, a
    daily at the same minute, deletions that hold backups Pending): the completed
    points, the lost ones, the gaps' p95 and the Pending waits, in at least 7 of 8
    simulated weeks per figure."""
    vol = VolumeSpec("v", 100 * GIB, Duration(2700, 5400, "lognormal"),
                     Duration(300, 900, "lognormal"), groups=("g",))
    fleet = Fleet((vol,), (JobSpec("hourly", "0 * * * *", retain=6, groups=("g",)),
                           JobSpec("daily", "0 0 * * *", retain=3, groups=("g",))))
    risk = assess_fleet(fleet, Draws(seed=3, min_draws=400, max_draws=400, recovery=True),
                        start=START, version="1.8")
    inside = {k: 0 for k in ("points", "lost", "gap_p95", "waited")}
    for seed in range(8):
        sim = simulate(fleet, pd.Timestamp(START, tz="UTC") - pd.Timedelta(days=2),
                       END, version="1.8", seed=seed)
        b = sim.frames["backups"].assign(cluster="")
        t = recovery_table(risk, observed_recovery(b, pd.Timestamp(START, tz="UTC"),
                                                    pd.Timestamp(END, tz="UTC")))
        row = t.iloc[0]
        assert row["lost_observed"] > 0 and row["waited_observed"] > 0
        for k in inside:
            inside[k] += row[f"{k}_lo"] <= row[f"{k}_observed"] <= row[f"{k}_hi"]
    assert all(n >= 7 for n in inside.values()), inside


def test_a_fleets_total_moves_its_volumes_together_within_a_stratum():
    from advisor.model.recovery import fleet_sum
    from advisor.model.runpool import STRATA

    # each volume's draw d shows its stratum: a doubt they all share
    shared = [np.arange(400) % STRATA for _ in range(100)]
    total = fleet_sum(shared, samples=1600, seed=2)
    assert set(np.unique(total)) == {100.0 * k for k in range(STRATA)}
    assert np.std(total) == pytest.approx(100 * np.std(np.arange(STRATA)), rel=0.05)
    # the same figures, not shared (each volume's draws in an order of its own): the
    # total spreads as a sum of independent parts, ten times less for 100 volumes
    rng = np.random.default_rng(0)
    apart = fleet_sum([rng.permutation(x) for x in shared], samples=1600, seed=2)
    assert np.std(apart) == pytest.approx(10 * np.std(np.arange(STRATA)), rel=0.15)
    assert np.mean(apart) == pytest.approx(100 * 7.5, rel=0.01)
    # NaN counts nothing; a volume with fewer draws than strata is drawn from freely
    assert (fleet_sum([np.array([np.nan, 1.0])], samples=64) <= 1).all()
