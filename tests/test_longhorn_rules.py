"""Longhorn's job membership rules and version behaviours."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from advisor import longhorn, schema
from advisor.longhorn import Membership, behaviour, job_volumes, skip_reason, volume_jobs

JOBS = {"hourly": "default", "daily": "default,critical", "weekly": "critical",
        "adhoc": ""}


def test_a_volume_without_labels_is_in_the_default_group():
    got = volume_jobs("v", "", "", JOBS)
    assert got == [Membership("v", "hourly", "default group"),
                   Membership("v", "daily", "default group")]


def test_labels_replace_the_default_group():
    assert volume_jobs("v", "adhoc", "", JOBS) == [Membership("v", "adhoc", "job label")]
    assert volume_jobs("v", [], ["critical"], JOBS) == [
        Membership("v", "daily", "group critical"), Membership("v", "weekly", "group critical")]
    # a label for a job that does not exist runs nothing
    assert volume_jobs("v", "missing", "", JOBS) == []


def test_skipped_volumes():
    assert skip_reason({"standby": True}) == "DR (standby) volume"
    assert skip_reason({"restore_required": True}) == "restoring"
    assert skip_reason({"robustness": "faulted"}) == "faulted"
    assert "detached" in skip_reason({"state": "detached"})
    assert skip_reason({"state": "detached"}, allow_detached=True) is None
    assert skip_reason({"state": "attached", "robustness": "healthy"}) is None


def test_job_volumes_over_frames():
    jobs = schema.from_records("jobs", [
        {"cluster": "c", "recurring_job": j, "task": t, "cron": "0 * * * *", "groups": g,
         "parameters": p, "source": "t", "collected_at": "2026-01-01T00:00:00Z"}
        for j, t, g, p in [("hourly", "backup", "default", "{}"),
                           ("snap", "snapshot", "default", "{}"),
                           ("sys", "system-backup", "", json.dumps(
                               {"volume-backup-policy": "always"}))]])
    volumes = schema.from_records("volumes", [
        {"cluster": "c", "volume": v, "state": s, "robustness": "healthy", "standby": sb,
         "recurring_jobs": "", "recurring_job_groups": "", "backup_target": "default",
         "lock_conflict": "none", "source": "t", "collected_at": "2026-01-01T00:00:00Z"}
        for v, s, sb in [("a", "attached", False), ("dr", "attached", True),
                         ("off", "detached", False)]])
    m = job_volumes(jobs, volumes)
    pairs = {(r.volume, r.recurring_job): r for r in m.itertuples()}
    assert set(pairs) == {("a", "hourly"), ("a", "snap"), ("a", "sys"), ("dr", "hourly"),
                          ("dr", "snap"), ("off", "hourly"), ("off", "snap"), ("off", "sys")}
    assert pairs[("a", "hourly")].touches_backupstore
    assert not pairs[("a", "snap")].touches_backupstore
    assert pairs[("dr", "hourly")].skipped == "DR (standby) volume"
    assert pd.isna(pairs[("a", "hourly")].skipped)
    assert pairs[("a", "sys")].via == "system backup"


@pytest.mark.parametrize(("version", "mode", "retry"), [
    ("1.6", "fail", 0.005), ("v1.7.2", "fail", 0.005), ("1.8", "wait", 60.0),
    ("1.12.0", "wait", 60.0)])
def test_behaviour_by_version(version, mode, retry):
    b = behaviour(version)
    assert b.backup_meets_deletion == mode and b.deletion_retry_min_s == retry
    assert b.deleting_state == (mode == "wait")
    assert b.lock_message_final_period == (version != "1.12.0")


def test_default_is_newest_and_bad_versions():
    assert behaviour().backup_meets_deletion == "wait" and behaviour().name == ">= 1.8"
    with pytest.raises(ValueError, match=r"not like 1\.8"):
        behaviour("latest")
    assert longhorn.BACKUPSTORE_TASKS <= longhorn.TASKS
