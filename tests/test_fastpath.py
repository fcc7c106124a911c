"""The fast path against the full simulator: the same counts, draw for draw, with fixed
durations; the same means with lognormal ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advisor.model.fastpath import CONFLICT_KINDS, RunPool, VolumeScore, score_volume
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.simulate import simulate

START = "2026-01-05T00:00:00Z"  # a Monday
GIB = 2**30
D = Duration.parse


def simulated_counts(jobs, deletion, start, end, version, *, seed=0, restore=None) -> dict:
    """The simulator's counts for one volume covered by ``jobs`` (and, with ``restore``,
    a DR volume restoring it), in the fast path's terms. Conflicts come from the event
    log: the backups frame keeps one conflict per Backup, so a Pending backup whose
    deletion is later blocked shows only the latter there."""
    names = tuple(j.name for j, _ in jobs)
    volumes = [VolumeSpec("v", 100 * GIB, jobs[0][1], deletion, jobs=names,
                          job_backup_durations=tuple((j.name, d) for j, d in jobs))]
    settings = {}
    if restore:
        volumes.append(VolumeSpec("dr", 100 * GIB, restore[1], deletion, groups=("none",),
                                  standby=True, restore_of="v"))
        settings["poll_interval_s"] = restore[0]
    fleet = Fleet(tuple(volumes), tuple(j for j, _ in jobs), **settings)
    r = simulate(fleet, start, end, version=version, seed=seed)
    ev = r.events
    out = {
        "delete_blocked": ev.loc[(ev["operation"] == "deletion")
                                 & (ev["event"] == "lock_conflict"), "backup"].nunique(),
        "create_blocked": int((ev["conflict"] == "create_blocked").sum()),
        "pending_behind_deletion": int((ev["event"] == "pending").sum()),
        "restore_blocked": int((ev["conflict"] == "restore_blocked").sum()),
    }
    for name in names:
        runs = r.runs[r.runs["recurring_job"] == name]
        out[f"runs:{name}"] = len(runs)
        out[f"late_starts:{name}"] = int((runs["late_s"] > 0).sum())
        out[f"skipped_slots:{name}"] = int((r.skipped_slots["recurring_job"] == name).sum())
    return out


def fast_counts(score: VolumeScore) -> dict[str, np.ndarray]:
    out = {k: getattr(score, k) for k in CONFLICT_KINDS}
    for kind in ("runs", "late_starts", "skipped_slots"):
        for name, counts in getattr(score, kind).items():
            out[f"{kind}:{name}"] = counts
    return out


def assert_same(jobs, deletion, end, version, *, restore=None, draws=3) -> dict:
    expected = simulated_counts(jobs, deletion, START, end, version, restore=restore)
    got = fast_counts(score_volume(jobs, deletion, START, end, draws=draws,
                                   version=version, restore=restore))
    assert set(got) == set(expected)
    for kind, value in expected.items():
        assert (got[kind] == value).all(), (kind, value, got[kind])
    return expected


HOURLY = JobSpec("hourly", "0 * * * *", retain=24)
DAILY = JobSpec("daily", "0 0 * * *", retain=7)


def test_one_daily_job_has_no_conflicts():
    c = assert_same([(JobSpec("daily", "0 0 * * *", retain=3), D("10m"))], D("1m"),
                    "2026-02-04T00:00:00Z", "1.10")
    assert c["runs:daily"] == 30 and sum(c[k] for k in CONFLICT_KINDS) == 0


@pytest.mark.parametrize("version", ["1.7", "1.8"])
def test_hourly_and_daily_at_minute_zero(version):
    c = assert_same([(HOURLY, D("10m")), (DAILY, D("20m"))], D("1m"),
                    "2026-01-12T00:00:00Z", version)
    assert c["delete_blocked"] == 6  # from day 2, the 00:10 deletion meets the daily backup


@pytest.mark.parametrize("version", ["1.7", "1.8"])
def test_a_backup_slower_than_its_interval(version):
    c = assert_same([(JobSpec("hourly", "0 * * * *", retain=3), D("70m"))], D("1m"),
                    "2026-01-06T00:00:00Z", version)
    assert c["late_starts:hourly"] > 0 and c["skipped_slots:hourly"] > 0


@pytest.mark.parametrize("version", ["1.7", "1.8"])
def test_a_long_deletion_meets_the_next_backup(version):
    c = assert_same([(JobSpec("hourly", "0 * * * *", retain=1), D("5m"))], D("70m"),
                    "2026-01-06T00:00:00Z", version)
    if version == "1.7":
        assert c["create_blocked"] > 0 and c["pending_behind_deletion"] == 0
    else:
        assert c["pending_behind_deletion"] > 0 and c["create_blocked"] == 0


@pytest.mark.parametrize("version", ["1.7", "1.8"])
def test_a_failed_deletion_awaiting_its_retry(version):
    # "b"'s retention deletion fails on "a"'s long backup and waits for its retries
    # while "a" and "b" start new backups (>= 1.8: they do not wait behind it)
    c = assert_same([(JobSpec("a", "0 * * * *", retain=1), D("59m")),
                     (JobSpec("b", "10 * * * *", retain=1), D("5m"))], D("30s"),
                    "2026-01-06T00:00:00Z", version)
    assert c["delete_blocked"] > 0 and c["pending_behind_deletion"] == 0


@pytest.mark.parametrize("version", ["1.7", "1.8"])
def test_a_dr_restore_meets_a_deletion(version):
    c = assert_same([(JobSpec("hourly", "0 * * * *", retain=1), D("5m"))], D("10m"),
                    "2026-01-06T00:00:00Z", version, restore=(300.0, D("10m")))
    assert c["restore_blocked"] > 0


def test_failed_backups_are_deleted_after_the_ttl():
    # 1.7: backups fail on a 70-minute deletion; a day later their TTL deletions run
    c = assert_same([(JobSpec("hourly", "0 * * * *", retain=1), D("5m")),
                     (JobSpec("six", "30 */6 * * *", retain=1), D("50m"))], D("70m"),
                    "2026-01-08T00:00:00Z", "1.7")
    assert c["create_blocked"] > 0


class Sequenced:
    """Durations taken in turn from a list: the simulator and the fast path (one draw)
    ask for them in the same order, so both see the very same durations."""

    median_sd = 0.0  # the median is exact

    def __init__(self, values):
        self.values, self.pos = list(values), 0

    def sample(self, rng, n):
        out = np.array(self.values[self.pos:self.pos + n], dtype=float)
        assert len(out) == n, "sequence exhausted"
        self.pos += n
        return out


CRONS = ["0 * * * *", "*/30 * * * *", "15 */2 * * *", "0 0 * * *", "0 */6 * * *",
         "*/20 * * * *", "5 * * * *", "0 */3 * * *"]


@pytest.mark.parametrize("case", range(24))
def test_random_schedules_and_durations_agree_exactly(case):
    rng = np.random.default_rng(case)
    crons = rng.choice(CRONS, rng.integers(1, 4), replace=False)
    jobs = [(JobSpec(f"j{i}", str(c), retain=int(rng.integers(1, 5))),
             float(rng.choice([120, 600, 1800, 3600])), float(rng.choice([0.3, 0.8, 1.2])))
            for i, c in enumerate(crons)]
    deletion = (float(rng.choice([30, 300, 1200, 3600])), float(rng.choice([0.3, 1.0])))
    restore = (float(rng.choice([60, 300])), float(rng.choice([60, 400, 900]))) \
        if rng.random() < 0.4 else None
    version = str(rng.choice(["1.7", "1.8"]))
    step = float(rng.choice([0, 60, 300]))  # whole minutes make equal times common
    seed = int(rng.integers(2**31))

    def build():
        r = np.random.default_rng(seed)

        def seq(median, sigma, n=3000):
            v = median * np.exp(sigma * r.standard_normal(n))
            return Sequenced(np.maximum(np.round(v / step) * step, 1.0) if step else v)

        return ([(j, seq(m, s)) for j, m, s in jobs], seq(*deletion),
                (restore[0], seq(restore[1], 0.5, 30000)) if restore else None)

    end = f"2026-01-{5 + int(rng.integers(1, 3)):02d}T00:00:00Z"
    expected = simulated_counts(*build()[:2], START, end, version, restore=build()[2])
    js, dl, rs = build()
    got = fast_counts(score_volume(js, dl, START, end, draws=1, version=version,
                                   restore=rs))
    assert {k: int(v[0]) for k, v in got.items()} == expected


@pytest.mark.parametrize("version", ["1.7", "1.8"])
def test_lognormal_means_agree_with_the_simulator(version):
    jobs = [(JobSpec("hourly", "0 * * * *", retain=4), Duration(600, 2400, "lognormal")),
            (JobSpec("daily", "0 0 * * *", retain=1), Duration(1800, 7200, "lognormal"))]
    deletion = Duration(300, 2400, "lognormal")
    restore = (300.0, Duration(300, 900, "lognormal"))
    end = "2026-01-06T00:00:00Z"
    sims = [simulated_counts(jobs, deletion, START, end, version, seed=s, restore=restore)
            for s in range(200)]
    fast = fast_counts(score_volume(jobs, deletion, START, end, draws=4000,
                                    version=version, seed=7, restore=restore))
    for kind in sims[0]:
        s = np.array([x[kind] for x in sims], dtype=float)
        f = fast[kind].astype(float)
        # under the hypothesis that both have one distribution, the larger sample's
        # variance is the better estimate for both (the simulator's 200 may show none)
        var = max(f.var(ddof=1), s.var(ddof=1))
        se = math.sqrt(var / len(s) + var / len(f))
        assert abs(s.mean() - f.mean()) <= 4 * se + 1e-9, (kind, s.mean(), f.mean(), se)
    assert fast["delete_blocked"].mean() > 0.1 and fast["restore_blocked"].mean() > 0.1
    assert fast[CONFLICT_KINDS[1 if version == "1.7" else 2]].mean() > 0.1


def lognormal_score(draws=500, seed=0, version="1.10", end="2026-01-12T00:00:00Z",
                    threads=None):
    return score_volume([(JobSpec("hourly", "0 * * * *", retain=4),
                          Duration(300, 900, "lognormal")),
                         (JobSpec("daily", "0 0 * * *", retain=1),
                          Duration(1200, 3600, "lognormal"))],
                        Duration(120, 600, "lognormal"), START, end, draws=draws,
                        version=version, seed=seed, threads=threads)


def test_shapes_determinism_and_independent_draws():
    a, b = lognormal_score(seed=3), lognormal_score(seed=3)
    for kind in CONFLICT_KINDS:
        assert getattr(a, kind).shape == (500,)
        assert (getattr(a, kind) == getattr(b, kind)).all()
    assert set(a.runs) == {"hourly", "daily"} and a.runs["hourly"].shape == (500,)
    assert a.delete_blocked.var() > 0  # the draws differ
    c = lognormal_score(seed=4)
    assert not (a.delete_blocked == c.delete_blocked).all()


def test_threads_change_nothing():
    # 3,000 draws of a week run in several blocks; how many threads score them must
    # not change a single count
    one, two = (lognormal_score(draws=3000, seed=5, threads=t) for t in (1, 2))
    for kind in (*CONFLICT_KINDS, "conflicted_runs"):
        assert (getattr(one, kind) == getattr(two, kind)).all(), kind
    for name in one.runs:
        assert (one.runs[name] == two.runs[name]).all()
        assert (one.skipped_slots[name] == two.skipped_slots[name]).all()


def test_fixed_durations_give_the_same_counts_in_every_draw():
    s = score_volume([(HOURLY, D("10m")), (DAILY, D("20m"))], D("1m"), START,
                     "2026-01-12T00:00:00Z", draws=50, version="1.8")
    assert (s.delete_blocked == 6).all()
    assert s.expected_per_week("delete_blocked").se == 0.0


def test_median_uncertainty_scales_each_draw_by_one_factor():
    # An hourly backup of 5 min and its retention deletion: the next backup meets the
    # deletion when the deletion outlasts a threshold T (found with fixed durations).
    # With the deletion's median known only to a factor exp(0.3 Z), a draw has
    # conflicts exactly when its factor takes the deletion past T.
    job, end = JobSpec("hourly", "0 * * * *", retain=1), "2026-01-06T00:00:00Z"

    def conflicts(deletion: Duration, draws: int = 1) -> np.ndarray:
        return score_volume([(job, D("5m"))], deletion, START, end, draws=draws,
                            version="1.7", seed=11).counts("conflicts")

    lo, hi = 60.0, 3600.0
    while hi - lo > 1:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if conflicts(Duration(mid))[0] > 0 else (mid, hi)
    assert conflicts(Duration(lo))[0] == 0 < conflicts(Duration(hi))[0]
    median, sd, n = 0.8 * hi, 0.3, 4000
    c = conflicts(Duration(median, median_sd=sd), draws=n)
    share = (c > 0).mean()
    expected = 1 - math.erfc(-math.log(hi / median) / sd / math.sqrt(2)) / 2
    assert share == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / n))
    assert (conflicts(Duration(median), draws=50) == 0).all()  # exact median: never
    with pytest.raises(ValueError, match="median_sd"):
        Duration(60, median_sd=-0.1)


def test_estimates():
    week = lognormal_score(draws=400, version="1.7")
    day = lognormal_score(draws=400, version="1.7", end="2026-01-06T00:00:00Z")
    for s in (week, day):
        e = s.expected_per_week("conflicts")
        assert e.mean > 0 and 0 < e.se < e.mean
        p = s.p_any_conflict_per_week()
        assert 0 <= p.mean <= 1 and p.se >= 0
        r = s.p_any_conflict_per_run()
        assert 0 < r.mean < 1 and r.se > 0
    assert day.expected_per_week("delete_blocked").mean == pytest.approx(
        7 * day.delete_blocked.mean())
    assert week.expected_per_week("runs").mean == pytest.approx(week.counts("runs").mean())
    assert week.counts("runs").min() >= 168 - 24  # hourly and daily runs, over a week
    assert "VolumeScore(400 draws" in repr(week)
    with pytest.raises(ValueError, match="unknown count"):
        week.counts("nope")


def test_bad_input():
    with pytest.raises(ValueError, match="retain"):
        score_volume([(JobSpec("h", "0 * * * *", retain=0), D("1m"))], D("1m"), START,
                     "2026-01-06T00:00:00Z", draws=2)
    with pytest.raises(ValueError, match="no backups"):
        score_volume([(JobSpec("s", "0 * * * *", task="snapshot"), D("1m"))], D("1m"),
                     START, "2026-01-06T00:00:00Z", draws=2)
    with pytest.raises(ValueError, match="draws"):
        score_volume([(HOURLY, D("1m"))], D("1m"), START, "2026-01-06T00:00:00Z", draws=0)


def group_counts(n: int, concurrency: int, minutes: int, volume: str, end: str,
                 version: str, daily: str | None = None) -> tuple[dict, dict]:
    """The simulator's and the fast path's counts for ``volume`` in an hourly job over
    ``n`` volumes (and, with ``daily``, a daily job at that cron on ``volume`` alone)."""
    names = [f"v{i:02d}" for i in range(n)]
    jobs = [(JobSpec("hourly", "0 * * * *", retain=2, concurrency=concurrency,
                     groups=("g",)), D(f"{minutes}m"))]
    if daily:
        jobs.append((JobSpec("daily", daily, retain=1), D("30m")))
    vols = tuple(VolumeSpec(v, 100 * GIB, D(f"{minutes}m"), D("15m"), groups=("g",),
                            jobs=("daily",) if daily and v == volume else (),
                            job_backup_durations=(("daily", D("30m")),))
                 for v in names)
    r = simulate(Fleet(vols, tuple(j for j, _ in jobs)), START, end, version=version)
    ev = r.events[r.events["volume"].isin([volume, ""])]
    expected = {
        "delete_blocked": ev.loc[(ev["operation"] == "deletion")
                                 & (ev["event"] == "lock_conflict"), "backup"].nunique(),
        "create_blocked": int((ev["conflict"] == "create_blocked").sum()),
        "pending_behind_deletion": int((ev["event"] == "pending").sum()),
        "restore_blocked": 0,
    }
    for j, _ in jobs:
        runs = r.runs[r.runs["recurring_job"] == j.name]
        expected[f"runs:{j.name}"] = len(runs)
        expected[f"late_starts:{j.name}"] = int((runs["late_s"] > 0).sum())
        expected[f"skipped_slots:{j.name}"] = int(
            (r.skipped_slots["recurring_job"] == j.name).sum())
    pool = RunPool([D(f"{minutes}m")] * n, concurrency, runs=16)
    got = score_volume(jobs, D("15m"), START, end, draws=2, version=version,
                       queues={"hourly": (pool, names.index(volume))})
    return expected, {k: int(v[0]) for k, v in fast_counts(got).items()}


@pytest.mark.parametrize("lanes", [1, 3, 10])
def test_run_pool_lanes_take_the_first_free_lane(lanes):
    # whole minutes make ties between lanes frequent: the lowest-numbered lane wins
    rng = np.random.default_rng(lanes)
    hold = rng.integers(0, 5, (64, 25)) * 60.0  # (0 s holds the lane the 2 s check)
    start, free = np.empty_like(hold), np.zeros((64, lanes))
    for r in range(64):
        for i in range(25):
            k = int(np.flatnonzero(free[r] == free[r].min())[0])
            start[r, i] = free[r, k]
            free[r, k] += max(hold[r, i], 2.0)
    pool = RunPool([D("1m")] * 25, lanes, runs=64)
    got_start, got_span = pool._lanes(hold, lanes)
    assert np.array_equal(got_start, start) and np.array_equal(got_span, free.max(axis=1))


@pytest.mark.parametrize("volume", ["v00", "v15", "v39"])
def test_a_volume_in_a_forty_volume_run(volume):
    # 20-minute backups, 10 at a time: every run lasts 80 min, so catch-up runs start
    # late and slots never run; each volume waits its turn in the run
    expected, got = group_counts(40, 10, 20, volume, "2026-01-06T00:00:00Z", "1.8")
    assert got == expected
    assert got["skipped_slots:hourly"] > 0 and got["late_starts:hourly"] > 0


@pytest.mark.parametrize("version", ["1.7", "1.8"])
@pytest.mark.parametrize("volume", ["v01", "v07"])
def test_a_queued_volume_meets_its_own_daily_job(version, volume):
    # the daily job backs the volume up at 00:05 while the hourly run reaches it 0, 10
    # or 30 minutes into the run: retention deletions (15 min) and backups meet
    expected, got = group_counts(8, 3, 10, volume, "2026-01-08T00:00:00Z", version,
                                 daily="5 0 * * *")
    assert got == expected
    assert sum(got[k] for k in CONFLICT_KINDS) > 0


def test_lanes_are_laid_as_lane_by_lane_greedy_assignment_does():
    # the compiled layout keeps the lanes' free times in a heap; every start and span
    # must equal the plain rule: the lowest-numbered lane among those that free first
    from advisor.model import _kernel as K

    rng = np.random.default_rng(1)
    for lanes in (1, 2, 3, 7, 20):
        hold = np.round(rng.lognormal(3, 1, (120, 57)))  # (rounded: lanes tie)
        hold[:, 5] = 0.0  # (min_hold applies)
        want_start, want_span = np.empty_like(hold), np.empty(len(hold))
        for r in range(len(hold)):
            free = np.zeros(lanes)
            for i in range(hold.shape[1]):
                lane = int(np.argmin(free))
                want_start[r, i] = free[lane]
                free[lane] += max(hold[r, i], 2.0)
            want_span[r] = free.max()
        start, span = np.empty_like(hold), np.empty(len(hold))
        every = 8
        marks = np.zeros((len(hold), -(-hold.shape[1] // every), lanes))
        K.lay_lanes(hold, lanes, 2.0, start, span, marks, every)
        assert np.array_equal(start, want_start) and np.array_equal(span, want_span)
        # one volume's own hold in place of its wait, resumed from the marks: the same
        # as laying the changed runs out from the start
        for position in (0, 7, 8, 9, 56):
            own = hold[:, position] * 0.5
            rows = np.arange(0, len(hold), 3)
            again = np.empty(len(rows))
            K.lanes_span(hold, np.array([position]), np.array([0, len(rows)]), rows,
                         own[rows], lanes, 2.0, marks, every, again)
            changed = hold.copy()
            changed[:, position] = own
            K.lay_lanes(changed, lanes, 2.0, start, span, np.zeros((len(hold), 0, lanes)),
                        every)
            assert np.array_equal(again, span[rows])
