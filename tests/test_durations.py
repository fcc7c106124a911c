"""advisor.model.durations: censored lognormal fits, the fleet prior, trends, deletion
priors and queue delays, on synthetic data with known parameters and on the sample fleet
(whose simulator keeps the ground truth)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from advisor import sample, schema
from advisor.model.durations import MODEL_BACKUP_COLUMNS, DeletionPrior, fit_durations
from advisor.model.fleet import Duration
from advisor.sources.files import load_document

T0 = pd.Timestamp("2026-01-05T00:00:00Z")
Z95, Z99 = 1.6448536269514722, 2.3263478740408408
GIB = 2**30
MEDIAN, P95 = 600.0, 1800.0
SIGMA = math.log(P95 / MEDIAN) / Z95


def backups(volume: str | np.ndarray, durations: np.ndarray, *, starts_s: np.ndarray | None = None,
            censor_s: np.ndarray | None = None, cluster: str = "c1", job: str = "",
            upload_bytes: np.ndarray | int | None = None,
            size_bytes: np.ndarray | int | None = None, mode: str = "incremental",
            prefix: str = "backup") -> pd.DataFrame:
    """A backups frame: one row per duration, started ``starts_s`` after T0 (default:
    hourly). Where ``censor_s`` is not NaN the backup is still InProgress when collected
    ``censor_s`` after its start."""
    n = len(durations)
    vol = np.broadcast_to(np.asarray(volume, dtype=object), (n,))
    start = T0 + pd.to_timedelta(np.arange(n) * 3600.0 if starts_s is None else starts_s,
                                 unit="s")
    cens = np.full(n, np.nan) if censor_s is None else np.asarray(censor_s, float)
    running = ~np.isnan(cens)
    finished = start + pd.to_timedelta(np.where(running, np.nan, durations), unit="s")
    end = start.max() + pd.Timedelta(days=1)
    collected = pd.Series(start + pd.to_timedelta(cens, unit="s")).where(running, end)
    df = pd.DataFrame({
        "cluster": cluster, "backup_target": "default", "volume": vol,
        "backup": [f"{prefix}-{v}-{i}" for i, v in enumerate(vol)],
        "recurring_job": job, "state": np.where(running, "InProgress", "Completed"),
        "requested_at": start, "started_at": start, "finished_at": finished,
        "size_bytes": size_bytes, "new_upload_bytes": upload_bytes, "backup_mode": mode,
        "lock_conflict": "none", "source": "test", "collected_at": collected.to_numpy()})
    return schema.coerce("backups", df)


def lognormal(rng: np.random.Generator, n: int, median: float = MEDIAN,
              sigma: float = SIGMA) -> np.ndarray:
    return np.round(median * np.exp(sigma * rng.standard_normal(n)), 3)


# --- the censored lognormal fit --------------------------------------------------------------

def test_known_lognormal_is_recovered_within_its_interval():
    rng = np.random.default_rng(2)
    fits = fit_durations(backups("pvc-a", lognormal(rng, 500)))
    fit = fits.for_volume("pvc-a")
    assert fit.source == "own_history" and fit.n_completed == 500 and fit.n_censored == 0
    assert fit.p50_ci[0] < MEDIAN < fit.p50_ci[1]
    assert fit.p95_ci[0] < P95 < fit.p95_ci[1]
    assert fit.p99_ci[0] < MEDIAN * math.exp(Z99 * SIGMA) < fit.p99_ci[1]
    assert fit.p50_ci[1] / fit.p50_ci[0] < 1.2  # 500 backups: a tight interval
    d = fit.as_duration()
    assert isinstance(d, Duration) and d.dist == "lognormal"
    assert d.median_s == pytest.approx(fit.p50_s) and d.p95_s == pytest.approx(fit.p95_s)
    assert d.sigma == pytest.approx(fit.sigma_log, rel=1e-9)


def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    # 300 fits of 60 backups: over seeds 1-20 coverage was 0.93-0.97 (p50) and
    # 0.92-0.96 (p95); at 30 backups the p95 interval under-covers a little (~0.93)
    rng = np.random.default_rng(7)
    k, n = 300, 60
    vols = np.repeat([f"pvc-{i:03d}" for i in range(k)], n)
    t = fit_durations(backups(vols, lognormal(rng, k * n))).table
    assert len(t) == k and (t["source"] == "own_history").all()
    for q, truth in (("p50", MEDIAN), ("p95", P95)):
        covered = ((t[f"{q}_lo_s"] < truth) & (truth < t[f"{q}_hi_s"])).mean()
        assert 0.9 <= covered <= 0.99, (q, covered)


def test_censoring_is_accounted_for_and_ignoring_it_biases_low():
    rng = np.random.default_rng(3)
    d = lognormal(rng, 500)
    cut = np.quantile(d, 0.7)  # the longest 30 % are still running at cut seconds
    censor = np.where(d > cut, cut, np.nan)
    frame = backups("pvc-a", d, censor_s=censor)
    fit = fit_durations(frame).for_volume("pvc-a")
    assert fit.n_censored == int((d > cut).sum()) == 150 and fit.n_completed == 350
    assert fit.p50_ci[0] < MEDIAN < fit.p50_ci[1]
    assert fit.p95_ci[0] < P95 < fit.p95_ci[1]
    naive = fit_durations(frame[frame["state"] == "Completed"]).for_volume("pvc-a")
    assert naive.p50_ci[1] < MEDIAN and naive.p95_ci[1] < P95
    assert naive.p95_s < 0.75 * P95
    # Kaplan-Meier, the nonparametric check, agrees with the censored fit
    t = fit_durations(frame).table.iloc[0]
    assert t["km_p50_s"] == pytest.approx(fit.p50_s, rel=0.1)


def test_error_backups_are_censored_at_their_last_sync_and_now_stands_in():
    rng = np.random.default_rng(9)
    frame = backups("pvc-a", lognormal(rng, 12))
    frame.loc[[0, 1], "state"] = "Error"
    frame.loc[[0, 1], "finished_at"] = pd.NaT
    frame.loc[0, "last_synced_at"] = frame.loc[0, "started_at"] + pd.Timedelta(minutes=5)
    frame.loc[1, "last_synced_at"] = frame.loc[1, "started_at"]  # failed at once: no info
    frame.loc[2, ["state", "finished_at", "collected_at"]] = ["InProgress", pd.NaT, pd.NaT]
    fits = fit_durations(frame)
    assert fits.for_volume("pvc-a").n_censored == 1 and fits.for_volume("pvc-a").n_completed == 9
    assert [(p.backup, p.field) for p in fits.problems] == [("backup-pvc-a-2", "collected_at")]
    obs = fits.observations.set_index("backup")
    assert obs.loc["backup-pvc-a-0", "duration_s"] == 300 and obs.loc["backup-pvc-a-0", "censored"]
    now = frame.loc[2, "started_at"] + pd.Timedelta(hours=2)
    fits = fit_durations(frame, now=now)
    assert fits.for_volume("pvc-a").n_censored == 2 and not fits.problems
    assert fits.observations.set_index("backup").loc["backup-pvc-a-2", "duration_s"] == 7200


def test_kaplan_meier_column_matches_scipy():
    rng = np.random.default_rng(5)
    d = lognormal(rng, 80)
    censor = np.where(rng.random(80) < 0.3, d * rng.uniform(0.2, 0.9, 80), np.nan)
    fits = fit_durations(backups("pvc-a", d, censor_s=censor))
    sf = fits.kaplan_meier("pvc-a").sf
    expected = sf.quantiles[np.argmax(sf.probabilities <= 0.5 + 1e-12)]
    assert fits.table.loc[0, "km_p50_s"] == pytest.approx(expected)


def test_kaplan_meier_counts_events_before_censored_rows_at_a_tied_duration():
    """Worked by hand: 600 s, 1200 s and 1800 s completed, two backups still running at
    1200 s. At 1200 s the event is counted with the two running ones still at risk (they
    have run as long): S = 4/5 x 3/4 = 0.6 > 0.5, so the median is the next event, 1800 s.
    Counting the censored rows first would give S(1200) = 4/5 x 1/2 = 0.4 and a median of
    1200 s. scipy's ``ecdf`` follows the same convention."""
    from scipy import stats

    d = np.array([600.0, 1200, 1200, 1200, 1800])
    censor = np.array([np.nan, np.nan, 1200, 1200, np.nan])
    fits = fit_durations(backups("pvc-a", d, censor_s=censor))
    assert fits.table.loc[0, "km_p50_s"] == pytest.approx(1800.0)
    sf = stats.ecdf(stats.CensoredData(uncensored=[600, 1200, 1800], right=[1200, 1200])).sf
    assert sf.probabilities.tolist() == pytest.approx([0.8, 0.6, 0.0])


