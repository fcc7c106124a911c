"""What an analysis is asked: one :class:`Settings`, passed explicitly (never global).

The scoring window, one rule for every entry point (the report, ``advisor recommend``,
``advisor.recommend()``, ``advisor check``): one ISO week, Monday 00:00 UTC to the next
Monday. Named (``week="2026-W47"``), that week; otherwise the last ISO week that ended by
the history's last activity (the last time a Backup was asked for, started or finished,
not when it was collected: a file collected days after its export must not move the
week past its data). With no Backup at all, the last week that ended before now. So a
report run on a Monday covers the week before, and the advice scores the same week the
report shows.

The at-risk rule, also one: a volume is at risk when its conflict probability per run
plus two standard errors is over the target, or when it skips more than
:data:`SKIPPED_RUNS_AT_RISK` runs a week.

The recovery-point objective (RPO), beside the risk target: the longest acceptable gap
between a volume's completed backups, asked of its p95 gap. One for every volume
(``rpo_s``), or per RecurringJob (``job_rpo_s``) for that job's volumes; a volume's is
the smallest of those that apply to it (:meth:`Settings.rpo_of_volume`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from advisor.longhorn import LATEST, behaviour
from advisor.model.fleet import seconds
from advisor.model.risk import DEFAULT_PRECISION

__all__ = ["DEFAULT_PRECISION", "DEFAULT_TARGET", "SKIPPED_RUNS_AT_RISK", "Settings",
           "Window", "iso_week", "latest_activity", "parse_rpo"]

DEFAULT_TARGET = 0.01
"""The largest acceptable probability of a lock conflict (and of a skipped run) per run."""
SKIPPED_RUNS_AT_RISK = 0.05
"""Skipped runs a week above which a volume is at risk whatever its conflicts (about one
lost recovery point in 20 weeks)."""


@dataclass(frozen=True)
class Window:
    """The scored ISO week: its label (``2026-W47``), Monday 00:00 UTC and the next."""

    label: str
    start: pd.Timestamp
    end: pd.Timestamp


def latest_activity(backups: pd.DataFrame) -> pd.Timestamp | None:
    """When the history's last backup was asked for, started or finished (None: no
    backup). Not when it was collected (see the module's window rule)."""
    if backups.empty:
        return None
    cols = [c for c in ("requested_at", "started_at", "finished_at") if c in backups]
    t = backups[cols].max().max() if cols else pd.NaT
    return None if pd.isna(t) else pd.Timestamp(t)


def iso_week(week: str | None, latest: pd.Timestamp | None = None
             ) -> tuple[str, pd.Timestamp, pd.Timestamp]:
    """``("2026-W47", Monday 00:00 UTC, next Monday)`` of ``week`` (``YYYY-Www``), or,
    when None, of the last ISO week that ended by ``latest`` (now when None)."""
    if week is not None:
        try:
            year, w = week.upper().split("-W")
            monday = dt.date.fromisocalendar(int(year), int(w), 1)
        except ValueError:
            raise ValueError(f"--week {week!r}: expected YYYY-Www, e.g. 2026-W47") from None
    else:
        now = (latest if latest is not None and pd.notna(latest)
               else pd.Timestamp.now(tz="UTC")).tz_convert("UTC")
        this_monday = (now - pd.Timedelta(days=now.weekday())).date()
        monday = this_monday - dt.timedelta(days=7)
    start = pd.Timestamp(monday, tz="UTC")
    y, w, _ = monday.isocalendar()
    return f"{y}-W{w:02d}", start, start + pd.Timedelta(days=7)


@dataclass(frozen=True)
class Settings:
    """What to analyse and how: the risk ``target`` per run, the ``week`` scored (None:
    the history's last complete week), Longhorn's ``version`` (its rules), the
    ``cluster`` (None: the history's only one), the Monte Carlo ``seed`` and the
    ``precision`` (standard error per run) the draws stop at; the recovery-point
    objective, seconds: ``rpo_s`` for every volume, ``job_rpo_s`` (``(job, seconds)``
    pairs) for a job's volumes (None and none: no RPO)."""

    target: float = DEFAULT_TARGET
    week: str | None = None
    version: str = LATEST
    cluster: str | None = None
    seed: int = 0
    precision: float = DEFAULT_PRECISION
    rpo_s: float | None = None
    job_rpo_s: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for what, v in [("rpo", self.rpo_s), *self.job_rpo_s]:
            if v is not None and not 0 < v < float("inf"):
                raise ValueError(f"RPO {what}={v!r}: a duration above 0 s")
        if not 0 < self.target <= 0.5:
            raise ValueError(f"target {self.target!r}: a probability per run, above 0 and "
                             "at most 0.5")
        if not 0 < self.precision < 0.5:
            raise ValueError(f"precision {self.precision!r}: a standard error, above 0")
        behaviour(self.version)  # (a ValueError names a version it cannot model)
        if self.week is not None:
            iso_week(self.week)

    @property
    def has_rpo(self) -> bool:
        return self.rpo_s is not None or bool(self.job_rpo_s)

    def rpo_of_job(self, job: str) -> float | None:
        """The RPO a job's volumes are asked to keep: the job's own, else everyone's."""
        own = [v for j, v in self.job_rpo_s if j == job]
        return min(own) if own else self.rpo_s

    def rpo_of_volume(self, jobs: list[str] | tuple[str, ...]) -> float | None:
        """The RPO of a volume backed up by ``jobs``: the smallest that applies."""
        rpos = [r for j in jobs if (r := self.rpo_of_job(j)) is not None]
        return min(rpos) if rpos else self.rpo_s

    def window(self, backups: pd.DataFrame) -> Window:
        """The week scored for a history whose Backups are ``backups`` (the rule in this
        module's docstring)."""
        return Window(*iso_week(self.week, latest_activity(backups)))

    def at_risk(self, table: pd.DataFrame) -> pd.Series:
        """Per row of a risk table (``p_conflict_per_run``, ``p_conflict_per_run_se``,
        ``skipped_runs_per_week``): the at-risk rule of this module's docstring."""
        return ((table["p_conflict_per_run"] + 2 * table["p_conflict_per_run_se"]
                 > self.target) | (table["skipped_runs_per_week"] > SKIPPED_RUNS_AT_RISK))


def parse_rpo(values: list[str] | tuple[str, ...]) -> tuple[float | None,
                                                          tuple[tuple[str, float], ...]]:
    """``--rpo`` values: ``2h`` (every volume) or ``JOB=2h`` (that job's volumes), as
    ``(rpo_s, job_rpo_s)``; a ValueError names a value that is neither."""
    every: float | None = None
    per_job: list[tuple[str, float]] = []
    for v in values:
        job, sep, text = v.rpartition("=")
        try:
            s = seconds(text)
        except ValueError as e:
            raise ValueError(f"--rpo {v!r}: {e} (or JOB=DURATION)") from None
        if not s > 0:
            raise ValueError(f"--rpo {v!r}: a duration above 0 s")
        if sep and not job:
            raise ValueError(f"--rpo {v!r}: no job name before '='")
        if sep:
            per_job.append((job, s))
        else:
            every = s
    return every, tuple(per_job)
