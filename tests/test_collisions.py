"""Structural findings of ``advisor check``, from manifests read by the real loader."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
import yaml

from advisor.cron import parse, zone
from advisor.longhorn import BACKUPSTORE_TASKS, TASKS
from advisor.model.collisions import Finding, structural_findings
from advisor.model.fire_pairs import fires_at as _fires_at
from advisor.model.fleet import Duration
from advisor.schedules import fire_times
from advisor.sources.files import load_files

GIB, TIB = 2**30, 2**40
HORIZON_START = date(2027, 1, 4)  # the default horizon: 366 days from this Monday


def job(name: str, cron: str, *, task: str = "backup", groups: tuple[str, ...] = ("default",),
        concurrency: int | None = None, parameters: dict | None = None) -> dict:
    spec: dict = {"name": name, "cron": cron, "task": task, "groups": list(groups),
                  "retain": 3, "labels": {}}
    if concurrency is not None:
        spec["concurrency"] = concurrency
    if parameters:
        spec["parameters"] = parameters
    return {"apiVersion": "longhorn.io/v1beta2", "kind": "RecurringJob",
            "metadata": {"name": name, "namespace": "longhorn-system"}, "spec": spec}


def volume(name: str, size_bytes: int = 10 * GIB, *, groups: tuple[str, ...] = (),
           jobs: tuple[str, ...] = ()) -> dict:
    labels = {f"recurring-job-group.longhorn.io/{g}": "enabled" for g in groups}
    labels |= {f"recurring-job.longhorn.io/{j}": "enabled" for j in jobs}
    return {"apiVersion": "longhorn.io/v1beta2", "kind": "Volume",
            "metadata": {"name": name, "namespace": "longhorn-system", "labels": labels},
            "spec": {"size": str(size_bytes), "numberOfReplicas": 3}}


def dr_volume(name: str) -> dict:
    """A DR (standby) volume without labels: in ``default``, but skipped by every run."""
    v = volume(name)
    v["spec"]["standby"] = True
    v["status"] = {"isStandby": True, "restoreRequired": True, "state": "attached"}
    return v


def load(tmp_path: Path, *objects: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The jobs and volumes frames, read from a multi-document YAML file as the CLI does."""
    path = tmp_path / "proposed.yaml"
    path.write_text("# proposed RecurringJobs\n" + yaml.safe_dump_all(objects, sort_keys=False))
    result = load_files([path])
    assert not result.problems, result.problems
    return result.frames["jobs"], result.frames["volumes"]


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


def horizon_days(start: date, days: int = 366) -> list[date]:
    return [start + timedelta(days=i) for i in range(days)]


@pytest.mark.parametrize("start", [None, "2026-01-01", "2031-06-15"])
def test_weekly_and_monthly_on_default_meet_when_the_first_is_a_sunday(tmp_path, start):
    jobs, _ = load(tmp_path, job("weekly-backup", "0 0 * * 0"),
                   job("monthly-backup", "0 0 1 * *"))
    first = pd.Timestamp(start or HORIZON_START).date()
    first += timedelta(days=(7 - first.weekday()) % 7)  # the Monday on or after start
    days = horizon_days(first)
    truth = [d for d in days if d.day == 1 and d.weekday() == 6]
    monthly_runs = sum(d.day == 1 for d in days)
    weekly_runs = sum(d.weekday() == 6 for d in days)

    [f] = structural_findings(jobs, start=start)

    assert f.kind == "simultaneous_fire" and f.severity == "high"
    assert f.jobs == ("monthly-backup", "weekly-backup") and f.groups == ("default",)
    assert f.details["count"] == len(truth)
    assert [t[:10] for t in f.details["times"]] == [d.isoformat() for d in truth]
    assert all(t.endswith("T00:00:00+00:00") for t in f.details["times"])
    assert f.details["p_per_run_by_job"] == {"monthly-backup": len(truth) / monthly_runs,
                                             "weekly-backup": len(truth) / weekly_runs}
    assert f.p_per_run == len(truth) / monthly_runs
    assert f.expected_per_week == pytest.approx(len(truth) / (366 / 7))
    # over the 28-year calendar cycle: the 1st is a Sunday 12/7 times a year
    cycle = horizon_days(first, (pd.Timestamp(first) + pd.DateOffset(years=28)
                                 - pd.Timestamp(first)).days)
    per_year = sum(d.day == 1 and d.weekday() == 6 for d in cycle) / (len(cycle) / 365.25)
    assert f.details["long_run_per_year"] == pytest.approx(per_year)
    assert per_year == pytest.approx(12 / 7, rel=0.01)
    for text in ("weekly-backup (0 0 * * 0", "monthly-backup (0 0 1 * *", "group(s) default",
                 f"{len(truth)} of monthly-backup's {monthly_runs} runs",
                 f"about {per_year:.2g} times a year", truth[0].isoformat()):
        assert text in f.explanation
    assert f.to_dict()["p_per_run"] == f.p_per_run


