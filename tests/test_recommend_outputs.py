"""``advisor recommend``'s outputs checked for their content, on a small hand-made history
where a job really changes (seconds, not the sample fleet's minutes).

The history (kubectl JSON collected into a store with ``advisor collect``): ``pvc-db``'s
backups take 45-75 min under the ``hourly`` job at minute 0, which also covers the small
``pvc-web-1``; the ``daily`` job at 00:00 covers ``pvc-web-1`` too (a job label) and
``pvc-web-2`` (the default group). So ``hourly`` must change: its slow volume outlasts
the hour, and at 00:00 it meets ``daily`` on ``pvc-web-1``. ``-o json`` is checked
against README.md's description and against what the history's numbers imply; ``-o
patch`` is merged onto the current RecurringJob as kubectl would (RFC 7386); ``-o yaml``
is validated against a hand-written JSON Schema of Longhorn's RecurringJob spec, compared
field by field with the current job, and read back by the advisor's own loader.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
import shlex
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

from advisor.advice.search import LADDER
from advisor.longhorn import lock_failure_message
from advisor.sources import synthetic as syn

from .conftest import run_cli

START = "2026-11-23"  # a Monday: the week scored
WEEK = "2026-W48"  # (its ISO week: 2026-01-01 is a Thursday, so week 1 starts 2025-12-29)
TARGET = 0.01  # recommend's default --target-risk
NAMESPACE = "longhorn-system"
HISTORY_END = datetime(2026, 11, 16, tzinfo=UTC)
DB_MINUTES = (45, 50, 55, 60, 65, 70, 75, 52, 58, 63)
"""``pvc-db``'s backup durations, in turn: most outlast the hourly job's hour."""
DB_BACKUPS = 24  # as many as hourly's retain keeps
LOCK_ERRORS = 2  # pvc-db's Backups that failed on the lock (delete blocked)
Z99 = 2.3263478740408408  # standard normal quantile at 0.99
LONGHORN_TASKS = ["snapshot", "snapshot-force-create", "snapshot-cleanup", "snapshot-delete",
                  "backup", "backup-force-create", "filesystem-trim", "system-backup"]
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
RECURRING_JOB_SPEC = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Longhorn RecurringJob spec (longhorn.io/v1beta2), written by hand from the CRD",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "groups": {"type": "array", "items": {"type": "string"}},
        "task": {"enum": LONGHORN_TASKS},
        "cron": {"type": "string"},
        "retain": {"type": "integer"},
        "concurrency": {"type": "integer"},
        "labels": STRING_MAP,
        "parameters": STRING_MAP,
    },
    "required": ["task", "cron"],
    "additionalProperties": False,
}
LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = re.compile(rf"recurring-job(-group)?\.longhorn\.io/({LABEL_NAME})")


# --- the history ------------------------------------------------------------------------


def _backup(name: str, volume: str, job: str, at: datetime, minutes: float,
            size_gib: int) -> dict:
    return syn.backup_cr(name, volume, state="Completed", created=at,
                         started=at + timedelta(seconds=5),
                         finished=at + timedelta(seconds=5, minutes=minutes), job=job,
                         size_bytes=size_gib * syn.GIB, volume_size_bytes=size_gib * 5 * syn.GIB)


def history_objects() -> list[dict]:
    """What ``kubectl get backups,recurringjobs,volumes -o json`` shows of the cluster:
    the Backups retention keeps, three Volumes and two RecurringJobs."""
    items = []
    for k in range(DB_BACKUPS):  # every other slot: each backup outlasts the hour
        at = HISTORY_END - timedelta(hours=2 * (DB_BACKUPS - k))
        items.append(_backup(f"backup-db-{k:02d}", "pvc-db", "hourly", at,
                             DB_MINUTES[k % len(DB_MINUTES)], 200))
    for k in range(LOCK_ERRORS):  # failed at once on the lock: no duration, a conflict
        at = HISTORY_END - timedelta(hours=2 * k + 1)
        items.append(syn.backup_cr(f"backup-db-err-{k}", "pvc-db", state="Error", created=at,
                                   started=at + timedelta(seconds=2), job="hourly",
                                   volume_size_bytes=1000 * syn.GIB,
                                   error=lock_failure_message("pvc-db", "delete")))
    for k in range(24):
        items.append(_backup(f"backup-web1-h{k:02d}", "pvc-web-1", "hourly",
                             HISTORY_END - timedelta(hours=24 - k), 3 + k % 3, 2))
    for k in range(7):
        for volume in ("pvc-web-1", "pvc-web-2"):
            items.append(_backup(f"backup-{volume}-d{k}", volume, "daily",
                                 HISTORY_END - timedelta(days=7 - k), 4 + k % 3, 2))
    created = HISTORY_END - timedelta(days=30)
    hourly = syn.recurring_job_cr("hourly", "0 * * * *", retain=24, concurrency=2,
                                  groups=["hot", "db"],
                                  parameters={"full-backup-interval": "12"})
    hourly["spec"]["labels"] = {"team": "databases"}  # (labels of the backups it makes)
    return [*items,
            syn.volume_cr("pvc-db", size_bytes=1000 * syn.GIB, actual_size_bytes=200 * syn.GIB,
                          created=created, groups=["hot"]),
            syn.volume_cr("pvc-web-1", size_bytes=10 * syn.GIB, actual_size_bytes=2 * syn.GIB,
                          created=created, groups=["hot"], jobs=["daily"]),
            syn.volume_cr("pvc-web-2", size_bytes=10 * syn.GIB, actual_size_bytes=2 * syn.GIB,
                          created=created),
            hourly,
            syn.recurring_job_cr("daily", "0 0 * * *", retain=7, groups=["default"])]


def _kind(kind: str) -> list[dict]:
    return [o for o in history_objects() if o["kind"] == kind]


CURRENT_JOBS = {o["metadata"]["name"]: o for o in _kind("RecurringJob")}
VOLUMES = {o["metadata"]["name"] for o in _kind("Volume")}


def _strict_json(text: str) -> object:
    """JSON as the standard reads it: ``NaN`` and ``Infinity`` are not JSON."""
    def bad(token: str) -> object:
        raise ValueError(f"{token} is not JSON")
    return json.loads(text, parse_constant=bad)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The history collected into a store (and its duration fits kept there)."""
    folder = tmp_path_factory.mktemp("outputs")
    path = folder / "cluster.json"
    path.write_text(json.dumps(syn.kubectl_list(history_objects())))
    r = run_cli("collect", "--from-file", str(path), "--store", str(folder / "store"))
    assert r.returncode == 0, r.stderr
    return folder / "store"


