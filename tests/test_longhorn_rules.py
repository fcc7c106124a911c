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


@pytest.mark.parametrize(("version", "mode", "retry", "period"), [
    ("1.6", "fail", 0.005, True), ("v1.7.2", "fail", 0.005, True),
    ("1.7", "fail", 0.005, True), ("1.8", "wait", 60.0, True), ("1.8.0", "wait", 60.0, True),
    # the lock message loses its final period after 1.10 (backupstore 53b736c, shipped
    # from 1.10.2: at this minor-level reading, 1.10 keeps it and 1.11 has none)
    ("1.10", "wait", 60.0, True), ("v1.10.0", "wait", 60.0, True),
    ("1.11", "wait", 60.0, False), ("1.12.0", "wait", 60.0, False)])
def test_behaviour_by_version(version, mode, retry, period):
    b = behaviour(version)
    assert b.backup_meets_deletion == mode and b.deletion_retry_min_s == retry
    assert b.deleting_state == (mode == "wait")
    assert b.lock_message_final_period is period


def test_default_is_newest_and_bad_versions():
    assert behaviour().backup_meets_deletion == "wait" and behaviour().name == ">= 1.8"
    # the default is Longhorn 1.10, whose lock messages end in a period
    assert behaviour().version == "1.10" and behaviour().lock_message_final_period is True
    with pytest.raises(ValueError, match=r"not like 1\.8"):
        behaviour("latest")
    assert longhorn.BACKUPSTORE_TASKS <= longhorn.TASKS


# --- job_volumes over frames: labels, system-backup policies, clusters, columns -------------

AT = "2026-01-01T00:00:00Z"


def _jobs(*rows: tuple) -> pd.DataFrame:
    """A jobs frame of (cluster, recurring_job, task, groups, parameters) rows; None leaves
    the column missing (NA), as for a RecurringJob without spec.groups or spec.parameters."""
    return schema.from_records("jobs", [
        {"cluster": c, "recurring_job": j, "task": t, "cron": "0 * * * *", "groups": g,
         "parameters": p, "source": "t", "collected_at": AT} for c, j, t, g, p in rows])


def _volumes(*rows: dict) -> pd.DataFrame:
    """A volumes frame: an attached, healthy, unlabelled volume ``v`` of cluster ``c`` unless
    a row says otherwise."""
    base = {"cluster": "c", "volume": "v", "state": "attached", "robustness": "healthy",
            "standby": False, "recurring_jobs": "", "recurring_job_groups": "",
            "backup_target": "default", "lock_conflict": "none", "source": "t",
            "collected_at": AT}
    return schema.from_records("volumes", [{**base, **r} for r in rows])


def _pairs(m: pd.DataFrame) -> dict[tuple[str, str], tuple]:
    return {(r.volume, r.recurring_job): r for r in m.itertuples()}


def test_job_volumes_reads_each_volumes_job_and_group_labels():
    """A volume labelled with job ``weekly`` and group ``critical`` runs ``weekly`` (job
    label) and the job of group ``critical``, and not the ``default`` group's job, since
    any label takes it out of ``default`` (longhorn-facts.md 2). Each row carries its
    cluster and the job's task; a backup-force-create job touches the backupstore."""
    jobs = _jobs(("c", "hourly", "backup", "default", "{}"),
                 ("c", "weekly", "backup", "", "{}"),
                 ("c", "daily", "backup-force-create", "critical", "{}"))
    m = job_volumes(jobs, _volumes({"recurring_jobs": "weekly",
                                    "recurring_job_groups": "critical"}))
    got = [(r.cluster, r.volume, r.recurring_job, r.task, r.via, r.touches_backupstore)
           for r in m.itertuples()]
    assert got == [("c", "v", "weekly", "backup", "job label", True),
                   ("c", "v", "daily", "backup-force-create", "group critical", True)]


def test_job_without_groups_runs_only_on_its_labelled_volumes():
    """A RecurringJob without spec.groups (``groups`` NA, which the schema allows) runs on
    the volumes labelled with it, and no volume's groups (``default`` included) bring it
    in. (Fixed bug: NA groups raised TypeError.)"""
    jobs = _jobs(("c", "adhoc", "backup", None, None), ("c", "hourly", "backup", "default",
                                                          None))
    m = job_volumes(jobs, _volumes({"volume": "plain"}, {"volume": "labelled",
                                                          "recurring_jobs": "adhoc"}))
    assert {(r.volume, r.recurring_job, r.via) for r in m.itertuples()} == {
        ("plain", "hourly", "default group"), ("labelled", "adhoc", "job label")}


