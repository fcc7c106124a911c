"""The event simulator on hand-computed scenarios with fixed durations."""

from __future__ import annotations

import pandas as pd

from advisor import schema
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.simulate import simulate

START = "2026-01-05T00:00:00Z"  # a Monday
GIB = 2**30


def vol(name: str, backup: str = "10m", deletion: str = "1m", **kw) -> VolumeSpec:
    return VolumeSpec(name, 100 * GIB, Duration.parse(backup), Duration.parse(deletion), **kw)


def conflicts(result, kind: str) -> pd.DataFrame:
    b = result.frames["backups"]
    return b[b["lock_conflict"] == kind]


def test_one_daily_job_never_conflicts_in_30_days():
    fleet = Fleet((vol("v"),), (JobSpec("daily", "0 0 * * *", retain=3, groups=("default",)),))
    r = simulate(fleet, START, "2026-02-04T00:00:00Z")
    b = r.frames["backups"]
    for name, df in r.frames.items():
        schema.validate(name, df)
    assert len(b) == 30 and (b["lock_conflict"] == "none").all()
    assert (b["state"] == "Deleting").sum() == 27 and (b["state"] == "Completed").sum() == 3
    assert (b.loc[b["state"] == "Completed", "duration_s"] == 600).all()
    assert r.skipped_slots.empty and (r.runs["late_s"] == 0).all()
    assert (r.events["event"] == "lock_conflict").sum() == 0


def test_hourly_and_daily_at_minute_zero_block_one_deletion_a_day():
    volume = vol("v", backup="10m", deletion="1m", jobs=("hourly",), groups=("nightly",),
                 job_backup_durations=(("daily", Duration.parse("20m")),))
    fleet = Fleet((volume,), (JobSpec("hourly", "0 * * * *", retain=24),
                              JobSpec("daily", "0 0 * * *", retain=7, groups=("nightly",))))
    r = simulate(fleet, START, "2026-01-12T00:00:00Z", seed=1)
    blocked = conflicts(r, "delete_blocked")
    # retention starts deleting hourly backups on day 2 (retain 24); from then on, each day
    # at 00:10 the hourly retention deletion meets the daily backup of 00:00
    days_with_retention = 6
    assert len(blocked) == days_with_retention
    assert (blocked["recurring_job"] == "hourly").all()
    ev = r.events
    done = ev[(ev["operation"] == "deletion") & (ev["event"] == "completed")]
    assert set(blocked["backup"]) <= set(done["backup"])  # each succeeded on a retry
    assert conflicts(r, "create_blocked").empty


def test_forty_volumes_concurrency_ten():
    def fleet(minutes: int) -> Fleet:
        vols = tuple(vol(f"v{i:02d}", backup=f"{minutes}m", deletion="5s")
                     for i in range(40))
        return Fleet(vols, (JobSpec("hourly", "0 * * * *", retain=2, concurrency=10,
                                    groups=("default",)),))

    ok = simulate(fleet(10), START, "2026-01-06T00:00:00Z")
    assert len(ok.runs) == 24 and (ok.runs["late_s"] == 0).all() and ok.skipped_slots.empty
    assert ((ok.runs["end"] - ok.runs["start"]) == pd.Timedelta(minutes=40)).all()

    # the 00:00 slot of the next day is what finally loses the 23:00 one
    slow = simulate(fleet(20), START, "2026-01-06T00:00:01Z")
    runs = slow.runs[slow.runs["slot"] < "2026-01-06"]
    assert ((runs["end"] - runs["start"]) == pd.Timedelta(minutes=80)).all()
    # every 4 hours: one slot on time, two late (20 and 40 minutes), one never runs
    assert len(slow.skipped_slots) == 6
    assert list(slow.skipped_slots["slot"].dt.hour) == [3, 7, 11, 15, 19, 23]
    assert list(runs["late_s"][:4]) == [0, 1200, 2400, 0]
    assert (runs["late_s"] > 0).sum() == 12 and len(runs) == 18


