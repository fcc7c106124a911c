"""The file source: kubectl Lists (JSON and YAML), GitOps manifests, CSV, and bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from advisor import schema
from advisor.longhorn import lock_failure_message
from advisor.sources import synthetic as syn
from advisor.sources.files import InputError, load_files
from tests.conftest import KB_VOLUME, T0, completed, in_progress

AT = pd.Timestamp("2026-11-23T06:00:00Z")


def load(*paths: Path, **kw):
    return load_files(list(paths), collected_at=AT, **kw)


def problems_text(result) -> str:
    return "\n".join(str(p) for p in result.problems)


def test_kubectl_json_list_of_mixed_kinds(mixed_list, write_json):
    r = load(write_json(mixed_list))
    assert dict(r.read) == {"Backup": 4, "Volume": 2, "RecurringJob": 2, "BackupVolume": 1,
                            "Setting": 1}
    assert r.problems == []
    for name, df in r.frames.items():
        schema.validate(name, df)
    b = r.frames["backups"].set_index("backup")
    a1 = b.loc["backup-a1"]
    assert a1["started_at"] == pd.Timestamp(T0 + timedelta(seconds=5))
    assert a1["finished_at"] - a1["started_at"] == pd.Timedelta(minutes=12)
    assert a1["duration_s"] == 720.0
    assert a1["requested_at"] == pd.Timestamp(T0)
    assert a1["recurring_job"] == "daily"
    assert a1["size_bytes"] == 5 * syn.GIB and a1["volume_size_bytes"] == 20 * syn.GIB
    assert a1["backup_mode"] == "incremental" and a1["backup_target"] == "default"
    assert not a1["censored"] and a1["lock_conflict"] == "none"
    assert b.loc["backup-a2", "recurring_job"] == "hourly"
    # in-progress and failed backups are kept as censored rows
    assert b.loc["backup-a3", "censored"] and pd.isna(b.loc["backup-a3", "duration_s"])
    err = b.loc["backup-b1"]
    assert err["censored"] and err["state"] == "Error"
    assert err["lock_conflict"] == "delete_blocked" and err["lock_path_matches"]
    assert err["volume"] == KB_VOLUME
    assert (r.frames["backups"]["collected_at"] == AT).all()
    assert r.frames["backups"]["source"].str.startswith("file:").all()
    v = r.frames["volumes"].set_index("volume").loc["pvc-a"]
    assert v["recurring_jobs"] == "hourly" and v["recurring_job_groups"] == "critical"
    assert v["size_bytes"] == 20 * syn.GIB and v["actual_size_bytes"] == 9 * syn.GIB
    j = r.frames["jobs"].set_index("recurring_job")
    assert j.loc["hourly", "concurrency"] == 2 and j.loc["daily", "retain"] == 7
    assert r.frames["settings"].iloc[0]["value"] == "1440"
    assert r.frames["backup_volumes"].iloc[0]["volume"] == "pvc-a"


def test_yaml_output_reads_the_same_as_json(mixed_list, write_json, tmp_path):
    y = tmp_path / "objects.yaml"
    y.write_text(yaml.safe_dump(mixed_list))
    from_json, from_yaml = load(write_json(mixed_list)), load(y)
    assert from_yaml.problems == []
    for name in schema.FRAMES:
        a = from_json.frames[name].drop(columns="source")
        b = from_yaml.frames[name].drop(columns="source")
        pd.testing.assert_frame_equal(a, b)


def test_status_labels_give_the_job_when_spec_labels_lack_it(write_json):
    b = completed("backup-x", job="weekly")
    b["spec"]["labels"].pop("RecurringJob")
    r = load(write_json(b))
    assert r.frames["backups"].iloc[0]["recurring_job"] == "weekly"
    b["status"]["labels"] = None
    r = load(write_json(b))
    assert r.frames["backups"].iloc[0]["recurring_job"] == ""  # a manual backup


GITOPS = """\
# RecurringJobs for the platform team (managed by Flux)
---
apiVersion: longhorn.io/v1beta2
kind: RecurringJob
metadata:
  name: nightly-backup   # no namespace: kustomize sets it
spec:
  cron: "0 2 * * *"
  task: backup
  groups:
    - default
  retain: 7
---
# concurrency, retain and spec.name left out: the webhook's defaults apply
apiVersion: longhorn.io/v1beta1
kind: RecurringJob
metadata:
  name: hourly-snap
spec:
  cron: '@hourly'
  task: snapshot-cleanup
  retain: 3
---
apiVersion: longhorn.io/v1beta2
kind: RecurringJob
metadata:
  name: weekly
spec:
  name: weekly
  cron: 0 3 * * SUN
  task: backup