# --- the fleet prior -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fleet_with_sizes():
    """120 volumes whose median follows upload (slope 0.9) and actual size (0.2), with a
    volume's own scatter around that line (sd 0.25); a new volume with 3 backups, one with
    only running backups, one with none."""
    rng = np.random.default_rng(11)
    k = 120
    up = np.exp(rng.uniform(np.log(GIB), np.log(100 * GIB), k + 2))
    act = np.exp(rng.uniform(np.log(10 * GIB), np.log(2000 * GIB), k + 3))
    mu = (math.log(60) + 0.9 * np.log(up / GIB) + 0.2 * np.log(act[:k + 2] / (100 * GIB))
          + 0.25 * rng.standard_normal(k + 2))
    frames = []
    for i in range(k):
        frames.append(backups(f"pvc-{i:03d}", np.exp(mu[i] + 0.3 * rng.standard_normal(20)),
                              upload_bytes=int(up[i])))
    frames.append(backups("pvc-new", np.exp(mu[k] + 0.3 * rng.standard_normal(3)),
                          upload_bytes=int(up[k])))
    frames.append(backups("pvc-running", np.full(2, 100.0), censor_s=np.full(2, 50.0)))
    volumes = schema.from_records("volumes", [
        {"cluster": "c1", "volume": v, "actual_size_bytes": int(a), "state": "attached",
         "robustness": "healthy", "recurring_jobs": "", "recurring_job_groups": "",
         "backup_target": "default", "lock_conflict": "none", "source": "test",
         "collected_at": T0}
        for v, a in zip([*(f"pvc-{i:03d}" for i in range(k)), "pvc-new", "pvc-running",
                         "pvc-empty"], act, strict=True)])
    truth = {"pvc-new": math.exp(mu[k])}
    return fit_durations(pd.concat(frames, ignore_index=True), volumes), truth