def test_missing_or_listed_labels():
    """Missing label values (None, NaN, pd.NA) name no job and no group, so the volume is in
    the ``default`` group; labels may also come as lists."""
    for missing in (None, float("nan"), pd.NA):
        assert volume_jobs("v", missing, missing, JOBS) == volume_jobs("v", "", "", JOBS)
    assert volume_jobs("v", ["adhoc", "weekly"], ["x", "y"], JOBS) == [
        Membership("v", "weekly", "job label"), Membership("v", "adhoc", "job label")]


def test_detached_volumes_and_the_allow_detached_setting():
    """A detached volume is skipped by default, naming the setting
    ``allow-recurring-job-while-volume-detached`` (default false, longhorn-facts.md 2 and
    6), and runs when the setting is on."""
    jobs = _jobs(("c", "hourly", "backup", "default", "{}"))
    vols = _volumes({"volume": "off", "state": "detached"})
    skipped = job_volumes(jobs, vols)["skipped"].iloc[0]
    assert skipped.startswith("detached")
    assert "allow-recurring-job-while-volume-detached" in skipped
    assert pd.isna(job_volumes(jobs, vols, allow_detached=True)["skipped"].iloc[0])


def test_system_backup_jobs_follow_their_volume_backup_policy():
    """System-backup jobs are not label-driven (longhorn-facts.md 2: no RecurringJob label):
    even with spec.groups ``default`` they reach volumes only through
    ``parameters.volume-backup-policy`` (longhorn/longhorn enhancement
    20230526-volume-backup-policy-for-longhorn-system-backup): ``if-not-present``, the
    default when unset, backs up volumes without a backup; ``always`` every volume;
    ``disabled`` none. DR volumes never (longhorn-facts.md 2: every non-DR volume). One
    job's policy does not stop the jobs after it."""
    policy = {"volume-backup-policy": "disabled"}
    jobs = _jobs(("c", "sys-off", "system-backup", "default", json.dumps(policy)),
                 ("c", "sys-if", "system-backup", "", "{}"),
                 ("c", "sys-always", "system-backup", "",
                  json.dumps({"volume-backup-policy": "always"})),
                 ("c", "sys-unset", "system-backup", "", None))
    vols = _volumes({"volume": "new"}, {"volume": "old", "last_backup": "backup-1"},
                    {"volume": "dr", "standby": True})
    m = job_volumes(jobs, vols)
    assert sorted((r.volume, r.recurring_job) for r in m.itertuples()) == [
        ("new", "sys-always"), ("new", "sys-if"), ("new", "sys-unset"), ("old", "sys-always")]
    assert set(m["via"]) == {"system backup"} and set(m["task"]) == {"system-backup"}
    assert m["touches_backupstore"].all()


def test_the_simulator_reaches_the_volumes_the_system_backup_rule_names():
    """One rule: the model's run membership (run_members, what the simulator backs up)
    asks longhorn.system_backup_covers as job_volumes does, so a system-backup job with
    the default policy leaves out a volume that already has a backup (the model backed
    up every non-DR volume whatever the policy)."""
    from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
    from advisor.model.simulate import run_members

    d = Duration(60.0, 120.0)
    fleet = Fleet(
        volumes=(VolumeSpec("new", 1, d, d), VolumeSpec("old", 1, d, d, has_backup=True)),
        jobs=tuple(JobSpec(name, "0 3 * * *", task="system-backup", backup_policy=policy)
                   for name, policy in (("sys-if", "if-not-present"), ("sys-always", "always"),
                                        ("sys-off", "disabled"))))
    assert run_members(fleet) == {"sys-if": ["new"], "sys-always": ["new", "old"],
                                  "sys-off": []}
    # the same jobs and volumes as frames, through job_volumes
    jobs = _jobs(*(("c", j.name, "system-backup", "",
                    json.dumps({"volume-backup-policy": j.backup_policy}))
                   for j in fleet.jobs))
    vols = _volumes({"volume": "new"}, {"volume": "old", "last_backup": "backup-1"})
    m = job_volumes(jobs, vols)
    assert {j: sorted(m.loc[m["recurring_job"] == j, "volume"]) for j in run_members(fleet)
            } == run_members(fleet)


