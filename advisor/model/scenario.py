"""A simulation scenario, checked whole (:mod:`advisor.model.scenario_run` runs and
summarises it).

A scenario names a window (``start``, ``days``), a Longhorn version, the volumes with
their duration distributions, and the RecurringJobs, either in a short form
(``{name, task, cron, retain, concurrency, groups}``) or as RecurringJob manifests as
``kubectl get recurringjob -o yaml`` prints them. Fields left out of a job get the
defaults Longhorn's admission webhook writes (``webhook/resources/recurringjob/
mutator.go``): ``concurrency`` 0 or missing is 10, ``groups`` missing is empty, ``retain``
is 0 for ``snapshot-cleanup`` and ``filesystem-trim``, at least 0 for ``snapshot-delete``
and at least 1 for every other task.

:func:`build_scenario` checks a scenario already parsed (a mapping, read from a file by
:func:`advisor.sources.scenario.load_scenario`) and reports every problem at once, each
with its location (``volumes[3].backup_duration: ...``), in one :class:`ScenarioError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from advisor import longhorn
from advisor.cron import CronError, parse, zone
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec, seconds, size_bytes

__all__ = ["TOP_KEYS", "Scenario", "ScenarioError", "build_scenario", "rfc3339"]

TOP_KEYS = ("start", "days", "longhorn_version", "seed", "time_zone", "poll_interval",
            "failed_backup_ttl", "allow_detached", "manual_backups", "volumes", "jobs")
VOLUME_KEYS = ("name", "size", "backup_duration", "deletion_duration", "groups", "jobs",
               "standby", "restore_of", "restore_duration", "state",
               "backup_durations_by_job")
JOB_KEYS = ("name", "task", "cron", "retain", "concurrency", "groups")
MANIFEST_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
MANIFEST_SPEC_KEYS = (*JOB_KEYS, "labels", "parameters")
API_VERSIONS = ("longhorn.io/v1beta1", "longhorn.io/v1beta2")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class ScenarioError(ValueError):
    """A scenario that cannot be simulated; ``problems`` lists each one with its location."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class Scenario:
    """A checked scenario: the fleet, the window ``[start, end)`` in UTC, the Longhorn
    version whose rules apply, the random seed and the schedules' evaluation zone."""

    fleet: Fleet
    start: pd.Timestamp
    end: pd.Timestamp
    version: str = longhorn.LATEST
    seed: int = 0
    time_zone: str = "UTC"


# --- checking --------------------------------------------------------------------------


class _Problems(list):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")

    def value(self, where: str, convert: Callable[[Any], Any], raw: Any) -> Any:
        """``convert(raw)``, or None with the problem noted when it raises ValueError."""
        try:
            return convert(raw)
        except ValueError as e:
            self.add(where, str(e).removeprefix("duration ").removeprefix("size "))
            return None

    def keys(self, where: str, item: Mapping, known: tuple[str, ...],
             required: tuple[str, ...] = ()) -> None:
        for key in item:
            if key not in known:
                self.add(f"{where}.{key}", f"unknown key (expected one of {', '.join(known)})")
        for key in required:
            if key not in item:
                self.add(f"{where}.{key}", "missing")


def _mapping(p: _Problems, where: str, raw: Any) -> dict | None:
    if isinstance(raw, dict):
        return raw
    p.add(where, f"is a {type(raw).__name__}, expected a mapping")
    return None


def _list(p: _Problems, where: str, raw: Any) -> list | None:
    if isinstance(raw, list):
        return raw
    p.add(where, f"is a {type(raw).__name__}, expected a list")
    return None


def _names(p: _Problems, where: str, raw: Any) -> tuple[str, ...]:
    items = _list(p, where, raw) if raw is not None else []
    bad = [i for i, x in enumerate(items or []) if not isinstance(x, str) or not x]
    for i in bad:
        p.add(f"{where}[{i}]", f"{items[i]!r} is not a name")
    return tuple(x for x in items or [] if isinstance(x, str) and x)


