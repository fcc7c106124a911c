"""Scenario files: checked whole, simulated and summarised, through the API and the CLI."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.scenario import ScenarioError
from advisor.model.scenario_run import run_scenario, summarize
from advisor.sources.scenario import load_scenario
from tests.conftest import run_cli

START = "2026-01-05T00:00:00Z"  # a Monday
GIB = 2**30

HOURLY_AND_DAILY = f"""
start: {START}
days: 7
seed: 1
volumes:
  - name: v
    size: 100Gi
    backup_duration: 10m
    deletion_duration: 1m
    jobs: [hourly]
    groups: [nightly]
    backup_durations_by_job: {{daily: 20m}}
jobs:
  - {{name: hourly, task: backup, cron: "0 * * * *", retain: 24}}
  - {{name: daily, task: backup, cron: "0 0 * * *", retain: 7, groups: [nightly]}}
"""


def write(tmp_path: Path, content: str | dict, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def cli_json(path: Path) -> dict:
    r = run_cli("simulate", str(path), "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_hourly_and_daily_at_minute_zero_same_counts_through_the_cli(tmp_path):
    path = write(tmp_path, HOURLY_AND_DAILY)
    scenario = load_scenario(path)
    # the same fleet tests/test_simulate.py builds by hand
    volume = VolumeSpec("v", 100 * GIB, Duration.parse("10m"), Duration.parse("1m"),
                        jobs=("hourly",), groups=("nightly",),
                        job_backup_durations=(("daily", Duration.parse("20m")),))
    assert scenario.fleet == Fleet((volume,), (
        JobSpec("hourly", "0 * * * *", retain=24),
        JobSpec("daily", "0 0 * * *", retain=7, groups=("nightly",))))
    assert scenario.end == pd.Timestamp("2026-01-12T00:00:00Z") and scenario.seed == 1

    result = run_scenario(scenario)
    summary = summarize(result, scenario)
    conflicts = summary["volumes"][0]["conflicts"]
    assert conflicts == {"delete_blocked": 6, "create_blocked": 0, "restore_blocked": 0,
                         "pending_behind_deletion": 0}
    frame = result.frames["backups"]["lock_conflict"].value_counts()
    for kind in ("delete_blocked", "create_blocked", "pending_behind_deletion"):
        assert conflicts[kind] == frame.get(kind, 0)
    assert summary["volumes"][0]["backups_completed"] == 7 * 24 + 7
    assert summary["volumes"][0]["backups_failed"] == 0

    cli = cli_json(path)
    assert cli == summary
    assert cli["window"] == {"start": START, "end": "2026-01-12T00:00:00Z",
                             "longhorn_version": "1.10"}


def test_forty_volumes_concurrency_ten_lose_one_slot_in_four(tmp_path):
    scenario_dict = {
        "start": START, "days": 1 + 1 / 86400,  # the next 00:00 slot loses the 23:00 one
        "volumes": [{"name": f"v{i:02d}", "size": "100Gi", "backup_duration": "20m",
                     "deletion_duration": "5s"} for i in range(40)],
        "jobs": [{"name": "hourly", "task": "backup", "cron": "0 * * * *", "retain": 2,
                  "concurrency": 10, "groups": ["default"]}],
    }
    path = write(tmp_path, scenario_dict)
    scenario = load_scenario(path)
    assert scenario.end == pd.Timestamp("2026-01-06T00:00:01Z")
    result = run_scenario(scenario)
    summary = summarize(result, scenario)
    runs = result.runs
    assert summary["jobs"] == [{"job": "hourly", "runs": len(runs),
                                "late_starts": int((runs["late_s"] > 0).sum()),
                                "skipped_slots": len(result.skipped_slots)}]
    assert summary["jobs"][0] == {"job": "hourly", "runs": 19, "late_starts": 12,
                                  "skipped_slots": 6}
    assert [v["volume"] for v in summary["volumes"]] == [f"v{i:02d}" for i in range(40)]
    assert cli_json(path) == summary


def test_a_recurring_job_manifest_gets_the_webhook_defaults():
    scenario = load_scenario(f"""
start: "{START}"
days: 1
longhorn_version: 1.10
volumes:
  - name: v
    size: 10Gi
    backup_duration: {{dist: lognormal, median: 10m, p95: 25m}}
    deletion_duration: 30s
    groups: [nightly]
jobs:
  - apiVersion: longhorn.io/v1beta2
    kind: RecurringJob
    metadata: {{name: nightly-backup, namespace: longhorn-system}}
    spec: {{task: backup, cron: "0 2 * * *", groups: [nightly]}}
  - apiVersion: longhorn.io/v1beta1
    kind: RecurringJob
    metadata: {{name: trim}}
    spec: {{task: filesystem-trim, cron: "@weekly", retain: 5, concurrency: 0}}
