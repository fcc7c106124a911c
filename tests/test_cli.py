"""The command line as a user runs it: a subprocess, real files, real store."""

from __future__ import annotations

import json
from collections import Counter

import pytest

import advisor
from advisor.sources import synthetic as syn
from tests.conftest import completed, in_progress, run_cli

pytestmark = pytest.mark.slow(seconds=105)  # (run first: see conftest)


def collect(store, *paths, extra=()):
    return run_cli("collect", "--store", str(store), "--from-file", *map(str, paths), *extra)


def history(store) -> dict:
    r = run_cli("history", "--store", str(store), "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_collect_fills_the_store_then_adds_nothing_then_updates(mixed_list, write_json,
                                                                 tmp_path):
    store = tmp_path / "store"
    first = write_json(mixed_list, "monday.json")
    r = collect(store, first)
    assert r.returncode == 0, r.stderr
    assert "Backup" in r.stdout and "RecurringJob" in r.stdout and "Volume" in r.stdout
    assert "backups: 4 added, 0 updated, 0 unchanged" in r.stdout
    h = history(store)
    assert h["backups"] == 4 and h["backups_by_state"]["InProgress"] == 1
    assert h["jobs"] == ["daily", "hourly"] and h["lock_conflicts"] == {"delete_blocked": 1}

    again = collect(store, first)
    assert again.returncode == 0
    assert "backups: 0 added, 0 updated, 4 unchanged" in again.stdout
    assert "nothing new" in again.stdout
    assert history(store)["observations"]["backups"] == 4

    # a day later the running backup has completed
    items = [i for i in mixed_list["items"] if i["metadata"]["name"] != "backup-a3"]
    items.append(completed("backup-a3", "pvc-a", minutes=30))
    later = write_json(syn.kubectl_list(items), "tuesday.json")
    r = collect(store, later)
    assert "backups: 0 added, 1 updated, 3 unchanged" in r.stdout, r.stdout
    h = history(store)
    assert h["backups_by_state"] == {"Completed": 3, "Error": 1}
    assert h["observations"]["backups"] == 5  # every observation is kept

    # an older file collected afterwards does not roll the backup back
    r = collect(store, first)
    assert history(store)["backups_by_state"] == {"Completed": 3, "Error": 1}


def test_collect_reports_every_skipped_record_and_exits_zero(mixed_list, write_json,
                                                             tmp_path):
    mixed_list["items"].append({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "cm", "namespace": "x"}})
    bad = in_progress("backup-bad")
    bad["status"]["state"] = "Exploded"
    mixed_list["items"].append(bad)
    path = write_json(mixed_list)
    r = collect(tmp_path / "s", path)
    assert r.returncode == 0, r.stderr
    assert "skipped 2 record(s):" in r.stdout
    assert f"{path}: ConfigMap/x/cm: field apiVersion:" in r.stdout
    assert (f"{path}: Backup/longhorn-system/backup-bad: field status.state: 'Exploded' is "
            "not a Longhorn backup state") in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_invalid_input_with_nothing_usable_exits_two(tmp_path):
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json at all")
    r = collect(tmp_path / "s", garbage)
    assert r.returncode == 2
    assert f"{garbage}: not valid JSON" in r.stdout
    assert "no usable record" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s" / "collections").exists()
    missing = run_cli("collect", "--store", str(tmp_path / "s"), "--from-file",
                      str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert run_cli("collect", "--store", str(tmp_path / "s")).returncode == 2


def test_stdin_and_positional_paths(mixed_list, write_json, tmp_path):
    store = tmp_path / "s"
    r = run_cli("collect", "--store", str(store), "--from-file", "-",
                stdin=json.dumps(mixed_list))
    assert r.returncode == 0 and "backups: 4 added" in r.stdout
    other = write_json(syn.kubectl_list([completed("backup-p", "pvc-p")]), "p.json")
    extra = write_json(syn.kubectl_list([completed("backup-q", "pvc-q")]), "q.json")
    r = run_cli("collect", "--store", str(store), "--from-file", str(other), str(extra))
    assert "backups: 2 added" in r.stdout


def test_store_from_environment(mixed_list, write_json, tmp_path):
    env = {"ADVISOR_STORE": str(tmp_path / "env-store")}
    r = run_cli("collect", "--from-file", str(write_json(mixed_list)), env=env)
    assert r.returncode == 0 and str(tmp_path / "env-store") in r.stdout
    h = run_cli("history", "-o", "json", env=env)
    assert json.loads(h.stdout)["backups"] == 4


def test_store_written_by_a_newer_advisor_is_refused(mixed_list, write_json, tmp_path):
    store = tmp_path / "s"
    assert collect(store, write_json(mixed_list)).returncode == 0
    meta = json.loads((store / "store.json").read_text())
    meta["schema_version"] = 999
    (store / "store.json").write_text(json.dumps(meta))
    r = run_cli("history", "--store", str(store))
    assert r.returncode == 1 and "newer" in r.stderr and "Traceback" not in r.stderr


def test_sample_written_and_collected_is_the_bundled_sample(tmp_path):
    r = run_cli("sample", "--out", str(tmp_path / "sample"))
    assert r.returncode == 0, r.stderr
    fleet = tmp_path / "sample" / "sample-fleet.json"
    assert (tmp_path / "sample" / "events.csv").stat().st_size > 0
    c = run_cli("collect", "--from-file", str(fleet), "--cluster", "sample", "--store",
                str(tmp_path / "s"))
    assert c.returncode == 0 and "0 warning(s), 0 skipped" in c.stdout
    h = run_cli("history", "--store", str(tmp_path / "s"))
    for kind in ("delete_blocked", "pending_behind_deletion", "restore_blocked"):
        assert kind in h.stdout
    # counted from the written kubectl List with plain JSON, not through the advisor
    items = json.loads(fleet.read_text())["items"]
    backups_ = [i for i in items if i["kind"] == "Backup"]

    def said(item: dict, words: str) -> bool:
        status = item.get("status") or {}
        messages = status.get("messages") or {}
        return any(words in (t or "") for t in (status.get("error"), messages.get("error"),
                                                 messages.get("info")))

    conflicts = {
        "delete_blocked": sum(said(b, "when performing backup delete") for b in backups_),
        "pending_behind_deletion": sum(said(b, "to be deleted") and not said(b, "lock")
                                       for b in backups_),
        # a DR volume's restore, in the Volume's conditions
        "restore_blocked": sum("performing backup create/restore" in json.dumps(i)
                               for i in items if i["kind"] == "Volume")}
    stored = history(tmp_path / "s")
    assert stored["backups"] == len(backups_)
    assert stored["backups_by_state"] == dict(Counter(b["status"]["state"] for b in backups_))
    assert stored["lock_conflicts"] == {k: n for k, n in conflicts.items() if n}
    assert stored["jobs"] == sorted(i["metadata"]["name"] for i in items
                                    if i["kind"] == "RecurringJob")
    assert stored["volumes"] == sum(i["kind"] == "Volume" for i in items)
    # and the API says the same of the same sample
    api = advisor.summarize_history(advisor.sample.load_sample().frames).to_dict()
    for key in ("backups", "backups_by_state", "lock_conflicts", "jobs", "volumes"):
        assert api[key] == stored[key]


def test_version_and_help():
    v = run_cli("--version")
    assert v.returncode == 0 and v.stdout.startswith("advisor ")
    h = run_cli("--help")
    assert "collect" in h.stdout and "history" in h.stdout