def test_the_simulators_forbid_is_the_cron_modules():
    """One Forbid rule: a job whose runs the simulator laid out (runs of 80 minutes, every
    hour) gives the same starts and lost slots as :func:`advisor.schedules.forbid_runs`
    given the same slots and the simulated runs' lengths."""
    from advisor.schedules import fire_times, forbid_runs

    vols = tuple(vol(f"v{i:02d}", backup="20m", deletion="5s") for i in range(40))
    fleet = Fleet(vols, (JobSpec("hourly", "0 * * * *", retain=2, concurrency=10,
                                 groups=("default",)),))
    r = simulate(fleet, START, "2026-01-06T00:00:01Z")
    # (robfig's Next is strictly after its start; the simulator fires at START itself)
    slots = fire_times("0 * * * *", "2026-01-04T23:59:59Z", "2026-01-06T00:00:01Z")
    lengths = (r.runs["end"] - r.runs["start"]).dt.total_seconds().dropna()
    assert len(lengths) > 12 and (lengths == 80 * 60).all()
    plan = forbid_runs(slots, [*lengths, *[80 * 60.0] * len(slots)])
    assert list(plan.runs["slot"]) == list(r.runs["slot"])
    assert list(plan.runs["start"]) == list(r.runs["start"])
    assert list(plan.skipped["slot"]) == list(r.skipped_slots["slot"])


def _deletion_meets_backup(version: str):
    # hourly backups of 5 min, retain 1: each completed backup deletes the previous one,
    # and that deletion takes 70 minutes, so it still holds the lock at the next hour
    fleet = Fleet((vol("v", backup="5m", deletion="70m"),),
                  (JobSpec("hourly", "0 * * * *", retain=1, groups=("default",)),))
    return simulate(fleet, START, "2026-01-05T03:00:00Z", version=version)


def test_a_backup_meeting_a_deletion_fails_under_1_7():
    r = _deletion_meets_backup("1.7")
    b = r.frames["backups"].set_index("backup").sort_values("requested_at")
    second = b.iloc[1]  # 01:00: the 00:05 deletion of... nothing yet; 02:00 meets one
    third = b.iloc[2]
    assert second["state"] == "Completed"
    assert third["state"] == "Error" and third["lock_conflict"] == "create_blocked"
    assert third["message"].startswith("failed to acquire lock backupstore/volumes/")
    assert third["message"].endswith("when performing backup create/restore, please try "
                                     "again later.")
    assert third["lock_path_matches"]


def test_a_backup_meeting_a_deletion_waits_pending_under_1_8():
    r = _deletion_meets_backup("1.8")
    b = r.frames["backups"].sort_values("requested_at").reset_index(drop=True)
    third = b.iloc[2]
    assert third["lock_conflict"] == "pending_behind_deletion"
    assert third["message"].startswith("Wait for backup backup-")
    assert third["message"].endswith(" to be deleted")
    # it started only when the deletion (01:05 + 70 min = 02:15) was done, then completed
    assert third["started_at"] == pd.Timestamp("2026-01-05T02:15:00Z")
    assert third["state"] in ("Completed", "Deleting") and third["duration_s"] == 300
    assert conflicts(r, "create_blocked").empty


def test_a_failed_deletion_awaiting_its_retry_holds_no_backup_back_under_1_8():
    # job "a" (minute 0, 59 min) holds the lock when job "b"'s 01:15 retention deletion
    # tries; each attempt fails at its 2 s check and is retried 1, 2, 4, 8, 16 min
    # later, all blocked, the next at 02:18:12. Between attempts its Backup is in
    # Error, not Deleting, so "a"'s 02:00 backup starts at once (longhorn-manager
    # backup_controller.go: "With the state being Error, other pending backups can
    # start").
    volume = vol("v", backup="59m", deletion="30s", jobs=("a", "b"),
                 job_backup_durations=(("b", Duration.parse("5m")),))
    fleet = Fleet((volume,), (JobSpec("a", "0 * * * *", retain=1),
                              JobSpec("b", "10 * * * *", retain=1)))
    r = simulate(fleet, START, "2026-01-05T02:20:00Z", version="1.8")
    ev = r.events
    tries = ev[(ev["operation"] == "deletion") & (ev["event"] == "lock_conflict")]
    first = tries[tries["backup"] == tries["backup"].iloc[0]]
    assert [t.strftime("%H:%M:%S") for t in first["time"]] == [
        "01:15:02", "01:16:04", "01:18:06", "01:22:08", "01:30:10", "01:46:12",
        "02:18:14"]
    assert (ev["event"] == "pending").sum() == 0
    b = r.frames["backups"].set_index("requested_at")
    at_two = b.loc[pd.Timestamp("2026-01-05T02:00:00Z")]
    assert at_two["started_at"] == pd.Timestamp("2026-01-05T02:00:00Z")
    assert at_two["lock_conflict"] == "none"