""")
    nightly, trim = scenario.fleet.jobs
    assert nightly == JobSpec("nightly-backup", "0 2 * * *", "backup", retain=1,
                              concurrency=10, groups=("nightly",))
    assert trim == JobSpec("trim", "@weekly", "filesystem-trim", retain=0, concurrency=10)
    assert scenario.version == "1.10"  # not the number 1.1
    assert scenario.fleet.volumes[0].backup_duration == Duration(600.0, 1500.0, "lognormal")


def test_a_volume_only_in_a_non_backup_job_is_in_a_job(tmp_path):
    path = write(tmp_path, f"""
start: "{START}"
days: 0.5
volumes:
  - {{name: data, size: 1Gi, backup_duration: 1m, deletion_duration: 1m, jobs: [trim]}}
  - {{name: logs, size: 1Gi, backup_duration: 1m, deletion_duration: 1m}}
jobs:
  - {{name: trim, task: filesystem-trim, cron: "0 3 * * *"}}
  - {{name: six-hourly, task: backup, cron: "0 */6 * * *", groups: [default]}}
""")
    summary = cli_json(path)
    assert summary["jobs"] == [
        {"job": "six-hourly", "runs": 2, "late_starts": 0, "skipped_slots": 0},
        {"job": "trim", "runs": 0, "late_starts": 0, "skipped_slots": 0}]
    by_volume = {v["volume"]: v["backups_completed"] for v in summary["volumes"]}
    assert by_volume == {"data": 0, "logs": 2}


BASE = {
    "start": START, "days": 2,
    "volumes": [{"name": "v", "size": "10Gi", "backup_duration": "10m",
                 "deletion_duration": "1m"},
                {"name": "w", "size": "10Gi", "backup_duration": "10m",
                 "deletion_duration": "1m", "jobs": ["daily"]}],
    "jobs": [{"name": "daily", "task": "backup", "cron": "0 0 * * *", "retain": 7,
              "groups": ["default"]}],
}


def _set(path: str, value: object) -> Callable[[dict], None]:
    """A change to BASE: set (or, with value ..., delete) a dotted path like volumes.0.size."""
    def change(d: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p)] if isinstance(d, list) else d[p]
        key = int(last) if isinstance(d, list) else last
        if value is ...:
            del d[key]
        else:
            d[key] = value
    return change


ERRORS = {
    "unknown top-level key": (_set("colour", "blue"), "colour: unknown key"),
    "unknown volume key": (_set("volumes.0.sise", 1), "volumes[0].sise: unknown key"),
    "unknown job key": (_set("jobs.0.retian", 1), "jobs[0].retian: unknown key"),
    "missing start": (_set("start", ...), "start: missing"),
    "missing days": (_set("days", ...), "days: missing"),
    "missing volumes": (_set("volumes", ...), "volumes: missing"),
    "missing jobs": (_set("jobs", ...), "jobs: missing"),
    "missing volume name": (_set("volumes.0.name", ...), "volumes[0].name: missing"),
    "missing size": (_set("volumes.0.size", ...), "volumes[0].size: missing"),
    "missing backup duration": (_set("volumes.0.backup_duration", ...),
                                "volumes[0].backup_duration: missing"),
    "missing deletion duration": (_set("volumes.0.deletion_duration", ...),
                                  "volumes[0].deletion_duration: missing"),
    "missing job name": (_set("jobs.0.name", ...), "jobs[0].name: missing"),
    "missing task": (_set("jobs.0.task", ...), "jobs[0].task: missing"),
    "missing cron": (_set("jobs.0.cron", ...), "jobs[0].cron: missing"),
    "cron with 4 fields": (_set("jobs.0.cron", "0 0 * *"),
                           "jobs[0].cron: '0 0 * *': expected exactly 5 fields"),
    "cron field out of range": (_set("jobs.0.cron", "61 * * * *"),
                                "jobs[0].cron: '61 * * * *': minute field:"),
    "cron with a TZ prefix": (_set("jobs.0.cron", "TZ=UTC 0 0 * * *"),
                              "jobs[0].cron: 'TZ=UTC 0 0 * * *': a TZ= or CRON_TZ= prefix"),
    "unknown task": (_set("jobs.0.task", "bakup"),
                     "jobs[0].task: 'bakup' is not a RecurringJob task"),
    "malformed duration": (_set("volumes.1.backup_duration", "10 minutes"),
                           "volumes[1].backup_duration: '10 minutes' is not like 30s, 10m, "
                           "1.5h or 2d"),
    "malformed distribution": (_set("volumes.0.deletion_duration",
                                    {"dist": "lognormal", "median": "10m", "p95": "5m"}),
                               "volumes[0].deletion_duration: a lognormal duration needs"),
    "malformed size": (_set("volumes.0.size", "100 gigs"),
                       "volumes[0].size: '100 gigs' is not like 100Gi"),
    "duplicate volume": (_set("volumes.1.name", "v"),
                         "volumes[1].name: 'v' is also the name of volumes[0]"),
    "duplicate job": (lambda d: d["jobs"].append(dict(d["jobs"][0])),
                      "jobs[1].name: 'daily' is also the name of jobs[0]"),
    "restore_of an unknown volume": (
        lambda d: d["volumes"][1].update(standby=True, restore_of="nobody"),
        "volumes[1].restore_of: no volume named 'nobody'"),
    "restore_of without standby": (_set("volumes.1.restore_of", "v"),
                                   "volumes[1].restore_of: only a DR volume (standby: true)"),
    "volume in no job": (_set("volumes.0.groups", ["nightly"]),
                         "volumes[0]: volume 'v' is in no RecurringJob"),
    "volume with a job label and no default group": (
        _set("volumes.1.jobs", ["hourly"]), "volumes[1]: volume 'w' is in no RecurringJob"),
    "unknown Longhorn version": (_set("longhorn_version", "0.9"),
                                 "longhorn_version: Longhorn version '0.9'"),
    "unreadable Longhorn version": (_set("longhorn_version", "latest"),
                                    "longhorn_version: Longhorn version 'latest'"),
    "zero days": (_set("days", 0), "days: 0: the window must be longer than 0 days"),
    "negative days": (_set("days", -1), "days: -1: the window must be longer"),
    "start without an offset": (_set("start", "2026-01-05T00:00:00"),
                                "start: '2026-01-05T00:00:00' is not an RFC 3339 time"),
    "unknown time zone": (_set("time_zone", "Mars/Olympus"), "time_zone: unknown time zone"),
    "manual backup of an unknown volume": (
        _set("manual_backups", [{"time": "2026-01-05T03:00:00Z", "volume": "x"}]),
        "manual_backups[0].volume: no volume named 'x'"),
}


@pytest.mark.parametrize("change, expected", ERRORS.values(), ids=ERRORS.keys())
def test_each_problem_is_reported_with_its_location(change, expected):
    data = copy.deepcopy(BASE)
    change(data)
    with pytest.raises(ScenarioError) as e:
        load_scenario(yaml.safe_dump(data))
    assert any(p.startswith(expected) for p in e.value.problems), e.value.problems


def test_the_base_of_the_error_cases_is_valid():
    scenario = load_scenario(yaml.safe_dump(BASE))
    assert [v.name for v in scenario.fleet.volumes] == ["v", "w"]


def test_every_problem_of_a_file_reaches_the_cli(tmp_path):
    data = copy.deepcopy(BASE)
    for change, _ in (ERRORS["unknown top-level key"], ERRORS["malformed duration"],
                      ERRORS["cron field out of range"], ERRORS["unknown task"],
                      ERRORS["volume in no job"], ERRORS["zero days"],
                      ERRORS["unknown Longhorn version"], ERRORS["malformed size"]):
        change(data)
    path = write(tmp_path, data)
    r = run_cli("simulate", str(path))
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert all(line.startswith(f"error: {path}: ") for line in lines)
    for where in ("colour:", "volumes[1].backup_duration:", "jobs[0].cron:", "jobs[0].task:",
                  "volumes[0]: volume 'v' is in no RecurringJob", "days:",
                  "longhorn_version:", "volumes[0].size:"):
        assert any(f": {where}" in line for line in lines), (where, lines)
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("content, expected", [
    ("start: [\n", "not YAML: "),
    ("- a\n- b\n", "not a scenario: the file is a list"),
    ("", "not a scenario: the file is empty"),
    ("days: 1\ndays: 2\n", "line 2: key 'days' appears twice"),
], ids=["not YAML", "not a mapping", "empty", "duplicate key"])
def test_a_file_that_is_not_a_scenario_exits_2(tmp_path, content, expected):
    path = write(tmp_path, content)
    r = run_cli("simulate", str(path))
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {path}: {expected}"), r.stderr
    assert "Traceback" not in r.stderr


def test_a_missing_file_exits_2(tmp_path):
    r = run_cli("simulate", str(tmp_path / "nowhere.yaml"))
    assert r.returncode == 2
    assert "nowhere.yaml" in r.stderr and "No such file" in r.stderr
    assert "Traceback" not in r.stderr


def test_text_output_names_every_volume_and_job(tmp_path):
    data = copy.deepcopy(BASE)
    data["volumes"].append({"name": "dr-of-v", "size": "10Gi", "backup_duration": "2m",
                            "deletion_duration": "1m", "standby": True, "restore_of": "v"})
    data["jobs"].append({"name": "weekly-trim", "task": "filesystem-trim",
                         "cron": "0 4 * * 0"})
    path = write(tmp_path, data)
    r = run_cli("simulate", str(path))
    assert r.returncode == 0, r.stderr
    first, *rest = r.stdout.splitlines()
    assert START in first and "2026-01-07T00:00:00Z" in first and "Longhorn 1.10" in first
    for name in ("v", "w", "dr-of-v", "daily", "weekly-trim"):
        assert any(line.split()[:1] == [name] for line in rest), name
    assert run_cli("simulate", str(path), "-o", "xml").returncode == 2