...
"""


def test_gitops_multi_document_manifests(tmp_path):
    p = tmp_path / "recurringjobs.yaml"
    p.write_text(GITOPS)
    r = load(p)
    assert r.problems == []
    j = r.frames["jobs"].set_index("recurring_job")
    assert list(j.index) == ["nightly-backup", "hourly-snap", "weekly"]
    assert j.loc["nightly-backup", "concurrency"] == 10  # CRD default
    assert j.loc["nightly-backup", "groups"] == "default"
    assert j.loc["hourly-snap", "retain"] == 0  # snapshot-cleanup keeps no snapshots
    assert j.loc["weekly", "retain"] == 1 and j.loc["weekly", "cron"] == "0 3 * * SUN"
    assert j.loc["hourly-snap", "cron"] == "@hourly"


def test_single_object_and_v1beta1_backup(write_json):
    b = completed("backup-old", "vol-legacy", minutes=3, api="longhorn.io/v1beta1")
    del b["status"]["volumeName"], b["status"]["backupTargetName"]
    del b["metadata"]["labels"]["backup-target"]
    r = load(write_json(b))
    row = r.frames["backups"].iloc[0]
    assert row["volume"] == "vol-legacy" and row["backup_target"] == "default"
    assert row["duration_s"] == 180.0


def test_raw_api_list_items_without_kind(write_json):
    items = [completed("backup-r1"), completed("backup-r2", offset_h=1)]
    for item in items:
        del item["kind"], item["apiVersion"]
    doc = {"apiVersion": "longhorn.io/v1beta2", "kind": "BackupList",
           "metadata": {"continue": "", "resourceVersion": "123"}, "items": items}
    r = load(write_json(doc))
    assert r.read["Backup"] == 2 and r.problems == []


def test_directory_and_unparseable_unquoted_yaml_times(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text(yaml.safe_dump(completed("backup-y")))
    # an unquoted time in hand-written YAML is parsed by YAML itself; it must still read
    (tmp_path / "c.yml").write_text(
        "apiVersion: longhorn.io/v1beta2\nkind: Backup\nmetadata:\n  name: backup-z\n"
        "  creationTimestamp: 2026-11-20T02:00:00Z\nstatus:\n  volumeName: pvc-z\n"
        "  state: Completed\n  snapshotCreatedAt: 2026-11-20T02:00:05Z\n"
        "  backupCreatedAt: 2026-11-20T02:01:05Z\n")
    (tmp_path / "notes.txt").write_text("ignored: not a data file suffix")
    r = load(tmp_path)
    assert r.read["Backup"] == 2 and r.problems == []
    z = r.frames["backups"].set_index("backup").loc["backup-z"]
    assert z["duration_s"] == 60.0


CSV = """\
cluster,volume,backup,state,recurring_job,started_at,finished_at,duration_s,size_bytes,message,colour
,pvc-a,backup-c1,Completed,daily,2026-11-20T02:00:05Z,2026-11-20T02:10:05Z,,1024,,blue
prod,pvc-a,backup-c2,Completed,daily,2026-11-21T02:00:05Z,,300,2048,,red
,pvc-b,backup-c3,Error,,2026-11-21T02:00:05Z,,,,"failed lock backupstore/volumes/{h}/pvc-b/locks/lock-0123456789abcdef.lck type 1 acquisition",
,,backup-c4,Completed,,,,,,,
,pvc-b,backup-c5,Exploded,,,,,,,
,pvc-b,backup-c6,Completed,,2026-11-21T02:00:05Z,2026-11-21T02:03:05Z,,12 GiB,,
"""  # noqa: E501


def test_csv_history(tmp_path):
    from advisor import longhorn

    h = longhorn.lock_folder("pvc-b").split("/")[2:4]
    p = tmp_path / "history.csv"
    p.write_text(CSV.replace("{h}", "/".join(h)))
    r = load(p, cluster="lab")
    b = r.frames["backups"].set_index("backup")
    assert list(b.index) == ["backup-c1", "backup-c2", "backup-c3", "backup-c6"]
    assert b.loc["backup-c1", "duration_s"] == 600.0 and b.loc["backup-c1", "cluster"] == "lab"
    assert b.loc["backup-c2", "cluster"] == "prod"
    assert b.loc["backup-c2", "duration_s"] == 300.0  # finished_at from start + duration
    assert b.loc["backup-c3", "lock_conflict"] == "create_blocked"
    assert b.loc["backup-c3", "lock_path_matches"]
    assert b.loc["backup-c3", "censored"]
    assert pd.isna(b.loc["backup-c6", "size_bytes"])
    text = problems_text(r)
    assert "history.csv: header: field colour: unknown column(s), ignored" in text
    assert "line 5: field volume: empty" in text
    assert "line 6: field state: 'Exploded' is not a Longhorn backup state" in text
    assert "line 7 (backup backup-c6): field size_bytes: '12 GiB' is not a whole number" in text
    assert len(r.skipped) == 2


def test_csv_without_required_columns(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("volume,when\npvc-a,yesterday\n")
    r = load(p)
    assert r.usable_rows == 0
    assert "required column(s) missing" in problems_text(r) and "backup, state" in \
        problems_text(r)


# --- bad input: every problem names the file, the object and the field ---------------


def test_not_json_or_yaml(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"apiVersion": "v1", "kind": "List", "items": [')
    r = load(p)
    assert r.usable_rows == 0
    assert str(r.problems[0]).startswith(f"{p}: not valid JSON: ")
    y = tmp_path / "broken.yaml"
    y.write_text("kind: Backup\nmetadata: {name: [unclosed\n")
    assert "not valid YAML at line" in problems_text(load(y))
    binary = tmp_path / "dump.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    assert "not a text file" in problems_text(load(binary))


def test_a_list_with_one_broken_item_keeps_the_others(mixed_list, write_json):
    mixed_list["items"].insert(1, "not an object")
    mixed_list["items"].insert(2, {"apiVersion": "longhorn.io/v1beta2", "kind": "Backup",
                                   "metadata": {"namespace": "longhorn-system"}})
    broken = completed("backup-novol")
    del broken["status"]["volumeName"], broken["metadata"]["labels"]["backup-volume"]
    mixed_list["items"].append(broken)
    mixed_list["items"].append({"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": "web-0", "namespace": "default"}})
    mixed_list["items"].append({"apiVersion": "longhorn.io/v1beta2", "kind": "Engine",
                                "metadata": {"name": "pvc-a-e-0"}})
    mixed_list["items"].append({"apiVersion": "longhorn.io/v1alpha1", "kind": "Backup",
                                "metadata": {"name": "backup-alpha"}})
    path = write_json(mixed_list, "list.json")
    r = load(path)
    assert r.read["Backup"] == 4  # the good ones are all kept
    text = problems_text(r)
    assert f"{path}: document 1 item 1: is a str, not a Kubernetes object" in text
    assert f"{path}: Backup at document 1 item 2: field metadata.name: missing" in text
    assert (f"{path}: Backup/longhorn-system/backup-novol: field status.volumeName: missing"
            in text)
    assert f"{path}: Pod/default/web-0: field apiVersion: 'v1' is not a Longhorn object" in text
    assert "Engine/pvc-a-e-0: field kind: Engine is not used by the advisor" in text
    assert "backup-alpha: field apiVersion: 'longhorn.io/v1alpha1': version v1alpha1" in text
    assert len(r.skipped) == 6 and not r.warnings


def test_bad_fields_are_reported_and_the_record_kept(write_json):
    skewed = completed("backup-skew")
    skewed["status"]["backupCreatedAt"] = "2026-11-20T01:00:00Z"  # before its start
    bad_time = completed("backup-badtime")
    bad_time["status"]["snapshotCreatedAt"] = "yesterday at two"
    no_end = completed("backup-noend")
    no_end["status"]["backupCreatedAt"] = ""
    bad_size = completed("backup-badsize")
    bad_size["status"]["size"] = "lots"
    bad_size["status"]["volumeSize"] = "-5"
    no_created = in_progress("backup-nocreated")
    del no_created["metadata"]["creationTimestamp"]
    r = load(write_json(syn.kubectl_list([skewed, bad_time, no_end, bad_size, no_created])))
    assert r.read["Backup"] == 5 and not r.skipped
    b = r.frames["backups"].set_index("backup")
    assert pd.isna(b.loc["backup-skew", "duration_s"])
    assert b.loc["backup-skew", "finished_at"] < b.loc["backup-skew", "started_at"]
    assert pd.isna(b.loc["backup-badtime", "started_at"])
    assert pd.isna(b.loc["backup-noend", "duration_s"])
    assert not b.loc["backup-noend", "censored"]  # it did complete; its end is unknown
    assert pd.isna(b.loc["backup-badsize", "size_bytes"])
    assert pd.isna(b.loc["backup-badsize", "volume_size_bytes"])
    assert pd.isna(b.loc["backup-nocreated", "requested_at"])
    text = problems_text(r)
    assert ("Backup/longhorn-system/backup-skew: field status.backupCreatedAt: "
            "2026-11-20 01:00:00+00:00 is before status.snapshotCreatedAt") in text
    assert ("backup-badtime: field status.snapshotCreatedAt: 'yesterday at two' is not an "
            "RFC 3339 time") in text
    assert "backup-noend: field status.backupCreatedAt: missing on a Completed backup" in text
    assert "backup-badsize: field status.size: 'lots' is not a whole number" in text
    assert "backup-badsize: field status.volumeSize: '-5' is negative" in text
    schema.validate("backups", r.frames["backups"])


def test_duplicate_objects_keep_the_most_advanced(write_json, tmp_path):
    early = in_progress("backup-d1")
    late = completed("backup-d1")
    p1 = write_json(syn.kubectl_list([late, completed("backup-d2")]), "one.json")
    p2 = write_json(syn.kubectl_list([early, completed("backup-d2")]), "two.json")
    r = load(p1, p2)
    b = r.frames["backups"].set_index("backup")
    assert len(b) == 2 and b.loc["backup-d1", "state"] == "Completed"
    text = problems_text(r)
    assert f"{p2}: Backup/longhorn-system/backup-d1: duplicate object: a different copy is " \
           f"in {p1}" in text
    assert "backup-d2: duplicate object: an identical copy" in text
    assert len(r.warnings) == 2


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("\n  \n")
    r = load(empty)
    assert r.usable_rows == 0 and str(r.problems[0]) == f"{empty}: empty file"
    only_separators = tmp_path / "seps.yaml"
    only_separators.write_text("---\n# nothing here\n---\n")
    assert load(only_separators).usable_rows == 0
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "missing.json")
    (tmp_path / "d").mkdir()
    assert "directory holds no" in problems_text(load(tmp_path / "d"))


def test_one_broken_yaml_document_loses_only_itself(tmp_path):
    p = tmp_path / "jobs.yaml"
    good = yaml.safe_dump(syn.recurring_job_cr("a", "0 * * * *"))
    p.write_text(f"{good}---\nkind: [oops\n---\n{good.replace('name: a', 'name: b')}")
    r = load(p)
    assert sorted(r.frames["jobs"]["recurring_job"]) == ["a", "b"]
    assert "document 2: not valid YAML at line" in problems_text(r)


def test_a_large_file(tmp_path):
    items = list(syn.backups_for_bench(20_000, volumes=50))
    p = tmp_path / "big.json"
    p.write_text(json.dumps(syn.kubectl_list(items)))
    r = load(p)
    assert r.read["Backup"] == 20_000 and len(r.frames["backups"]) == 20_000
    assert not r.problems
    b = r.frames["backups"]
    assert (b["state"] == "Error").sum() == (b["lock_conflict"] == "create_blocked").sum() > 0
    assert b.loc[b["state"] == "Error", "lock_path_matches"].all()


def test_a_dr_volume_condition_is_a_blocked_restore(write_json):
    msg = lock_failure_message("pvc-dr", "create", final_period=False)
    v2 = syn.volume_cr("pvc-dr", size_bytes=syn.GIB, actual_size_bytes=0, created=T0,
                       standby=True, conditions=[
                           {"type": "Scheduled", "status": "True", "message": ""},
                           {"type": "Restore", "status": "False", "message": msg}])
    v1 = syn.volume_cr("pvc-dr-old", size_bytes=syn.GIB, actual_size_bytes=0, created=T0,
                       standby=True, conditions=None)
    v1["apiVersion"] = "longhorn.io/v1beta1"
    v1["status"]["conditions"] = {"restore": {"type": "restore", "message": lock_failure_message(
        "pvc-dr-old", "create").replace("pvc-dr-old/locks", "pvc-other/locks")}}
    plain = syn.volume_cr("pvc-ok", size_bytes=syn.GIB, actual_size_bytes=0, created=T0)
    r = load(write_json(syn.kubectl_list([v2, v1, plain])))
    v = r.frames["volumes"].set_index("volume")
    assert v.loc["pvc-dr", "lock_conflict"] == "restore_blocked"
    assert v.loc["pvc-dr", "message"] == msg and v.loc["pvc-dr", "standby"]
    assert v.loc["pvc-dr-old", "lock_conflict"] == "restore_blocked"
    assert v.loc["pvc-ok", "lock_conflict"] == "none" and pd.isna(v.loc["pvc-ok", "message"])
    schema.validate("volumes", r.frames["volumes"])


def test_a_library_load_leaves_the_cycle_collector_as_it_found_it(tmp_path, mixed_list):
    """A notebook's load must not change the whole process: the collector is paused
    while the file is read and restored after, and nothing is frozen (the advisor
    command, a process of its own, freezes what a load leaves alive)."""
    import gc

    from advisor.sources import files

    path = tmp_path / "backups.json"
    path.write_text(json.dumps(mixed_list))
    frozen, enabled = gc.get_freeze_count(), gc.isenabled()
    assert files.FREEZE_AFTER_LOAD is False
    result = load_files([path])
    assert len(result.frames["backups"]) > 0
    assert (gc.get_freeze_count(), gc.isenabled()) == (frozen, enabled)
