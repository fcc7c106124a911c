"""What the advice prints for Longhorn: RecurringJob manifests (``longhorn.io/v1beta2``)
and ``kubectl patch`` commands, never applied; and a job's ``spec.labels`` and
``spec.parameters`` as collected, so a printed manifest keeps them."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from advisor.cron import parse
from advisor.longhorn.jobs import DEFAULT_GROUP, GROUP_LABEL_PREFIX, JOB_LABEL_PREFIX, NAMESPACE

if TYPE_CHECKING:
    from advisor.model.fleet import JobSpec

__all__ = ["job_labels_and_parameters", "kubectl_merge_patch", "kubectl_patch",
           "recurring_job_yaml", "relabel_volume"]


def recurring_job_yaml(job: JobSpec, cron: str, namespace: str = NAMESPACE, *,
                       labels: Mapping[str, str] | None = None,
                       parameters: Mapping[str, str] | None = None) -> str:
    """The RecurringJob manifest (``longhorn.io/v1beta2``) of ``job`` with ``cron``.

    ``labels`` and ``parameters``: the job's ``spec.labels`` and ``spec.parameters``
    (a :class:`JobSpec` does not hold them); give the job's own when changing an existing
    job, or the manifest, applied, would drop them (``full-backup-interval``, say).
    Without them, ``labels`` is empty and ``parameters`` left out."""
    parse(cron)  # never print a schedule Longhorn would reject
    spec = {"name": job.name, "task": job.task, "cron": cron, "retain": job.retain,
            "concurrency": job.concurrency, "groups": list(job.groups),
            "labels": dict(labels or {})}
    if parameters is not None:
        spec["parameters"] = dict(parameters)
    doc = {"apiVersion": "longhorn.io/v1beta2", "kind": "RecurringJob",
           "metadata": {"name": job.name, "namespace": namespace}, "spec": spec}
    return yaml.safe_dump(doc, sort_keys=False)


def _json_map(text: object) -> dict[str, str]:
    """A ``labels`` or ``parameters`` cell of the ``jobs`` frame (JSON) as a dict."""
    try:
        value = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        value = {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def job_labels_and_parameters(jobs: pd.DataFrame, cluster: str | None = None
                              ) -> dict[str, dict[str, dict[str, str]]]:
    """Per RecurringJob of the ``jobs`` frame (of ``cluster``, if given), its
    ``spec.labels`` and ``spec.parameters`` as collected: the keyword arguments of
    :func:`recurring_job_yaml`, so a manifest printed for an existing job keeps them."""
    if cluster is not None:
        jobs = jobs[jobs["cluster"] == cluster]
    return {str(r["recurring_job"]): {"labels": _json_map(r.get("labels")),
                                      "parameters": _json_map(r.get("parameters"))}
            for r in jobs.to_dict("records")}


def kubectl_patch(job_name: str, cron: str, namespace: str = NAMESPACE) -> str:
    """The ``kubectl patch`` that sets a RecurringJob's cron (printed, never run)."""
    parse(cron)
    return kubectl_merge_patch(job_name, {"cron": cron}, namespace)


def kubectl_merge_patch(job_name: str, spec: Mapping[str, object],
                        namespace: str = NAMESPACE) -> str:
    """The ``kubectl patch`` that sets these ``spec`` fields of a RecurringJob (printed,
    never run; a cron goes through :func:`kubectl_patch`, which checks it)."""
    body = json.dumps({"spec": dict(spec)}, separators=(",", ":"))
    return (f"kubectl -n {namespace} patch recurringjobs.longhorn.io {shlex.quote(job_name)} "
            f"--type merge -p {shlex.quote(body)}")


def relabel_volume(volume: str, job_labels: Sequence[str], group_labels: Sequence[str],
                   jobs: Sequence[str], namespace: str = NAMESPACE) -> str:
    """The ``kubectl label`` command that leaves ``volume`` (a Longhorn Volume) in exactly
    the RecurringJobs ``jobs``, by job labels: its group labels and other job labels
    (``job_labels``, ``group_labels``: what it has) are removed. A volume with none is in
    the ``default`` group, whose label the manager adds: that one is removed too, so the
    volume leaves the default jobs it is not given back by name. (A Volume whose PVC has
    ``recurring-job.longhorn.io/source=enabled`` gets its labels from the PVC: label
    that instead.)"""
    groups = list(group_labels) or ([] if job_labels else [DEFAULT_GROUP])
    drop = [f"{GROUP_LABEL_PREFIX}{g}-" for g in dict.fromkeys(groups)]
    drop += [f"{JOB_LABEL_PREFIX}{j}-" for j in dict.fromkeys(job_labels) if j not in jobs]
    add = [f"{JOB_LABEL_PREFIX}{j}=enabled" for j in dict.fromkeys(jobs)]
    return shlex.join(["kubectl", "-n", namespace, "label", "volumes.longhorn.io", volume,
                       *drop, *add, "--overwrite"])