def test_regression_recovers_known_slopes(fleet_with_sizes):
    fits, _ = fleet_with_sizes
    reg = fits.regression.set_index("features")
    both = reg.loc["log_upload_bytes,log_actual_size_bytes"]
    assert both["n_volumes"] == 120
    assert both["log_upload_bytes"] == pytest.approx(0.9, abs=0.06)
    assert both["log_actual_size_bytes"] == pytest.approx(0.2, abs=0.06)
    assert both["residual_sd"] == pytest.approx(0.25, abs=0.06)
    assert both["sigma_within"] == pytest.approx(0.3, abs=0.03)
    assert set(fits.table["mode"]) == {"incremental"}


def test_sparse_volume_borrows_from_the_fleet_with_a_wider_interval(fleet_with_sizes):
    fits, truth = fleet_with_sizes
    new, rich = fits.for_volume("pvc-new"), fits.for_volume("pvc-000")
    assert new.source == "fleet_prior" and new.n_completed == 3
    assert rich.source == "own_history"
    def log_width(ci: tuple[float, float]) -> float:
        return math.log(ci[1] / ci[0])

    assert log_width(new.p50_ci) > 2 * log_width(rich.p50_ci)
    assert log_width(new.p95_ci) > 1.5 * log_width(rich.p95_ci)
    assert new.p50_ci[0] < truth["pvc-new"] < new.p50_ci[1]
    assert "shrunk toward the fleet regression" in new.note


def test_only_censored_or_no_backups_get_the_prediction_with_a_note(fleet_with_sizes):
    fits, _ = fleet_with_sizes
    running, empty = fits.for_volume("pvc-running"), fits.for_volume("pvc-empty")
    assert running.source == empty.source == "fleet_prior"
    assert running.n_completed == 0 and running.n_censored == 2
    assert "only censored" in running.note and "no backups" in empty.note
    assert math.isfinite(empty.p50_s) and empty.p50_ci[0] < empty.p50_s < empty.p50_ci[1]
    assert empty.as_duration().median_s == pytest.approx(empty.p50_s)