@pytest.mark.parametrize(("parameters", "policy"), [
    (None, "if-not-present"), ("{}", "if-not-present"), ("not json", "if-not-present"),
    ('["always"]', "if-not-present"), ('"always"', "if-not-present"),  # not an object
    ('{"volume-backup-policy": "always"}', "always"),
    ({"volume-backup-policy": "disabled"}, "disabled")])
def test_a_system_backup_policy_from_any_parameters(parameters, policy):
    """spec.parameters that are not a JSON object name no policy: the default, not a
    TypeError (a list made job_volumes raise)."""
    assert longhorn.system_backup_policy(parameters) == policy


def test_run_lanes_and_retention_of_a_system_backup():
    """A system backup has no concurrency limit and no retention (its Backups carry no
    RecurringJob label; longhorn-facts.md 2); other jobs run ``concurrency`` at a time
    and keep ``retain``."""
    assert longhorn.run_lanes("system-backup", 3, 40) == 40
    assert longhorn.run_lanes("backup", 3, 40) == 3
    assert longhorn.kept_by_retention("system-backup", 2) == float("inf")
    assert longhorn.kept_by_retention("backup-force-create", 2) == 2.0


def test_job_volumes_per_cluster_in_cluster_name_order():
    """Jobs apply only within their own cluster (a job name may repeat across clusters with
    another task), and the pairs come cluster by cluster in name order whatever the order
    of the volumes frame, so reports built on them are stable."""
    jobs = _jobs(("a", "hourly", "backup", "default", "{}"),
                 ("b", "hourly", "snapshot", "default", "{}"))
    m = job_volumes(jobs, _volumes({"cluster": "b", "volume": "vb"},
                                   {"cluster": "a", "volume": "va"}))
    assert [(r.cluster, r.volume, r.task) for r in m.itertuples()] == [
        ("a", "va", "backup"), ("b", "vb", "snapshot")]


def test_job_volumes_of_no_volumes_keeps_its_columns():
    """With no volumes there are no pairs, but the frame still has its seven columns in
    their dtypes, so callers can filter it like any other."""
    m = job_volumes(_jobs(("c", "hourly", "backup", "default", "{}")), _volumes())
    assert m.empty
    assert list(m.columns) == ["cluster", "volume", "recurring_job", "task", "via",
                               "touches_backupstore", "skipped"]
    assert m["touches_backupstore"].dtype == "boolean"


@pytest.mark.parametrize(("version", "mode", "max_retry", "poll_setting", "retry_words"), [
    # <= 1.7: the work queue's rate limiter, 5 ms doubling to 1000 s (longhorn-facts.md 3);
    # the poll interval is the setting backupstore-poll-interval (longhorn-facts.md 6)
    ("1.0", "fail", 1000.0, "backupstore-poll-interval", ("work queue", "5 ms", "1000 s")),
    ("1", "fail", 1000.0, "backupstore-poll-interval", ("work queue", "5 ms", "1000 s")),
    ("v1.7.2", "fail", 1000.0, "backupstore-poll-interval", ("work queue", "5 ms", "1000 s")),
    # >= 1.8: the backup controller's deletion backoff, 1 min doubling to 24 h = 86400 s;
    # the poll interval is the backup target's pollInterval
    ("1.8", "wait", 86400.0, "backup target pollInterval", ("1 min", "24 h")),
    ("v1.12.0", "wait", 86400.0, "backup target pollInterval", ("1 min", "24 h")),
])
def test_behaviour_retry_ceiling_and_settings_by_version(version, mode, max_retry,
                                                         poll_setting, retry_words):
    """Every 1.x version (1.0 and a bare "1" included) gets its era's deletion retry
    ceiling, poll-interval setting and retry description, and keeps the version asked for."""
    b = behaviour(version)
    assert b.version == version and b.backup_meets_deletion == mode
    assert b.deletion_retry_max_s == max_retry
    assert b.poll_interval_setting == poll_setting
    assert all(w in b.deletion_retry_source for w in retry_words)


@pytest.mark.parametrize("version", ["0", "0.9", "v0.8.1"])
def test_versions_before_1_are_refused(version):
    """Only Longhorn 1.x is modelled: earlier versions are refused, saying so."""
    with pytest.raises(ValueError, match=r"only 1\.x is modelled"):
        behaviour(version)


@pytest.mark.parametrize("version", ["", "1.x", "X1.8", "V1.8", "latest"])
def test_malformed_versions_are_refused(version):
    """A version must be digits, optionally after a lowercase ``v`` (as in v1.7.2): other
    text is refused as not a version."""
    with pytest.raises(ValueError, match=r"not like 1\.8"):
        behaviour(version)