def test_a_dr_restore_meets_a_retention_deletion():
    fleet = Fleet((vol("src", backup="5m", deletion="10m"),
                   vol("dr", standby=True, restore_of="src", groups=("none",))),
                  (JobSpec("hourly", "0 * * * *", retain=1, groups=("default",)),),
                  poll_interval_s=300)
    r = simulate(fleet, START, "2026-01-05T03:00:00Z")
    ev = r.events
    blocked = ev[ev["conflict"] == "restore_blocked"]
    # 01:05 the 01:00 backup completes and deletes the 00:00 one (01:05-01:15); the poll at
    # 01:10 finds the new backup and its restore meets that deletion
    assert len(blocked) >= 1
    assert blocked["time"].iloc[0] == pd.Timestamp("2026-01-05T01:10:02Z")
    assert (blocked["volume"] == "dr").all()
    restored = ev[(ev["operation"] == "restore") & (ev["event"] == "completed")]
    assert len(restored) >= 2  # it caught up at a later poll


def test_backups_at_once_share_the_target_bandwidth():
    vols = tuple(vol(f"v{i}", backup="10m", deletion="5s") for i in range(4))
    fleet = Fleet(vols, (JobSpec("daily", "0 0 * * *", retain=3, concurrency=10,
                                 groups=("default",)),))
    alone = simulate(fleet, START, "2026-01-05T12:00:00Z")
    assert (alone.frames["backups"]["duration_s"] == 600).all()
    # capacity 2: four uploads at once each get half speed, so all take 20 minutes
    shared = simulate(fleet, START, "2026-01-05T12:00:00Z", target_capacity=2)
    assert (shared.frames["backups"]["duration_s"] == 1200).all()
    # the run ends with its slowest volume: 20 minutes too
    assert shared.runs["end"].iloc[0] - shared.runs["start"].iloc[0] == pd.Timedelta(
        minutes=20)
    staggered = Fleet(vols[:2], (JobSpec("a", "0 0 * * *", concurrency=1, groups=("x",)),),
                      manual_backups=(("2026-01-05T00:00:00Z", "v0"),
                                      ("2026-01-05T00:05:00Z", "v1")))
    st = simulate(staggered, START, "2026-01-05T12:00:00Z", target_capacity=1)
    d = st.frames["backups"].set_index("volume")["duration_s"]
    # v0 alone 5 min (half its work), then both at half speed: v0 ends at 15 min, v1's
    # remaining 5 min alone: 10 + 5 = 15 min after its start
    assert d["v0"] == 900 and d["v1"] == 900


def test_deletion_checks_wait_their_two_seconds_with_shared_bandwidth():
    volume = vol("v", backup="10m", deletion="1m", jobs=("hourly",), groups=("nightly",),
                 job_backup_durations=(("daily", Duration.parse("20m")),))
    fleet = Fleet((volume,), (JobSpec("hourly", "0 * * * *", retain=24),
                              JobSpec("daily", "0 0 * * *", retain=7, groups=("nightly",))))
    plain = simulate(fleet, START, "2026-01-12T00:00:00Z", seed=1)
    shared = simulate(fleet, START, "2026-01-12T00:00:00Z", seed=1, target_capacity=5)
    assert len(conflicts(shared, "delete_blocked")) == len(conflicts(plain, "delete_blocked"))
