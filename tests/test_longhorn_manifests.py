"""What the advice prints for Longhorn: RecurringJob manifests, kubectl patches, and a
job's collected spec.labels and spec.parameters (advisor.longhorn.manifests)."""

from __future__ import annotations

import json
import shlex

import pandas as pd
import pytest
import yaml

from advisor import schema
from advisor.cron import CronError
from advisor.longhorn.manifests import (
    job_labels_and_parameters,
    kubectl_merge_patch,
    kubectl_patch,
    recurring_job_yaml,
)
from advisor.model.fleet import JobSpec

AT = pd.Timestamp("2026-11-20T00:00:00Z")


def test_recurring_job_yaml_round_trips():
    job = JobSpec("hourly", "0 * * * *", retain=24, concurrency=5, groups=("g1", "g2"))
    doc = yaml.safe_load(recurring_job_yaml(job, "7 */2 * * *"))
    assert doc["apiVersion"] == "longhorn.io/v1beta2" and doc["kind"] == "RecurringJob"
    assert doc["metadata"] == {"name": "hourly", "namespace": "longhorn-system"}
    assert doc["spec"] == {"name": "hourly", "task": "backup", "cron": "7 */2 * * *",
                           "retain": 24, "concurrency": 5, "groups": ["g1", "g2"],
                           "labels": {}}


def test_a_manifest_reads_in_the_order_kubectl_and_longhorn_write_it():
    """A reviewer diffs the printed manifest against the one in git: apiVersion, kind,
    metadata, spec, and the spec in the order of Longhorn's own examples, not sorted."""
    job = JobSpec("hourly", "0 * * * *", retain=24, concurrency=5, groups=("g1",))
    text = recurring_job_yaml(job, "7 */2 * * *")
    lines = text.splitlines()
    top = [line.split(":")[0] for line in lines if not line.startswith((" ", "-"))]
    spec = [line.strip().split(":")[0] for line in lines[lines.index("spec:") + 1:]
            if line.startswith("  ") and not line.startswith(("   ", "  -"))]
    assert top == ["apiVersion", "kind", "metadata", "spec"]
    assert spec == ["name", "task", "cron", "retain", "concurrency", "groups", "labels"]


def test_a_manifest_keeps_the_jobs_labels_and_parameters_in_its_namespace():
    """Applied, a manifest replaces the job's spec: without the labels and parameters
    it was collected with (full-backup-interval, say) it would drop them."""
    job = JobSpec("daily", "0 0 * * *", task="backup-force-create", retain=7)
    doc = yaml.safe_load(recurring_job_yaml(
        job, "30 1 * * *", "storage", labels={"team": "db"},
        parameters={"full-backup-interval": "12"}))
    assert doc["metadata"] == {"name": "daily", "namespace": "storage"}
    assert doc["spec"]["labels"] == {"team": "db"}
    assert doc["spec"]["parameters"] == {"full-backup-interval": "12"}
    assert doc["spec"]["task"] == "backup-force-create" and doc["spec"]["cron"] == "30 1 * * *"
    with pytest.raises(CronError):  # never a schedule Longhorn would refuse
        recurring_job_yaml(job, "0 0 * *")


def test_kubectl_patch_carries_valid_json():
    cmd = kubectl_patch("hourly", "5-59/15 * * * *")
    assert cmd.startswith("kubectl -n longhorn-system patch recurringjobs.longhorn.io hourly "
                          "--type merge -p '")
    args = shlex.split(cmd)
    assert json.loads(args[args.index("-p") + 1]) == {"spec": {"cron": "5-59/15 * * * *"}}
    # one shell word, compact, as kubectl's own docs write a merge patch
    assert args[args.index("-p") + 1] == '{"spec":{"cron":"5-59/15 * * * *"}}'
    with pytest.raises(CronError):
        kubectl_patch("hourly", "61 * * * *")
    other = shlex.split(kubectl_merge_patch("daily", {"retain": 7, "concurrency": 2}, "ns"))
    assert other[:6] == ["kubectl", "-n", "ns", "patch", "recurringjobs.longhorn.io", "daily"]
    assert other[-1] == '{"spec":{"retain":7,"concurrency":2}}'
    odd = shlex.split(kubectl_patch("it's", "0 * * * *", namespace="ns"))
    assert odd[:6] == ["kubectl", "-n", "ns", "patch", "recurringjobs.longhorn.io", "it's"]


def test_labels_and_parameters_as_collected_per_job_and_cluster():
    """The jobs frame holds them as JSON text; anything that is not a JSON object of
    strings reads as none, so a printed manifest never carries a malformed map."""
    jobs = schema.from_records("jobs", [
        {"cluster": c, "recurring_job": j, "task": "backup", "cron": "0 * * * *",
         "labels": lab, "parameters": par, "source": "t", "collected_at": AT}
        for c, j, lab, par in (
            ("a", "hourly", json.dumps({"team": "db"}), json.dumps({"full-backup-interval": 6})),
            ("a", "daily", "not json", json.dumps(["a", "list"])),
            ("b", "weekly", None, None))])
    got = job_labels_and_parameters(jobs, "a")
    assert got == {"hourly": {"labels": {"team": "db"},
                              "parameters": {"full-backup-interval": "6"}},
                   "daily": {"labels": {}, "parameters": {}}}
    assert set(job_labels_and_parameters(jobs)) == {"hourly", "daily", "weekly"}
    assert job_labels_and_parameters(jobs)["weekly"] == {"labels": {}, "parameters": {}}