def _recommend(store: Path, output: str) -> str:
    r = run_cli("recommend", "--store", str(store), "--week", WEEK, "-o", output)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def advice(store) -> dict:
    """``-o json``, read as strict JSON."""
    return _strict_json(_recommend(store, "json"))


@pytest.fixture(scope="module")
def recs(advice) -> dict:
    return {r["job"]: r for r in advice["recommendations"]}


@pytest.fixture(scope="module")
def patch_output(store) -> str:
    return _recommend(store, "patch")


@pytest.fixture(scope="module")
def yaml_output(store) -> str:
    return _recommend(store, "yaml")


# --- helpers: kubectl's JSON merge patch, and the commands --------------------------------


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386 section 2 (``kubectl patch --type merge``): ``patch`` applied to
    ``target``; a null member deletes, an object merges member by member, anything else
    replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def parse_patch_command(line: str) -> tuple[str, dict]:
    """(RecurringJob name, JSON body) of ``kubectl -n NS patch recurringjobs.longhorn.io
    NAME --type merge -p BODY`` (or ``recurringjobs.longhorn.io/NAME``); fails on any
    other form."""
    args = shlex.split(line)
    assert args[:4] == ["kubectl", "-n", NAMESPACE, "patch"], line
    rest = args[4:]
    resource, _, name = rest.pop(0).partition("/")
    assert resource == "recurringjobs.longhorn.io", line
    if not name:
        name = rest.pop(0)
    assert rest[:2] == ["--type", "merge"] and rest[2] == "-p" and len(rest) == 4, line
    body = json.loads(rest[3])
    assert isinstance(body, dict), line
    return name, body


def check_label_command(line: str, jobs: set[str]) -> None:
    """``kubectl -n NS label volumes.longhorn.io VOLUME KEY=enabled... [KEY-]``: an
    existing volume, and only Longhorn's recurring-job label keys
    (``recurring-job.longhorn.io/<job>`` naming a known job, or
    ``recurring-job-group.longhorn.io/<group>``, valid label names), set to ``enabled``
    or removed."""
    args = shlex.split(line)
    assert args[:5] == ["kubectl", "-n", NAMESPACE, "label", "volumes.longhorn.io"], line
    assert args[5] in VOLUMES, f"{line}: no volume {args[5]!r} in the history"
    assert args[6:], line
    for change in args[6:]:
        key, value = (change[:-1], None) if change.endswith("-") else change.split("=", 1)
        m = LABEL_KEY.fullmatch(key)
        assert m and value in (None, "enabled"), f"{line}: {change!r}"
        assert m.group(1) or m.group(2) in jobs, f"{line}: no job {m.group(2)!r}"