def test_hourly_and_daily_at_minute_zero_meet_every_day(tmp_path):
    jobs, _ = load(tmp_path, job("hourly", "0 * * * *", groups=("critical",)),
                   job("daily", "0 0 * * *", groups=("critical", "default")))

    [f] = structural_findings(jobs)

    assert f.kind == "simultaneous_fire" and f.groups == ("critical",)
    assert f.details["count"] == 366
    assert f.expected_per_week == pytest.approx(7.0)
    assert f.details["p_per_run_by_job"] == {"daily": 1.0, "hourly": 366 / (366 * 24)}
    assert f.p_per_run == 1.0
    # the horizon opens on the default Monday, its 00:00 included
    assert f.details["times"][:2] == ["2027-01-04T00:00:00+00:00", "2027-01-05T00:00:00+00:00"]
    assert "every day" in f.explanation and "7 times a week" in f.explanation


@pytest.mark.parametrize("task", sorted(TASKS - BACKUPSTORE_TASKS))
def test_a_job_that_never_touches_the_backupstore_is_never_a_lock_risk(tmp_path, task):
    jobs, volumes = load(tmp_path, job("nightly-snap", "0 0 * * *", task=task),
                         job("nightly-backup", "0 0 * * *"),
                         job("nearby-snap", "2 0 * * *", task=task),
                         volume("pvc-a", 2 * TIB))

    assert structural_findings(jobs) == []
    assert structural_findings(jobs, volumes, prior=lambda size: Duration(1800)) == []


def test_the_same_two_jobs_as_backups_are_a_risk(tmp_path):
    """The control of the test above: only the task differs."""
    jobs, _ = load(tmp_path, job("nightly-snap", "0 0 * * *", task="backup-force-create"),
                   job("nightly-backup", "0 0 * * *"))
    assert [f.kind for f in structural_findings(jobs)] == ["simultaneous_fire"]


def test_jobs_on_disjoint_groups_do_not_meet_and_unlabelled_volumes_are_default(tmp_path):
    jobs, volumes = load(
        tmp_path,
        job("db-daily", "0 0 * * *", groups=("db",)),
        job("web-daily", "0 0 * * *", groups=("web",)),
        job("default-daily", "0 0 * * *", groups=("default",)),
        job("default-hourly", "0 * * * *", groups=("default",)),
        volume("pvc-db", groups=("db",)), volume("pvc-web", groups=("web",)),
        volume("pvc-own-job", jobs=("db-daily",)),  # a job label: not in default
        volume("pvc-plain"), dr_volume("pvc-dr"))  # a DR volume is skipped by every run

    findings = structural_findings(jobs, volumes)

    assert [(f.kind, f.jobs) for f in findings] == [
        ("simultaneous_fire", ("default-daily", "default-hourly"))]
    assert findings[0].volumes == ("pvc-plain",)
    assert findings[0].to_dict()["volumes"] == ["pvc-plain"]
    assert "groups" not in findings[0].to_dict()


def test_without_volumes_jobs_on_disjoint_groups_do_not_meet(tmp_path):
    jobs, _ = load(tmp_path, job("a", "0 0 * * *", groups=("db",)),
                   job("b", "0 0 * * *", groups=("web",)))
    assert structural_findings(jobs) == []


def test_a_system_backup_for_every_volume_meets_any_backup_job(tmp_path):
    jobs, _ = load(tmp_path, job("db", "0 0 * * *", groups=("db",)),
                   job("system", "0 0 * * *", task="system-backup", groups=(),
                       parameters={"volume-backup-policy": "always"}))
    [f] = structural_findings(jobs)
    assert f.jobs == ("db", "system") and f.groups == ("db",)


def lognormal_prior(size: int) -> Duration:
    """5 h median, 8 h p95 for 2 TiB; 1 h / 1.5 h for anything smaller."""
    if size >= 2 * TIB:
        return Duration(5 * 3600, 8 * 3600, "lognormal")
    return Duration(3600, 5400, "lognormal")


