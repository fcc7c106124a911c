"""The sample fleet holds the mistakes it promises, in its ground truth and in its CRs."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from advisor.cron import parse
from advisor.longhorn import volume_jobs
from advisor.sample import fleet as sample
from advisor.sources.files import load_document


@pytest.fixture(scope="module")
def simulated():
    return sample.simulate_sample()


def test_sixty_volumes_from_1_gib_to_2_tib_over_eight_weeks(simulated):
    fleet, result = simulated
    sizes = [v.size_bytes for v in fleet.volumes]
    assert len(fleet.volumes) == 60
    assert min(sizes) <= 2 * 2**30 and max(sizes) == 2048 * 2**30
    b = result.frames["backups"]
    span = b["requested_at"].max() - b["requested_at"].min()
    assert span > timedelta(weeks=8) - timedelta(days=1)


def test_backup_jobs_fire_at_minute_zero_except_the_healthy_one():
    backup_jobs = [j for j in sample.JOBS if j.task == "backup"]
    at_zero = [j.name for j in backup_jobs if parse(j.cron).minute == 1]  # bit 0 only
    assert set(at_zero) == {"hourly", "daily", "hourly-db", "weekly", "monthly"}


def test_hourly_and_daily_meet_at_midnight_on_the_default_group(simulated):
    fleet, result = simulated
    groups = {j.name: j.groups for j in fleet.jobs}
    app = next(v for v in fleet.volumes if v.name == "pvc-app-10")
    jobs = {m.recurring_job for m in volume_jobs(app.name, app.jobs, app.groups, groups)}
    assert {"hourly", "daily"} <= jobs
    b = result.frames["backups"]
    blocked = b[(b["lock_conflict"] == "delete_blocked") & (b["volume"].str.startswith(
        "pvc-app"))]
    assert len(blocked) > 0


def test_the_forty_volume_hourly_run_outlasts_its_interval(simulated):
    _, result = simulated
    runs = result.runs[result.runs["recurring_job"] == "hourly"]
    assert runs["volumes"].iloc[0] == 40
    assert ((runs["end"] - runs["start"]) > pd.Timedelta(hours=1)).mean() > 0.5
    assert (runs["late_s"] > 0).sum() > 0
    assert (result.skipped_slots["recurring_job"] == "hourly").sum() > 0


def test_the_largest_db_volumes_take_over_an_hour(simulated):
    _, result = simulated
    b = result.frames["backups"]
    db = b[(b["recurring_job"] == "hourly-db") & b["duration_s"].notna()]
    slow = db.groupby("volume")["duration_s"].median()
    assert (slow > 3600).sum() >= 2
    assert (result.skipped_slots["recurring_job"] == "hourly-db").sum() > 0


def test_weekly_and_monthly_meet_on_sunday_the_first(simulated):
    _, result = simulated
    runs = result.runs
    first = pd.Timestamp("2026-11-01T03:00:00Z")
    assert first.day_name() == "Sunday"
    met = runs[(runs["slot"] == first) & runs["recurring_job"].isin(["weekly", "monthly"])]
    assert len(met) == 2  # both jobs ran on the archive volumes at once


def test_the_dr_volume_meets_deletions_of_its_source(simulated):
    _, result = simulated
    ev = result.events
    blocked = ev[ev["conflict"] == "restore_blocked"]
    assert len(blocked) > 0 and set(blocked["volume"]) == {"pvc-dr-orders"}


def test_the_healthy_job_has_no_conflict_or_lateness(simulated):
    _, result = simulated
    b = result.frames["backups"]
    batch = b[b["recurring_job"] == "batch"]
    assert len(batch) == 56 * 4 and (batch["lock_conflict"] == "none").all()
    runs = result.runs[result.runs["recurring_job"] == "batch"]
    assert (runs["late_s"] == 0).all()


def test_the_kubectl_list_reads_back_without_loss(simulated):
    fleet, result = simulated
    doc = sample.to_kubectl_list(fleet, result)
    loaded = load_document(doc, source="sample", cluster="sample")
    assert not loaded.problems
    b, truth = loaded.frames["backups"], result.frames["backups"]
    assert len(b) == len(truth)
    assert (b["lock_conflict"].value_counts().sort_index()
            == truth["lock_conflict"].value_counts().sort_index()).all()
    assert (loaded.frames["volumes"]["lock_conflict"] == "restore_blocked").sum() == 1
    merged = b.merge(truth, on="backup", suffixes=("", "_truth"))
    same = (merged["duration_s"] - merged["duration_s_truth"]).abs().dropna() <= 1
    assert same.all()  # Longhorn's times are whole seconds