# --- modes, bad rows, deletions, queue delay -------------------------------------------------

def test_full_backups_are_fitted_apart():
    rng = np.random.default_rng(6)
    inc = backups("pvc-a", lognormal(rng, 40, median=100), upload_bytes=GIB,
                  size_bytes=50 * GIB)
    explicit = backups("pvc-a", lognormal(rng, 10, median=3000), mode="full", prefix="f",
                       starts_s=np.arange(10) * 7 * 86400.0 + 1800)
    whole = backups("pvc-a", lognormal(rng, 10, median=3000), upload_bytes=49 * GIB,
                    size_bytes=50 * GIB, prefix="w", starts_s=np.arange(10) * 86400.0 + 900)
    t = fit_durations(pd.concat([inc, explicit, whole], ignore_index=True)).table
    by_mode = t.set_index("mode")
    assert by_mode.loc["incremental", "n_completed"] == 40
    assert by_mode.loc["full", "n_completed"] == 20
    assert by_mode.loc["full", "p50_s"] > 10 * by_mode.loc["incremental", "p50_s"]


def test_bad_rows_are_reported_with_volume_and_backup():
    rng = np.random.default_rng(8)
    good = backups("pvc-a", lognormal(rng, 10))
    bad = backups("pvc-b", np.array([100.0, 100.0, 100.0, 100.0, 100.0]), prefix="bad")
    bad.loc[0, "finished_at"] = bad.loc[0, "started_at"] - pd.Timedelta(seconds=30)
    bad.loc[1, "started_at"] = pd.NaT  # requested_at stands in: a warning
    bad.loc[2, ["started_at", "requested_at"]] = pd.NaT
    bad.loc[3, "finished_at"] = pd.NaT  # Completed without an end
    bad.loc[4, "finished_at"] = bad.loc[4, "started_at"]  # zero duration
    fits = fit_durations(pd.concat([good, bad], ignore_index=True))
    found = {(p.volume, p.backup, p.field, p.severity) for p in fits.problems}
    assert ("pvc-b", "bad-pvc-b-0", "finished_at", "skipped") in found
    assert ("pvc-b", "bad-pvc-b-1", "started_at", "warning") in found
    assert ("pvc-b", "bad-pvc-b-2", "started_at", "skipped") in found
    assert ("pvc-b", "bad-pvc-b-3", "finished_at", "skipped") in found
    assert ("pvc-b", "bad-pvc-b-4", "finished_at", "skipped") in found
    assert not any(p.volume == "pvc-a" for p in fits.problems)
    assert "-30 s" in next(p.reason for p in fits.problems if p.backup == "bad-pvc-b-0")
    assert fits.for_volume("pvc-b").n_completed == 1  # only the one with a stand-in start
    assert len(fits.problems_frame()) == len(fits.problems)


def test_deletion_prior_scales_with_size_and_backups():
    prior = DeletionPrior(base_s=10, per_gib_s=1, per_backup_s=2, p95_ratio=3)
    b = backups("pvc-a", np.full(4, 60.0))
    bv = schema.from_records("backup_volumes", [
        {"cluster": "c1", "backup_target": "default", "backup_volume": "pvc-a-1",
         "volume": "pvc-a", "size_bytes": 100 * GIB, "source": "test", "collected_at": T0}])
    fits = fit_durations(b, backup_volumes=bv, deletion_prior=prior)
    row = fits.deletions.set_index("volume").loc["pvc-a"]
    assert row["n_backups"] == 4 and row["source"] == "prior"
    assert row["p50_s"] == pytest.approx(10 + 100 + 2 * 4)
    assert "assumption" in row["note"]
    d = fits.deletion_duration("pvc-a")
    assert d.median_s == pytest.approx(118) and d.p95_s == pytest.approx(354)
    # the prior's doubt travels with it, into the risk model's draws
    assert row["size_from"] == "backup_volume"
    assert d.median_sd == prior.median_sd == pytest.approx(math.log(2))