def test_an_interval_shorter_than_the_prior_for_a_2tib_volume_is_flagged(tmp_path):
    jobs, volumes = load(tmp_path, job("six-hourly", "0 */6 * * *", groups=("big",)),
                         job("six-hourly-small", "0 */6 * * *", groups=("small",)),
                         volume("pvc-big", 2 * TIB, groups=("big",)),
                         volume("pvc-small", 100 * GIB, groups=("small",)))

    [f] = structural_findings(jobs, volumes, prior=lognormal_prior)

    assert f.kind == "interval_shorter_than_duration"
    assert f.jobs == ("six-hourly",) and f.volumes == ("pvc-big",)
    d = f.details
    assert d["min_interval_s"] == 6 * 3600 and d["largest_size_bytes"] == 2 * TIB
    assert d["volume_median_s"] == 5 * 3600 and d["volume_p95_s"] == 8 * 3600
    sigma = math.log(8 / 5) / NormalDist().inv_cdf(0.95)
    p_outlast = 1 - NormalDist().cdf(math.log(6 / 5) / sigma)
    assert f.p_per_run == pytest.approx(p_outlast, rel=1e-9)
    assert f.expected_per_week == pytest.approx(p_outlast * 28)  # 4 runs a day
    for text in ("pvc-big (2.0 TiB)", "6 h", "5 h", "p95 8 h", f"{p_outlast:.1%}"):
        assert text in f.explanation


def test_the_share_of_runs_that_outlast_weighs_each_gap_to_the_next_slot(tmp_path):
    jobs, volumes = load(tmp_path, job("twice-daily", "0 0,6 * * *"),
                         volume("pvc-big", 2 * TIB))

    [f] = structural_findings(jobs, volumes, prior=lognormal_prior)

    sigma = math.log(8 / 5) / NormalDist().inv_cdf(0.95)
    outlast = [1 - NormalDist().cdf(math.log(h / 5) / sigma) for h in (6, 18)]
    # 366 gaps 00:00 -> 06:00 of 6 h, 365 gaps 06:00 -> 00:00 of 18 h in the horizon
    assert f.p_per_run == pytest.approx((366 * outlast[0] + 365 * outlast[1]) / 731,
                                        rel=1e-9)
    assert f.details["min_interval_s"] == 6 * 3600


@pytest.mark.parametrize(("concurrency", "flagged"), [(10, True), (40, False)])
def test_a_run_of_40_volumes_10_at_a_time_outlasts_an_hourly_interval(tmp_path, concurrency,
                                                                      flagged):
    jobs, volumes = load(tmp_path, job("hourly", "0 * * * *", groups=("fleet",),
                                       concurrency=concurrency),
                         *(volume(f"pvc-{i:02d}", 50 * GIB, groups=("fleet",))
                           for i in range(40)))

    findings = structural_findings(jobs, volumes, prior=lambda size: Duration(20 * 60))

    if not flagged:  # 40 at a time: one 20-minute round
        assert findings == []
        return
    [f] = findings
    assert f.kind == "interval_shorter_than_duration" and len(f.volumes) == 40
    assert f.details["makespan_s"] == 80 * 60 and f.details["rounds"] == 4
    assert f.p_per_run == 1.0 and f.expected_per_week == pytest.approx(7 * 24)
    for text in ("40 volume(s), 10 at a time (4 round(s))", "80 min",
                 "shortest interval is 60 min"):
        assert text in f.explanation


def test_a_retention_deletion_falls_during_another_jobs_backup(tmp_path):
    jobs, volumes = load(tmp_path, job("hourly", "0 * * * *"), job("daily", "30 0 * * *"),
                         volume("pvc-a", 100 * GIB))

    findings = structural_findings(jobs, volumes, prior=lambda size: Duration(40 * 60))

    by_jobs = {f.jobs: f for f in of_kind(findings, "retention_deletion_meets_backup")}
    assert [f.kind for f in findings] == ["retention_deletion_meets_backup"] * 2
    # hourly's 00:40 deletion falls in daily's 00:30-01:10 backup: 1 run in 24
    assert by_jobs[("hourly", "daily")].p_per_run == pytest.approx(1 / 24)
    # daily's 01:10 deletion falls in hourly's 01:00-01:40 backup: every run
    assert by_jobs[("daily", "hourly")].p_per_run == pytest.approx(1.0)
    assert by_jobs[("daily", "hourly")].expected_per_week == pytest.approx(7.0)