def _name(p: _Problems, where: str, raw: Any) -> str | None:
    if isinstance(raw, str) and raw:
        return raw
    p.add(where, f"{raw!r} is not a name")
    return None


def _whole(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"{raw!r} is not a whole number")
    return raw


def _integer(raw: Any) -> int:
    if _whole(raw) < 0:
        raise ValueError(f"{raw!r} is not a whole number >= 0")
    return raw


def _boolean(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not true or false")
    return raw


def _time(raw: Any) -> pd.Timestamp:
    if not isinstance(raw, str) or not _RFC3339.match(raw):
        raise ValueError(f"{raw!r} is not an RFC 3339 time like 2026-01-05T00:00:00Z")
    return pd.Timestamp(raw).tz_convert("UTC")


def _days(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError(f"{raw!r} is not a number of days")
    if raw <= 0:
        raise ValueError(f"{raw!r}: the window must be longer than 0 days")
    return float(raw)


def _version(raw: Any) -> str:
    # a number read from YAML keeps how it was written (``1.10`` is not ``1.1``)
    text = getattr(raw, "text", None) or str(raw)
    longhorn.behaviour(text)  # raises ValueError for what it does not model
    return text


def _time_zone(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not a time zone name")
    try:
        zone(raw)
    except CronError as e:
        raise ValueError(str(e)) from None
    return raw


def _positive_seconds(raw: Any) -> float:
    s = seconds(raw)
    if s <= 0:
        raise ValueError(f"{raw!r} must be longer than 0 s")
    return s


def _ttl_seconds(raw: Any) -> float:
    if not isinstance(raw, str):  # Longhorn's setting counts minutes, seconds() seconds
        raise ValueError(f"{raw!r} needs a unit, like 1440m (a bare number is ambiguous: "
                         "Longhorn's failed-backup-ttl setting counts minutes)")
    return seconds(raw)


def _size(raw: Any) -> int:
    n = size_bytes(raw)
    if n <= 0:
        raise ValueError(f"size {raw!r} must be more than 0 bytes")
    return n


@dataclass(frozen=True)
class _Known:
    """What items are checked against: volume names (first index), jobs by name."""

    volumes: dict[str, int]
    jobs: set[str]
    label_jobs: dict[str, tuple[str, ...]]  # job -> groups, as volume_jobs takes them
    system_backup: bool


def _volume(p: _Problems, i: int, item: dict, known: _Known) -> VolumeSpec | None:
    where = f"volumes[{i}]"
    p.keys(where, item, VOLUME_KEYS, ("name", "size", "backup_duration", "deletion_duration"))
    name = _name(p, f"{where}.name", item["name"]) if "name" in item else None
    if name is not None and known.volumes[name] != i:
        p.add(f"{where}.name", f"{name!r} is also the name of volumes[{known.volumes[name]}]")
    size = p.value(f"{where}.size", _size, item["size"]) if "size" in item else None
    durations = {k: p.value(f"{where}.{k}", Duration.parse, item[k])
                 for k in ("backup_duration", "deletion_duration", "restore_duration")
                 if k in item}
    by_job = _durations_by_job(p, f"{where}.backup_durations_by_job",
                               item.get("backup_durations_by_job"), known)
    own_jobs = _own_jobs(p, f"{where}.jobs", item.get("jobs"), known)
    groups = _names(p, f"{where}.groups", item.get("groups"))
    standby = p.value(f"{where}.standby", _boolean, item.get("standby", False))
    state = item.get("state", "attached")
    if state not in ("attached", "detached"):
        p.add(f"{where}.state", f"{state!r} is not attached or detached")
    restore_of = _restore_of(p, f"{where}.restore_of", item.get("restore_of"), name, standby,
                             known)
    # Longhorn's rule: a volume that no RecurringJob covers is never backed up
    labels_read = all(isinstance(item.get(k, []), list) for k in ("jobs", "groups"))
    if (name is not None and standby is False and labels_read and not known.system_backup
            and not longhorn.volume_jobs(name, own_jobs, groups, known.label_jobs)):
        labels = (f"jobs {list(own_jobs)}, groups {list(groups)}" if own_jobs or groups
                  else "no job or group label, so group 'default'")
        p.add(where, f"volume {name!r} is in no RecurringJob ({labels})")
    if (name is None or size is None or None in durations.values()
            or "backup_duration" not in durations or "deletion_duration" not in durations):
        return None
    return VolumeSpec(name, size, durations["backup_duration"],
                      durations["deletion_duration"], jobs=own_jobs, groups=groups,
                      standby=bool(standby), restore_of=restore_of,
                      restore_duration=durations.get("restore_duration"), state=str(state),
                      job_backup_durations=by_job)


def _durations_by_job(p: _Problems, where: str, raw: Any, known: _Known
                      ) -> tuple[tuple[str, Duration], ...]:
    """A volume's ``backup_durations_by_job``: (job, duration) for each that checks out."""
    by_job = []
    if raw is not None and _mapping(p, where, raw):
        for job, text in raw.items():
            at = f"{where}.{job}"
            if job not in known.jobs:
                p.add(at, f"no job named {job!r} in jobs")
            d = p.value(at, Duration.parse, text)
            if d is not None:
                by_job.append((str(job), d))
    return tuple(by_job)


def _own_jobs(p: _Problems, where: str, raw: Any, known: _Known) -> tuple[str, ...]:
    """A volume's ``jobs`` labels, each checked against the scenario's jobs."""
    own_jobs = _names(p, where, raw)
    for k, job in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(job, str) and job and job not in known.jobs:
            p.add(f"{where}[{k}]", f"no job named {job!r} in jobs")
    return own_jobs


def _restore_of(p: _Problems, where: str, raw: Any, name: str | None, standby: bool | None,
                known: _Known) -> str | None:
    """The volume a DR volume ``name`` restores from (None when none is named, or when
    ``raw`` is not a name)."""
    if raw is None or (restore_of := _name(p, where, raw)) is None:
        return None
    if standby is False:
        p.add(where, "only a DR volume (standby: true) restores from another volume's "
              "backups")
    if restore_of not in known.volumes:
        p.add(where, f"no volume named {restore_of!r}")
    elif restore_of == name:
        p.add(where, "a volume cannot restore from itself")
    return restore_of


def _job_fields(p: _Problems, where: str, item: dict) -> dict:
    """The job's fields, from the short form or a RecurringJob manifest (``name`` is None
    when it cannot be told)."""
    if not any(k in item for k in ("apiVersion", "kind", "metadata", "spec")):
        p.keys(where, item, JOB_KEYS, ("name", "task", "cron"))
        fields = dict(item)
        fields["name"] = _name(p, f"{where}.name", item["name"]) if "name" in item else None
        return {**fields, "where": where, "name_at": f"{where}.name"}
    p.keys(where, item, MANIFEST_KEYS, ("apiVersion", "kind", "metadata", "spec"))
    if "apiVersion" in item and item["apiVersion"] not in API_VERSIONS:
        p.add(f"{where}.apiVersion", f"{item['apiVersion']!r} is not {' or '.join(API_VERSIONS)}")
    if "kind" in item and item["kind"] != "RecurringJob":
        p.add(f"{where}.kind", f"{item['kind']!r} is not RecurringJob")
    meta = _mapping(p, f"{where}.metadata", item.get("metadata", {})) or {}
    spec = _mapping(p, f"{where}.spec", item.get("spec", {})) or {}
    p.keys(f"{where}.spec", spec, MANIFEST_SPEC_KEYS, ("task", "cron"))
    name = None
    if "name" in meta:
        name = _name(p, f"{where}.metadata.name", meta["name"])
    elif "metadata" in item:
        p.add(f"{where}.metadata.name", "missing")
    if name and spec.get("name") not in (None, "", name):
        p.add(f"{where}.spec.name", f"{spec['name']!r} differs from metadata.name {name!r}")
    return {**spec, "name": name, "where": f"{where}.spec",
            "name_at": f"{where}.metadata.name"}


def _job(p: _Problems, fields: dict) -> JobSpec | None:
    where = fields["where"]
    task, cron = fields.get("task"), fields.get("cron")
    if task is not None and (not isinstance(task, str) or task not in longhorn.TASKS):
        p.add(f"{where}.task", f"{task!r} is not a RecurringJob task "
              f"({', '.join(sorted(longhorn.TASKS))})")
        task = None
    if cron is not None and not isinstance(cron, str):
        p.add(f"{where}.cron", f"{cron!r} is not a schedule (quote it)")
        cron = None
    elif cron is not None:
        try:
            parse(cron)
        except CronError as e:
            p.add(f"{where}.cron", f"{cron!r}: {e}")
            cron = None
    groups = _names(p, f"{where}.groups", fields.get("groups"))
    retain = p.value(f"{where}.retain", _whole, fields.get("retain", 0))
    concurrency = p.value(f"{where}.concurrency", _integer, fields.get("concurrency", 0))
    if None in (fields["name"], task, cron, retain, concurrency):
        return None
    # the webhook's defaults (mutator.go)
    if task in longhorn.RETAIN_ZERO_TASKS:
        retain = 0
    elif task == "snapshot-delete":
        retain = max(retain, 0)
    else:
        retain = max(retain, 1)
    return JobSpec(fields["name"], cron, task, retain,
                   concurrency or longhorn.DEFAULT_CONCURRENCY, groups)


def build_scenario(data: Mapping[str, Any], source: str = "<mapping>") -> Scenario:
    """Check a parsed scenario (the mapping a scenario file holds, its times RFC 3339
    text as :func:`advisor.sources.scenario.read_scenario` keeps them) and build it;
    ``source`` names where it came from in the errors (a file name).

    Raises :class:`ScenarioError` listing every problem found.
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(source, [f"not a scenario: a {type(data).__name__}, expected a "
                                     f"mapping with keys {', '.join(TOP_KEYS)}"])
    # problems by top-level key, reported in the file's order
    p = {key: _Problems() for key in (*data, *TOP_KEYS)}
    for key in data:
        if key not in TOP_KEYS:
            p[key].add(str(key), f"unknown key (expected one of {', '.join(TOP_KEYS)})")
    for key in ("start", "days", "volumes", "jobs"):
        if key not in data:
            p[key].add(key, "missing")
    start = p["start"].value("start", _time, data["start"]) if "start" in data else None
    days = p["days"].value("days", _days, data["days"]) if "days" in data else None
    version = p["longhorn_version"].value("longhorn_version", _version,
                                          data.get("longhorn_version", longhorn.LATEST))
    seed = p["seed"].value("seed", _integer, data.get("seed", 0))
    time_zone = p["time_zone"].value("time_zone", _time_zone, data.get("time_zone", "UTC"))
    poll_s = p["poll_interval"].value("poll_interval", _positive_seconds,
                                      data.get("poll_interval", "5m"))
    ttl_s = p["failed_backup_ttl"].value("failed_backup_ttl", _ttl_seconds,
                                         data.get("failed_backup_ttl", "1440m"))
    allow_detached = p["allow_detached"].value("allow_detached", _boolean,
                                               data.get("allow_detached", False))

    jobs, fields, first_job = _jobs(p["jobs"], data)

    pv = p["volumes"]
    raw_volumes = _list(pv, "volumes", data["volumes"]) if "volumes" in data else None
    if raw_volumes == []:
        pv.add("volumes", "is empty: a scenario needs at least one volume")
    names = [(i, v.get("name")) for i, v in enumerate(raw_volumes or [])
             if isinstance(v, dict) and isinstance(v.get("name"), str) and v.get("name")]
    known = _Known(
        {n: i for i, n in reversed(names)}, set(first_job),
        {f["name"]: tuple(g for g in f["groups"] if isinstance(g, str))
         if isinstance(f.get("groups"), list) else ()
         for f in fields if f["name"] and f.get("task") != "system-backup"},
        any(f.get("task") == "system-backup" for f in fields))
    volumes: dict[int, VolumeSpec] = {}
    for i, item in enumerate(raw_volumes or []):
        if (m := _mapping(pv, f"volumes[{i}]", item)) is not None:
            v = _volume(pv, i, m, known)
            if v is not None:
                volumes[i] = v

    end = (start + pd.Timedelta(seconds=days * 86400).round("ms")
           if start is not None and days is not None else None)
    manual = _manual_backups(p["manual_backups"], data.get("manual_backups", []),
                             known.volumes, volumes, start, end)

    problems = [problem for section in p.values() for problem in section]
    if problems:
        raise ScenarioError(source, problems)
    fleet = Fleet(tuple(volumes.values()), tuple(jobs), poll_interval_s=poll_s,
                  failed_backup_ttl_s=ttl_s, allow_detached=allow_detached,
                  manual_backups=tuple(manual))
    return Scenario(fleet, start, end, version, seed, time_zone)


def _jobs(p: _Problems, data: Mapping[str, Any]
          ) -> tuple[list[JobSpec], list[dict], dict[str, int]]:
    """The jobs that check out, the fields of every job, each job name's first index."""
    raw_jobs = _list(p, "jobs", data["jobs"]) if "jobs" in data else None
    jobs, fields, first_job = [], [], {}
    for i, item in enumerate(raw_jobs or []):
        if (m := _mapping(p, f"jobs[{i}]", item)) is None:
            continue
        f = _job_fields(p, f"jobs[{i}]", m)
        if f["name"] in first_job:
            p.add(f["name_at"], f"{f['name']!r} is also the name of "
                  f"jobs[{first_job[f['name']]}]")
        elif f["name"]:
            first_job[f["name"]] = i
        fields.append(f)
        if (j := _job(p, f)) is not None:
            jobs.append(j)
    return jobs, fields, first_job


def rfc3339(t: pd.Timestamp) -> str:
    """A time as a scenario names it: UTC, whole seconds, ``Z``."""
    return t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _manual_backups(p: _Problems, raw: Any, known: dict[str, int],
                    volumes: dict[int, VolumeSpec], start: pd.Timestamp | None,
                    end: pd.Timestamp | None) -> list[tuple[str, str]]:
    out = []
    for i, item in enumerate(_list(p, "manual_backups", raw) or []):
        where = f"manual_backups[{i}]"
        if (m := _mapping(p, where, item)) is None:
            continue
        p.keys(where, m, ("time", "volume"), ("time", "volume"))
        t = p.value(f"{where}.time", _time, m["time"]) if "time" in m else None
        volume = m.get("volume")
        if "volume" in m and (not isinstance(volume, str) or volume not in known):
            p.add(f"{where}.volume", f"no volume named {volume!r}")
        elif isinstance(volume, str) and getattr(volumes.get(known[volume]), "standby", False):
            p.add(f"{where}.volume", f"{volume!r} is a DR (standby) volume: it cannot be "
                  "backed up")
        if t is not None and start is not None and end is not None and not start <= t < end:
            p.add(f"{where}.time", f"{m['time']} is outside the window {rfc3339(start)} to "
                  f"{rfc3339(end)}")
        if t is not None and isinstance(volume, str) and volume in known:
            out.append((rfc3339(t), str(volume)))
    return out