def test_deletion_size_falls_back_to_the_nominal_size():
    # no BackupVolume, no actual size, no status.size: the backups' volumeSize (an upper
    # bound) sizes the prior, and says so; with nothing at all the size counts as 0
    prior = DeletionPrior(base_s=10, per_gib_s=1, per_backup_s=0)
    b = pd.concat([backups("pvc-a", np.full(3, 60.0)), backups("pvc-b", np.full(3, 60.0))],
                  ignore_index=True)
    b["volume_size_bytes"] = pd.array([50 * GIB] * 3 + [None] * 3, dtype="Int64")
    d = fit_durations(b, deletion_prior=prior).deletions.set_index("volume")
    assert d.loc["pvc-a", "size_from"] == "nominal"
    assert d.loc["pvc-a", "p50_s"] == pytest.approx(60)
    assert d.loc["pvc-b", "size_from"] == "unknown"
    assert d.loc["pvc-b", "p50_s"] == pytest.approx(10)


def test_fitted_medians_carry_their_standard_error():
    rng = np.random.default_rng(7)
    b = pd.concat([backups("few", lognormal(rng, 10)), backups("many", lognormal(rng, 400))],
                  ignore_index=True)
    fits = fit_durations(b)
    d = fits.backup_durations()
    # the log median's standard error is about sigma / sqrt(n)
    assert d["many"].median_sd == pytest.approx(SIGMA / math.sqrt(400), rel=0.25)
    assert d["few"].median_sd > 3 * d["many"].median_sd


def test_queue_delay_follows_the_cron_slot_and_the_run_order():
    # An hourly job, concurrency 1, volumes of 20 minutes one after another. pvc-a is
    # skipped in the first run (detached), so the second run starts with a volume the
    # first did not have: only the idle job at 01:00 says a new run began. The third
    # run starts 10 minutes late.
    runs = [[("pvc-b", 5), ("pvc-c", 1205)],
            [("pvc-a", 3605), ("pvc-b", 4805), ("pvc-c", 6005)],
            [("pvc-a", 7805), ("pvc-b", 9005), ("pvc-c", 10205)]]
    vols, starts = zip(*[row for run in runs for row in run], strict=True)
    b = backups(np.array(vols), np.full(8, 1190.0), starts_s=np.array(starts, float),
                job="hourly")
    jobs = schema.from_records("jobs", [
        {"cluster": "c1", "recurring_job": "hourly", "task": "backup", "cron": "0 * * * *",
         "source": "test", "collected_at": T0},
        {"cluster": "c1", "recurring_job": "weird", "task": "backup", "cron": "@every 1h",
         "source": "test", "collected_at": T0}])
    weird = backups("pvc-a", np.full(2, 60.0), job="weird", prefix="w")
    fits = fit_durations(pd.concat([b, weird], ignore_index=True), jobs=jobs)
    per = fits.queue_delay_backups.sort_values("started_at")
    assert list(per["run_rank"]) == [1, 2, 1, 2, 3, 1, 2, 3]
    assert list(per["queue_delay_s"]) == [5, 1205, 5, 1205, 2405, 605, 1805, 3005]
    slots = T0 + pd.to_timedelta([0, 0, 1, 1, 1, 2, 2, 2], unit="h")
    assert (per["slot"].to_numpy() == slots.to_numpy()).all()
    job = fits.queue_delay.set_index("recurring_job").loc["hourly"]
    assert job["n_runs"] == 3 and job["n_backups"] == 8 and job["p50_s"] == 1205
    by_vol = fits.queue_delay_by_volume.set_index("volume")["mean_rank"]
    assert by_vol.to_dict() == pytest.approx({"pvc-a": 1, "pvc-b": 5 / 3, "pvc-c": 8 / 3})
    assert any(p.field == "recurring_job" and "@every" in p.reason for p in fits.problems)


# --- the sample fleet (the simulator keeps the ground truth) ---------------------------------

@pytest.fixture(scope="module")
def sample_fit():
    fleet, result = sample.simulate_sample()
    frames = load_document(sample.to_kubectl_list(fleet, result), source="sample",
                           cluster="sample",
                           collected_at=pd.Timestamp(sample.COLLECTED_AT)).frames
    fits = fit_durations(frames["backups"], frames["volumes"], frames["backup_volumes"],
                         frames["jobs"])
    return fleet, result, frames, fits