def _fires(cron: str, n: int = 13) -> list[pd.Timestamp]:
    """The cron's next fire times from START, as ``advisor cron`` tells them."""
    r = run_cli("cron", cron, "--from", f"{START}T00:00:00Z", "-n", str(n), "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = _strict_json(r.stdout)
    assert out["valid"] and out["accepted_by"] == {"longhorn": True, "kubernetes": True}
    return [pd.Timestamp(t) for t in out["next"]]


# --- the helpers' own checks ----------------------------------------------------------


@pytest.mark.parametrize(("target", "patch", "result"), [
    # RFC 7386, appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_follows_rfc_7386(target, patch, result):
    """The merge the patch test relies on gives RFC 7386's own examples' results."""
    assert merge_patch(target, patch) == result


def test_the_crd_schema_rejects_what_longhorn_would():
    """The hand-written RecurringJob spec schema has teeth: a field Longhorn does not
    know, an unknown task, a retain that is not a whole number, a label value that is
    not a string and a missing cron are each rejected; a real job's spec is not."""
    good = CURRENT_JOBS["hourly"]["spec"]
    jsonschema.validate(good, RECURRING_JOB_SPEC)
    for bad in ({**good, "schedule": "0 * * * *"}, {**good, "task": "backup-cleanup"},
                {**good, "retain": "24"}, {**good, "retain": 2.5},
                {**good, "labels": {"team": 1}}, {**good, "groups": "hot"},
                {k: v for k, v in good.items() if k != "cron"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, RECURRING_JOB_SPEC)


# --- -o json: the change, and why ---------------------------------------------------------


def test_hourly_changes_as_the_historys_numbers_imply(recs):
    """The change follows from the numbers: ``pvc-db``'s fitted p99 backup (lognormal,
    computed here from the durations written into the history) is over an hour and under
    two, so 1 h cannot stay and 2 h, the next ladder step, is the interval; ``hourly``
    meets ``daily`` (00:00) on ``pvc-web-1``, so it moves to the odd hours, the farthest
    from it. ``daily`` is left as it is, and says so."""
    logs = [math.log(60 * DB_MINUTES[k % len(DB_MINUTES)]) for k in range(DB_BACKUPS)]
    mu = sum(logs) / len(logs)
    sigma = math.sqrt(sum((x - mu) ** 2 for x in logs) / len(logs))  # (the MLE)
    p99 = math.exp(mu + Z99 * sigma)
    assert 3600 < p99 < 7200
    step = min(s for s in LADDER if s > p99)
    assert step == 7200
    hourly = recs["hourly"]
    assert hourly["current_cron"] == "0 * * * *" and hourly["changed"] is True
    assert hourly["kind"] == "interval+offset"
    assert hourly["recommended_cron"] == "0 1-23/2 * * *"  # an hour from daily's 00:00
    assert f"p99 backup {p99 / 60:.0f} min" in hourly["reason"]
    assert "> 60 min interval" in hourly["reason"] and "<= 2 h interval" in hourly["reason"]
    assert "moved away from the fire times of daily" in hourly["reason"]
    fires = _fires(hourly["recommended_cron"])
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(fires)}
    assert gaps == {float(step)} and {t.hour % 2 for t in fires} == {1}
    assert CURRENT_JOBS["daily"]["spec"]["cron"] == "0 0 * * *"  # an hour from daily
    assert hourly["p_per_run_now"] > TARGET >= hourly["p_per_run_after"]
    daily = recs["daily"]
    assert daily["changed"] is False and daily["patch"] is None
    assert daily["recommended_cron"] == daily["current_cron"] == "0 0 * * *"


def test_the_json_matches_its_contract(advice, recs):
    """README.md's description of ``-o json``, key by key: per job the current and the
    recommended cron, the worst volume's per-run probability now and after, and the
    reason in numbers (with the patch that applies a change); per volume the probability
    of a conflict per run and per week, the expected conflicts and skipped runs per week,
    the conflicts the history's Backup messages show against the predicted rate with its
    95 % interval and the verdict (``fits``, ``more than predicted``, ``fewer than
    predicted``); the assumptions. Strict JSON, probabilities in [0, 1], every
    recommended cron valid for Longhorn (``advisor cron``), the ISO week scored and its
    window, a row for every volume of
    the history, and the lock failures written into it counted."""
    assert set(advice) == {"recommendations", "volumes", "longhorn_version", "target_risk",
                           "week", "window", "assumptions", "rpo_s", "rpo_by_job", "fit",
                           "after_advice"}
    assert advice["rpo_s"] is None and advice["rpo_by_job"] == {}
    assert advice["fit"]["conflicts"] in ("fits", "more than predicted",
                                          "fewer than predicted")
    assert advice["after_advice"]["volumes_over_rpo"] == []  # (no RPO asked)
    assert advice["after_advice"]["changes_applied"] == [
        j for j, r in recs.items() if r["changed"]]
    assert advice["week"] == WEEK
    assert isinstance(advice["longhorn_version"], str) and advice["target_risk"] == TARGET
    start = pd.Timestamp(START, tz="UTC")
    assert [pd.Timestamp(t) for t in advice["window"]] == [start, start + pd.Timedelta(days=7)]
    assert advice["assumptions"] and all(isinstance(a, str) for a in advice["assumptions"])
    assert set(recs) == set(CURRENT_JOBS)  # both are backup jobs
    for job, r in recs.items():
        assert set(r) == {"job", "kind", "current_cron", "recommended_cron", "changed",
                          "p_per_run_now", "p_per_run_after", "worst_volume_now",
                          "p_skip_now", "worst_volume_after", "p_skip_after", "reason",
                          "concurrency", "split", "patch", "recovery"}
        # what a change does to recovery points, predicted (nothing for a kept job)
        assert r["recovery"] is None or set(r["recovery"]) == {
            "points_now", "points_after", "gap_p95_now", "gap_p95_after"}
        # the worst volume now is one the job backs up, named with its skipped slots
        if r["kind"] != "offset":  # (an offset alone is placed, not scored)
            assert r["worst_volume_now"] in {v["volume"] for v in advice["volumes"]}
            assert isinstance(r["p_skip_now"], float) and 0.0 <= r["p_skip_now"] <= 1.0
        assert r["kind"] in ("keep", "interval", "offset", "interval+offset")
        assert (r["kind"] == "keep") is (not r["changed"])
        assert r["current_cron"] == CURRENT_JOBS[job]["spec"]["cron"]
        assert r["changed"] is (r["recommended_cron"] != r["current_cron"])
        assert r["split"] is None and r["concurrency"] is None  # (two volumes: no split)
        for p in (r["p_per_run_now"], r["p_per_run_after"]):
            assert p is None or (isinstance(p, float) and 0.0 <= p <= 1.0)
        assert isinstance(r["reason"], str) and r["reason"]
        assert (r["patch"] is None) is (not r["changed"])
        _fires(r["recommended_cron"], 2)  # valid, for Longhorn and Kubernetes
    volumes = {v["volume"]: v for v in advice["volumes"]}
    assert len(volumes) == len(advice["volumes"]) and set(volumes) == VOLUMES
    for name, v in volumes.items():
        assert set(v) == {"volume", "p_conflict_per_run", "p_conflict_per_week",
                          "expected_conflicts_per_week", "skipped_runs_per_week",
                          "history_weeks", "observed_conflicts", "observed_per_week",
                          "predicted_per_week", "predicted_lo", "predicted_hi", "fit",
                          "min_safe_interval_s", "min_safe_basis"}, name
        assert 0.0 <= v["p_conflict_per_run"] <= v["p_conflict_per_week"] <= 1.0, name
        for key in ("expected_conflicts_per_week", "skipped_runs_per_week",
                    "predicted_per_week", "history_weeks"):
            assert isinstance(v[key], float) and v[key] >= 0, (name, key)
        assert isinstance(v["observed_conflicts"], int) and v["history_weeks"] > 0
        assert v["observed_per_week"] == pytest.approx(
            v["observed_conflicts"] / v["history_weeks"])
        assert 0 <= v["predicted_lo"] <= v["predicted_hi"], name
        assert v["fit"] in ("fits", "more than predicted", "fewer than predicted"), name
    assert volumes["pvc-db"]["observed_conflicts"] == LOCK_ERRORS
    assert volumes["pvc-web-2"]["observed_conflicts"] == 0
    # the worst volume of the slow job is the one that outlasts the hour
    assert volumes["pvc-db"]["p_conflict_per_run"] == pytest.approx(
        recs["hourly"]["p_per_run_now"])
    assert volumes["pvc-db"]["skipped_runs_per_week"] > 1


# --- -o patch -----------------------------------------------------------------------------


def test_patch_lines_set_the_recommended_cron(recs, patch_output):
    """Every line of ``-o patch`` is a kubectl command (a RecurringJob patch, or a
    volume label command with Longhorn's label keys) or a comment; there is one patch
    per changed job and none for a kept one, its body is JSON setting ``spec.cron`` to
    the cron ``-o json`` recommends (not the current one) and nothing else, and it is
    the same command ``-o json`` gives as the job's ``patch``."""
    lines = [ln for ln in patch_output.splitlines() if ln.strip()]
    patched = {}
    for line in lines:
        if line.startswith("#"):
            continue
        assert line.startswith("kubectl "), line
        verb = shlex.split(line)[3]
        if verb == "label":
            check_label_command(line, set(CURRENT_JOBS))
            continue
        name, body = parse_patch_command(line)
        assert name not in patched, f"{name} patched twice"
        patched[name] = (line, body)
    changed = {j for j, r in recs.items() if r["changed"]}
    assert changed == {"hourly"} and set(patched) == changed
    for name, (line, body) in patched.items():
        r = recs[name]
        assert body == {"spec": {"cron": r["recommended_cron"]}}
        assert body["spec"]["cron"] != r["current_cron"]
        assert line == r["patch"]


def test_patch_merged_onto_the_current_job_changes_only_its_cron(recs, patch_output):
    """The patch body merged onto the RecurringJob as it is in the cluster (RFC 7386, as
    ``kubectl patch --type merge`` does) gives the same object with the recommended cron:
    nothing else of it is touched."""
    for line in patch_output.splitlines():
        if not line.startswith("kubectl ") or shlex.split(line)[3] != "patch":
            continue
        name, body = parse_patch_command(line)
        current = CURRENT_JOBS[name]
        merged = merge_patch(current, body)
        assert merged["spec"]["cron"] == recs[name]["recommended_cron"] != \
            current["spec"]["cron"]
        expected = copy.deepcopy(current)
        expected["spec"]["cron"] = recs[name]["recommended_cron"]
        assert merged == expected
        jsonschema.validate(merged["spec"], RECURRING_JOB_SPEC)


# --- -o yaml ------------------------------------------------------------------------------


def _manifests(text: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert all(isinstance(d, dict) for d in docs), text
    return docs


def test_yaml_is_the_changed_jobs_with_the_recommended_cron(recs, yaml_output):
    """``-o yaml`` is one RecurringJob (``longhorn.io/v1beta2``, named, in Longhorn's
    namespace) per changed job; its spec passes the CRD's schema, has the recommended
    cron, and every other spec field equal to the job's in the cluster (retain,
    concurrency, task, groups (an unordered set for Longhorn), labels, parameters), so
    applying it changes the schedule and nothing else."""
    docs = _manifests(yaml_output)
    assert [d["metadata"]["name"] for d in docs] == [j for j, r in recs.items()
                                                     if r["changed"]]
    for doc in docs:
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
        assert (doc["apiVersion"], doc["kind"]) == ("longhorn.io/v1beta2", "RecurringJob")
        name = doc["metadata"]["name"]
        assert doc["metadata"] == {"name": name, "namespace": NAMESPACE}
        jsonschema.validate(doc["spec"], RECURRING_JOB_SPEC)
        spec, current = doc["spec"], CURRENT_JOBS[name]["spec"]
        assert spec["cron"] == recs[name]["recommended_cron"] != current["cron"]
        assert sorted(spec["groups"]) == sorted(current["groups"])
        assert {k: v for k, v in spec.items() if k not in ("cron", "groups")} == \
            {k: v for k, v in current.items() if k not in ("cron", "groups")}


def test_yaml_read_back_by_the_advisor_is_the_recommended_schedule(store, recs, yaml_output,
                                                                   tmp_path):
    """The YAML, collected by the advisor's own manifest loader (``collect
    --from-file``) into a copy of the store as if applied, gives the recommended
    schedule: ``recommend`` then reads it as the job's current cron and keeps it (the
    advice is a fixed point), and the kept job is untouched."""
    manifest = tmp_path / "recommended.yaml"
    manifest.write_text(yaml_output)
    applied = tmp_path / "store"
    shutil.copytree(store, applied)
    r = run_cli("collect", "--from-file", str(manifest), "--store", str(applied))
    assert r.returncode == 0, r.stderr
    assert re.search(r"RecurringJob\s+1\b", r.stdout) and "0 skipped" in r.stdout
    again = {x["job"]: x for x in _strict_json(_recommend(applied, "json"))["recommendations"]}
    for name, rec in recs.items():
        assert again[name]["current_cron"] == rec["recommended_cron"], name
        assert again[name]["changed"] is False, again[name]["reason"]
    assert again["hourly"]["p_per_run_now"] <= TARGET