def test_same_minute_backups_with_random_durations_block_one_deletion_in_two(tmp_path):
    jobs, volumes = load(tmp_path, job("hourly", "0 * * * *"), job("daily", "0 0 * * *"),
                         volume("pvc-a", 100 * GIB))
    prior = lambda size: Duration(600, 1200, "lognormal")  # noqa: E731

    findings = structural_findings(jobs, volumes, prior=prior)

    daily = [f for f in of_kind(findings, "retention_deletion_meets_backup")
             if f.jobs == ("daily", "hourly")]
    assert daily[0].p_per_run == pytest.approx(0.5, abs=1e-6)  # P(D_daily < D_hourly)


def test_a_deletion_meeting_a_backup_that_started_20_minutes_later(tmp_path):
    """Checked against a simulation: an hourly backup ends (and its deletion starts) while
    the 00:20 daily backup runs; mostly the 00:00 one, rarely one before or after it."""
    jobs, volumes = load(tmp_path, job("hourly", "0 * * * *"), job("daily", "20 0 * * *"),
                         volume("pvc-a", 100 * GIB))
    d = Duration(900, 2400, "lognormal")

    findings = structural_findings(jobs, volumes, prior=lambda size: d)

    [f] = [f for f in findings if f.jobs == ("hourly", "daily")]
    rng = np.random.default_rng(1)
    d_hourly, d_daily = d.sample(rng, 400_000), d.sample(rng, 400_000)
    # the daily backup starts x after an hourly one: x = 20 min, 80 min, -40 min, ...
    truth = sum(np.mean((d_hourly >= x) & (d_hourly < x + d_daily))
                for x in (20 * 60 + 3600 * k for k in range(-3, 4))) / 24
    assert f.p_per_run == pytest.approx(truth, abs=3e-4)


@pytest.mark.parametrize("cron", ["0 0 1 * *", "0 0 * * 0", "0 0 */2 * 1", "30 2 * 2 sun",
                                  "0 */6 13 * 5", "15 4 29 2 *", "0 0 1-7 * 1"])
def test_the_long_run_predicate_agrees_with_robfigs_fire_times(cron):

    start, end = pd.Timestamp("2027-01-01", tz="UTC"), pd.Timestamp("2033-01-01", tz="UTC")
    fires = fire_times(cron, start - pd.Timedelta(seconds=1), end).astype(np.int64)
    hours = np.arange(start.value // 10**9, end.value // 10**9, 3600 // 4)  # every 15 min
    assert np.array_equal(_fires_at(parse(cron), hours, zone(None)), np.isin(hours, fires))


def test_an_invalid_cron_is_a_finding_with_robfigs_reason(tmp_path):
    jobs, _ = load(tmp_path, job("sunday", "0 0 * * 7"), job("daily", "0 0 * * *"),
                   job("hourly", "0 * * * *"))

    findings = structural_findings(jobs)

    assert [f.kind for f in findings] == ["invalid_cron", "simultaneous_fire"]
    bad = findings[0]
    assert bad.jobs == ("sunday",) and bad.severity == "error" and bad.p_per_run is None
    assert bad.details["reason"] == "end of range (7) above maximum (6): 7"
    assert bad.details["field"] == "day-of-week"
    assert "end of range (7) above maximum (6): 7" in bad.explanation
    assert "sunday" not in findings[1].jobs


def test_an_every_schedule_has_no_known_phase_so_no_same_minute_finding(tmp_path):
    jobs, _ = load(tmp_path, job("every", "@every 1h"), job("hourly", "0 * * * *"))
    assert structural_findings(jobs) == []


def test_near_fires_are_reported_apart_from_same_minute_ones(tmp_path):
    jobs, _ = load(tmp_path, job("a", "0 2 * * *"), job("b", "3 2 * * *"),
                   job("c", "10 2 * * *"))

    findings = structural_findings(jobs)

    assert [(f.kind, f.jobs) for f in findings] == [("near_fire", ("a", "b"))]
    assert findings[0].details["count"] == 366 and findings[0].severity == "low"


def test_the_json_contract(tmp_path):
    jobs, _ = load(tmp_path, job("weekly", "0 0 * * 0"), job("monthly", "0 0 1 * *"),
                   job("broken", "61 * * * *"))
    for f in structural_findings(jobs):
        d = json.loads(json.dumps(f.to_dict()))
        assert {"kind", "severity", "jobs", "groups", "p_per_run", "expected_per_week",
                "explanation"} <= set(d)
        assert d["jobs"] == list(f.jobs) and d["explanation"] == f.explanation