def test_the_model_columns_are_all_a_fit_reads(sample_fit):
    # `advisor recommend --store` reads only these columns of the backups
    _, _, frames, fits = sample_fit
    some = fit_durations(frames["backups"][list(MODEL_BACKUP_COLUMNS)], frames["volumes"],
                         frames["backup_volumes"], frames["jobs"])
    pd.testing.assert_frame_equal(some.table, fits.table)
    pd.testing.assert_frame_equal(some.deletions, fits.deletions)
    pd.testing.assert_frame_equal(some.queue_delay_by_volume, fits.queue_delay_by_volume)


def test_sample_every_volume_gets_a_fit_near_the_truth(sample_fit):
    fleet, _, frames, fits = sample_fit
    t = fits.table[fits.table["mode"] == "incremental"].set_index("volume")
    assert set(t.index) == set(frames["volumes"]["volume"])
    assert t["p50_s"].notna().all()
    truth = pd.Series({v.name: v.backup_duration.median_s for v in fleet.volumes})
    ratio = t["p50_s"] / truth[t.index]
    assert ((ratio > 1 / 1.5) & (ratio < 1.5)).mean() >= 0.95
    own = t[t["source"] == "own_history"]
    assert len(own) == 59
    assert ((own["p50_s"] / truth[own.index]).between(0.9, 1.1)).mean() >= 0.95
    rich = own[own["n_completed"] >= 100]  # KM medians of 10 weekly backups are noisy
    assert len(rich) >= 40
    assert (rich["km_p50_s"] / rich["p50_s"]).between(0.9, 1.1).all()
    assert t.loc["pvc-dr-orders", "source"] == "fleet_prior"  # a DR volume: no backups
    durations = fits.backup_durations()
    assert set(durations) == set(t.index)
    assert durations["pvc-app-00"].sample(np.random.default_rng(0), 3).shape == (3,)
    assert "<table" in fits._repr_html_()


def test_sample_queue_delay_matches_the_simulated_runs(sample_fit):
    _, result, frames, fits = sample_fit
    per = fits.queue_delay_backups.merge(frames["backups"][["backup", "requested_at"]],
                                         on="backup")
    runs = result.runs.assign(start=result.runs["start"].dt.floor("s")
                              ).sort_values(["recurring_job", "start"])
    matched = 0
    for job, r in runs.groupby("recurring_job"):
        q = per[per["recurring_job"] == job]
        i = np.searchsorted(r["start"].to_numpy(), q["requested_at"].to_numpy(), "right") - 1
        matched += int((r["slot"].to_numpy()[i] == q["slot"].to_numpy()).sum())
    assert matched / len(per) >= 0.99
    by_job = fits.queue_delay.set_index("recurring_job")
    assert by_job.loc["hourly", "n_runs"] == (result.runs["recurring_job"] == "hourly").sum()
    assert by_job.loc["hourly", "p50_s"] > 600  # 40 volumes, 10 at a time: a long queue
    assert by_job.loc["batch", "max_s"] < 60


def test_sample_deletions_come_from_the_prior(sample_fit):
    _, _, frames, fits = sample_fit
    d = fits.deletions
    assert len(d) == len(frames["backup_volumes"]) == 59
    assert (d["source"] == "prior").all() and (d["p95_s"] > d["p50_s"]).all()
    assert (d["n_backups"] > 0).all()


def test_the_preferred_fit_is_the_incremental_one_else_the_other():
    """One rule for every place that shows a volume's duration: its incremental fit (a
    recurring backup is incremental but for the first), else its full one."""
    from advisor.model.durations import DurationFits

    table = pd.DataFrame({
        "cluster": ["a", "a", "a", "b"], "volume": ["v1", "v1", "v2", "v1"],
        "mode": ["full", "incremental", "full", "incremental"],
        "p99_s": [900.0, 300.0, 700.0, 100.0]})
    empty = pd.DataFrame()
    fits = DurationFits(table, empty, empty, empty, empty, empty, empty, ())
    got = fits.preferred("a").set_index("volume")["p99_s"].to_dict()
    assert got == {"v1": 300.0, "v2": 700.0}
    assert fits.preferred("b")["p99_s"].tolist() == [100.0]
    # without a cluster: one row per cluster and volume (v1 is in both)
    both = fits.preferred().set_index(["cluster", "volume"])["p99_s"].to_dict()
    assert both == {("a", "v1"): 300.0, ("a", "v2"): 700.0, ("b", "v1"): 100.0}
