"""What the simulator is given: volumes, jobs and duration distributions.

The simulator fits nothing: every duration comes from a :class:`Duration` passed in per
volume, fixed (``10m``) or a distribution (``{dist: lognormal, median: 10m, p95: 25m}``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from advisor.longhorn import DEFAULT_CONCURRENCY
from advisor.longhorn.jobs import SYSTEM_BACKUP_POLICIES

_Z95 = 1.6448536269514722  # standard normal quantile at 0.95
_Z99 = 2.3263478740408408
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|K|M|G|T|P)?\s*$")
_SIZE_UNITS = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
               "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def seconds(text: str | float | int) -> float:
    """A duration such as ``10m``, ``30s``, ``1.5h``, ``2d`` (or a number of seconds)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0 or not math.isfinite(text):
            raise ValueError(f"duration {text!r} must be a finite number of seconds >= 0")
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"duration {text!r} is not like 30s, 10m, 1.5h or 2d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def size_bytes(text: str | int) -> int:
    """A Kubernetes quantity such as ``100Gi`` or ``1T`` (or a number of bytes)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"size {text!r} is not like 100Gi, 2Ti or 500M")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


@dataclass(frozen=True)
class Duration:
    """A duration distribution in seconds: ``fixed`` or ``lognormal`` (by median and p95).

    ``median_sd``: how well the median is known, as the standard deviation of its log (a
    fitted median's standard error, or the doubt of a prior). The risk model's Monte
    Carlo draws each scale all of their durations from this distribution by one factor
    ``exp(median_sd * Z)``, so its predictions carry that uncertainty; the simulator (one
    world) and :meth:`sample` take the median as given.
    """

    median_s: float
    p95_s: float | None = None
    dist: str = "fixed"
    median_sd: float = 0.0

    def __post_init__(self) -> None:
        if self.dist not in ("fixed", "lognormal"):
            raise ValueError(f"distribution {self.dist!r}: use fixed or lognormal")
        if self.dist == "lognormal" and (self.p95_s is None or self.p95_s < self.median_s
                                         or self.median_s <= 0):
            raise ValueError("a lognormal duration needs 0 < median <= p95")
        if not self.median_sd >= 0:
            raise ValueError(f"median_sd must be >= 0, not {self.median_sd}")

    @classmethod
    def parse(cls, spec: str | float | dict) -> Duration:
        """From ``10m`` or ``{dist: lognormal, median: 10m, p95: 25m}``."""
        if isinstance(spec, dict):
            unknown = set(spec) - {"dist", "median", "p95"}
            if unknown:
                raise ValueError(f"unknown key(s) {sorted(unknown)} in duration {spec}")
            dist = spec.get("dist", "lognormal")
            if "median" not in spec:
                raise ValueError(f"duration {spec} needs a median")
            p95 = seconds(spec["p95"]) if "p95" in spec else None
            return cls(seconds(spec["median"]), p95, str(dist))
        return cls(seconds(spec))

    @property
    def sigma(self) -> float:
        """The lognormal's sigma (0 for a fixed duration)."""
        if self.dist == "fixed" or self.p95_s is None or self.p95_s == self.median_s:
            return 0.0
        return math.log(self.p95_s / self.median_s) / _Z95

    @property
    def p99_s(self) -> float:
        """The 99th percentile, in seconds."""
        return self.median_s * math.exp(_Z99 * self.sigma)

    def sample(self, rng: np.random.Generator, n: int | tuple[int, ...]) -> np.ndarray:
        """``n`` draws in seconds."""
        if self.sigma == 0.0:
            return np.full(n, self.median_s)
        return self.median_s * np.exp(self.sigma * rng.standard_normal(n))


@dataclass(frozen=True)
class VolumeSpec:
    """One volume of a simulated fleet and how long its operations take."""

    name: str
    size_bytes: int
    backup_duration: Duration
    deletion_duration: Duration
    jobs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    standby: bool = False
    restore_of: str | None = None
    restore_duration: Duration | None = None
    state: str = "attached"
    target: str = "default"
    job_backup_durations: tuple[tuple[str, Duration], ...] = ()
    """Per-job overrides of ``backup_duration`` (a daily full backup, an hourly small one)."""
    has_backup: bool = False
    """It had a backup when the history was read (a system-backup job with the default
    policy, ``if-not-present``, then leaves it out)."""

    def backup_duration_for(self, job: str) -> Duration:
        """The backup duration distribution of this volume in ``job``."""
        for name, d in reversed(self.job_backup_durations):  # (the last one given wins)
            if name == job:
                return d
        return self.backup_duration


@dataclass(frozen=True)
class JobSpec:
    """One RecurringJob (the fields the simulator uses)."""

    name: str
    cron: str
    task: str = "backup"
    retain: int = 1
    concurrency: int = DEFAULT_CONCURRENCY
    groups: tuple[str, ...] = ()
    backup_policy: str = SYSTEM_BACKUP_POLICIES[0]
    """A system-backup job's ``volume-backup-policy`` (other tasks: unused)."""


@dataclass(frozen=True)
class Fleet:
    """Volumes, jobs and the settings that change timing."""

    volumes: tuple[VolumeSpec, ...]
    jobs: tuple[JobSpec, ...]
    poll_interval_s: float = 300.0
    failed_backup_ttl_s: float = 1440 * 60.0
    allow_detached: bool = False
    manual_backups: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    """(RFC 3339 time, volume) of backups asked for by hand."""

    def with_job(self, name: str, **fields: object) -> Fleet:
        """This fleet with the job ``name``'s ``fields`` changed (``cron=``,
        ``concurrency=``, ...); the other jobs as they are."""
        return replace(self, jobs=tuple(replace(j, **fields) if j.name == name else j
                                        for j in self.jobs))
